"""tools.sample_data: the generated landing is realistic, valid, deterministic and
counted exactly. Reads the files back with pyarrow (no Spark)."""

import datetime as dt
import json
import re
import zoneinfo
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tools import sample_data
from tools.sample_data import GenerationStats, SampleSpec, generate
from traffic_glue import schema

START = dt.date(2020, 4, 6)  # a Monday, in summer time
SPEC = SampleSpec(start_date=START, days=2, lanes=20, seed=7)
INT_COLUMNS = [f.name for f in schema.RAW_SCHEMA.fields if f.dataType.typeName() == "integer"]
FOLDER = re.compile(r"year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})")
BRUSSELS = zoneinfo.ZoneInfo("Europe/Brussels")


def _epoch(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp())


def _folder_hour(path: Path) -> int:
    y, m, d, h = map(int, FOLDER.search(path.as_posix()).groups())
    return int(dt.datetime(y, m, d, h, tzinfo=dt.timezone.utc).timestamp()) // 3600


def _json_value(name, value):
    if name == schema.OBSERVED_AT and isinstance(value, str) and not value.isdigit():
        return _epoch(value)
    return value if name in (schema.LANE_NAME, schema.MODIFIED_AT) else int(value)


def _files(root) -> list:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def read_landing(root) -> dict:
    """Every row of every file, in file order, as numpy arrays, plus `folder_hour`
    (epoch hours of the file's processing-hour folder) and `modified` (epoch s)."""
    tables = []
    for path in _files(root):
        if path.suffix == ".parquet":
            table = pq.read_table(path)
        else:
            lines = [json.loads(line) for line in path.read_text().splitlines()]
            table = pa.table({name: [_json_value(name, line[name]) for line in lines]
                              for name in schema.RAW_COLUMNS})
        hours = np.full(table.num_rows, _folder_hour(path), np.int64)
        tables.append(table.append_column("folder_hour", pa.array(hours)))
    table = pa.concat_tables(tables)
    rows = {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names}
    rows["modified"] = np.array([_epoch(text) for text in rows[schema.MODIFIED_AT]])
    return rows


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    stats = generate(str(root), SPEC)
    return root, stats, read_landing(root)


def _key(rows) -> np.ndarray:
    return rows[schema.LANE_ID].astype(np.int64) * 10**10 + rows[schema.OBSERVED_AT]


def test_same_spec_gives_the_same_bytes_and_another_seed_does_not(tmp_path):
    for fmt in sample_data.FORMATS:
        spec = SampleSpec(start_date=START, lanes=8, seed=3, source_format=fmt)
        generate(str(tmp_path / fmt / "a"), spec)
        generate(str(tmp_path / fmt / "b"), spec)
        generate(str(tmp_path / fmt / "c"), SampleSpec(start_date=START, lanes=8, seed=4, source_format=fmt))
        a, b, c = (_files(tmp_path / fmt / run) for run in "abc")
        assert [p.relative_to(tmp_path / fmt / "a") for p in a] == [p.relative_to(tmp_path / fmt / "b") for p in b]
        assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b))
        assert a[5].read_bytes() != c[5].read_bytes()


def test_one_file_per_zero_padded_processing_hour_named_like_firehose(landing):
    root, stats, _ = landing
    files = _files(root)
    assert len(files) == stats.files
    relative = [p.relative_to(root).as_posix() for p in files]
    pattern = re.compile(r"year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})/"
                         r"traffic-firehose-1-(\d{4})-(\d{2})-(\d{2})-(\d{2})-00-00-[0-9a-f]{8}\.parquet")
    matches = [pattern.fullmatch(r) for r in relative]
    assert all(matches), relative
    assert all(m.groups()[:4] == m.groups()[4:] for m in matches)
    hours = [_folder_hour(p) for p in files]
    assert len(set(hours)) == len(hours)
    first = int(dt.datetime(2020, 4, 6, tzinfo=dt.timezone.utc).timestamp()) // 3600
    # every hour of the two days, then the next day's first hours (23:59 readings, late ones)
    assert hours[: 48 + 1] == list(range(first, first + 49))
    assert first + 48 < hours[-1] <= first + 48 + SPEC.max_late_hours - 1
    assert relative[0].startswith("year=2020/month=04/day=06/hour=00/")
    assert stats.first_hour == "2020-04-06T00" and stats.last_hour.startswith("2020-04-08T0")


def test_parquet_columns_and_types_are_the_raw_schema(landing):
    root, _, _ = landing
    path = _files(root)[0]
    arrow = pq.read_schema(path)
    assert arrow.names == list(schema.RAW_COLUMNS)
    for field in arrow:
        expected = {schema.OBSERVED_AT: pa.int64(), schema.LANE_NAME: pa.string(),
                    schema.MODIFIED_AT: pa.string()}.get(field.name, pa.int32())
        assert field.type == expected, field.name
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "SNAPPY"


def test_every_lane_minute_is_read_once_or_counted_missing(landing):
    _, stats, rows = landing
    keys = np.unique(_key(rows))
    assert keys.size + stats.missing == SPEC.lanes * 1440 * SPEC.days
    assert 0.01 < stats.missing / (SPEC.lanes * 1440 * SPEC.days) < 0.03
    t = rows[schema.OBSERVED_AT]
    start = int(dt.datetime(2020, 4, 6, tzinfo=dt.timezone.utc).timestamp())
    assert (t % 60 == 0).all() and t.min() == start and t.max() == start + 2 * 86400 - 60
    assert rows[schema.LANE_ID].size == stats.readings == keys.size + stats.duplicates


def test_readings_land_in_their_hour_or_later_and_late_ones_hours_later(landing):
    _, stats, rows = landing
    folder, event, modified = rows["folder_hour"], rows[schema.OBSERVED_AT], rows["modified"]
    assert (folder >= event // 3600).all() and (folder >= modified // 3600).all()
    late = folder > (modified + 60) // 3600
    assert late.sum() == stats.late > 50
    assert (folder[late] >= event[late] // 3600 + 1).all()
    assert (folder[late] - event[late] // 3600).max() == SPEC.max_late_hours
    assert ((folder - event // 3600) <= SPEC.max_late_hours).all()
    # a 23:59 reading lands in the next day's 00 folder
    end_of_day = (event % 86400 == 86340) & ~late
    assert (folder[end_of_day] == event[end_of_day] // 3600 + 1).any()


def test_lanes_are_grouped_into_locations(landing):
    _, stats, rows = landing
    lane, unit, name = rows[schema.LANE_ID], rows[schema.UNIT_ID], rows[schema.LANE_NAME]
    pairs = set(zip(lane.tolist(), unit.tolist(), name.tolist()))
    assert len(pairs) == len(set(lane.tolist())) == SPEC.lanes == stats.lanes
    lanes_per_unit = {}
    for lane_id, unit_id, lane_name in pairs:
        assert re.fullmatch(r"[HNR]\d{3,4}L[1-4]0", lane_name), lane_name
        lanes_per_unit.setdefault(unit_id, []).append((lane_id, lane_name))
    assert len(lanes_per_unit) == stats.locations
    sizes = [len(v) for v in lanes_per_unit.values()]
    assert set(sizes) <= {1, 2, 3, 4} and {2, 3} <= set(sizes)
    for members in lanes_per_unit.values():
        prefixes = {n.split("L")[0] for _, n in members}
        assert len(prefixes) == 1 and sorted(n[-2:] for _, n in members)[0] == "10"
    ids = sorted(lane_id for members in lanes_per_unit.values() for lane_id, _ in members)
    assert ids != list(range(ids[0], ids[0] + len(ids)))  # not consecutive
    assert max(ids) <= 3 * SPEC.lanes


def test_intensities_and_speeds_are_consistent(landing):
    _, stats, rows = landing
    for name in INT_COLUMNS:
        assert rows[name].dtype == np.int32
    for k in schema.ALL_CLASSES:
        count = rows[schema.intensity(k)]
        arith, harm = rows[schema.arithmetic_speed(k)], rows[schema.harmonic_speed(k)]
        none = count == 0
        assert (count >= 0).all()
        assert (arith[none] == 0).all() and (harm[none] == 252).all()
        assert ((arith[~none] >= 1) & (arith[~none] <= 250)).all()
        assert ((harm[~none] >= 1) & (harm[~none] <= arith[~none])).all()
    counted = sum(rows[schema.intensity(k)] for k in schema.COUNTED_CLASSES)
    assert (counted == 0).sum() == stats.no_vehicle
    occupancy = rows[schema.OCCUPANCY]
    assert ((occupancy >= -1) & (occupancy <= 100)).all()
    for flag, values in ((schema.PUBLISHED, {1}), (schema.AVAILABLE, {1}), (schema.DEFECT, {0, 1}),
                         (schema.VALID, {0, 1})):
        assert set(np.unique(rows[flag]).tolist()) == values
    assert (rows[schema.VALID] == rows[schema.DEFECT]).all()
    defect = rows[schema.DEFECT] == 1
    assert (counted[defect] == 0).all() and (occupancy[defect] == 0).all()


def test_counts_match_the_stats(landing):
    _, stats, rows = landing
    key = _key(rows)
    order = np.lexsort((rows["modified"], key))
    key, modified = key[order], rows["modified"][order]
    repeated = np.flatnonzero(key[1:] == key[:-1])  # the second row of each pair
    assert not (key[2:] == key[:-2]).any()  # at most two copies
    assert repeated.size == stats.duplicates
    same = modified[repeated + 1] == modified[repeated]
    assert same.sum() == stats.duplicates_same_modified
    assert (~same).sum() == stats.duplicates_corrected
    assert stats.duplicates_same_modified + stats.duplicates_corrected == stats.duplicates
    assert (rows[schema.DEFECT] == 1).sum() == stats.defect
    assert (rows[schema.OCCUPANCY] == -1).sum() == stats.unknown_occupancy
    assert not ((rows[schema.OCCUPANCY] == -1) & (rows[schema.DEFECT] == 1)).any()
    n = stats.readings
    for count, low, high in ((stats.duplicates, 0.005, 0.02), (stats.defect, 0.002, 0.03),
                             (stats.unknown_occupancy, 0.005, 0.02), (stats.late, 0.002, 0.01)):
        assert low * n < count < high * n


def test_duplicates_repeat_speeds_or_correct_later_and_land_no_earlier(landing):
    _, _, rows = landing
    key = _key(rows)
    order = np.lexsort((rows["modified"], key))
    first = order[np.flatnonzero(key[order][1:] == key[order][:-1])]
    second = order[np.flatnonzero(key[order][1:] == key[order][:-1]) + 1]
    same = rows["modified"][first] == rows["modified"][second]
    speeds = [schema.arithmetic_speed(k) for k in schema.ALL_CLASSES] + [
        schema.harmonic_speed(k) for k in schema.ALL_CLASSES]
    others = [c for c in INT_COLUMNS if c not in speeds]
    for column in others:
        assert (rows[column][first[same]] == rows[column][second[same]]).all(), column
    speed_changed = np.any([rows[c][first] != rows[c][second] for c in speeds], axis=0)
    assert speed_changed[same].mean() > 0.5
    delay = rows["modified"][second] - rows["modified"][first]
    assert ((delay[~same] >= 60) & (delay[~same] <= 600)).all()
    assert (rows["folder_hour"][second[~same]] >= rows["folder_hour"][first[~same]]).all()
    changed = np.any([rows[c][first] != rows[c][second] for c in INT_COLUMNS], axis=0)
    assert changed[~same].mean() > 0.5


def test_modified_time_is_brussels_local_30_to_90_seconds_after(landing):
    _, _, rows = landing
    text = rows[schema.MODIFIED_AT]
    assert all(re.fullmatch(r"2020-04-0[678]T\d\d:\d\d:\d\d\+02:00", t) for t in text)
    delay = rows["modified"] - rows[schema.OBSERVED_AT]
    assert delay.min() == 30 and delay.max() <= 90 + 600  # corrections: 60..600 s later
    assert ((delay >= 30) & (delay <= 90)).mean() > 0.99


def test_brussels_offset_follows_the_tz_database():
    moments = [dt.datetime(2020, 3, 29, 0, 59, 59), dt.datetime(2020, 3, 29, 1, 0, 0),
               dt.datetime(2020, 10, 25, 0, 59, 59), dt.datetime(2020, 10, 25, 1, 0, 0),
               dt.datetime(2019, 12, 31, 23, 0), dt.datetime(2021, 7, 1)]
    seconds = [int(m.replace(tzinfo=dt.timezone.utc).timestamp()) for m in moments]
    seconds += list(range(1546300800, 1640995200, 86400 * 7 + 3333))  # 2019..2021
    expected = [dt.datetime.fromtimestamp(s, BRUSSELS).utcoffset().total_seconds() for s in seconds]
    assert sample_data.brussels_offset(np.array(seconds)).tolist() == expected
    assert sample_data.brussels_offset(np.array(seconds[:4])).tolist() == [3600, 7200, 7200, 3600]


def test_traffic_has_a_night_lull_rush_hours_and_jams(landing):
    _, _, rows = landing
    counts = {k: rows[schema.intensity(k)] for k in schema.ALL_CLASSES}
    counted = sum(counts[k] for k in schema.COUNTED_CLASSES)
    assert counts[2].sum() > 2 * sum(counts[k].sum() for k in (3, 4, 5))
    local_hour = (rows[schema.OBSERVED_AT] // 3600 + 2) % 24
    night, rush = (local_hour >= 1) & (local_hour < 4), (local_hour == 8) | (local_hour == 17)
    assert (counted[night] == 0).mean() > 0.3
    assert counted[rush].mean() > 5 * counted[night].mean()
    occupancy = rows[schema.OCCUPANCY]
    assert occupancy[rush & (occupancy >= 0)].mean() > 3 * max(occupancy[night & (occupancy >= 0)].mean(), 0.1)
    weights = sum(counts[k] * rows[schema.arithmetic_speed(k)] for k in schema.COUNTED_CLASSES)
    speed = np.where(counted > 0, weights / np.maximum(counted, 1), np.nan)
    slow = speed < 40
    assert slow[rush].sum() > 10 and not slow[night].any()
    assert ((speed > 40) & (speed < 41)).any()  # between the Athena query's bands
    # a jam recovers: some lane goes from below 40 to above 41 within the rush hours
    lanes = np.unique(rows[schema.LANE_ID][slow])
    ff = np.nanmedian(speed)
    assert 70 < ff < 130
    recovered = 0
    for lane in lanes:
        mine = (rows[schema.LANE_ID] == lane) & ~np.isnan(speed)
        series = speed[mine][np.argsort(rows[schema.OBSERVED_AT][mine], kind="stable")]
        below = np.flatnonzero(series < 40)
        recovered += (series[below[-1]:] > 41).any()
        assert 1 <= series.min() and series.max() <= 250
    assert recovered >= 1


def test_a_day_alone_has_the_same_readings_as_inside_a_longer_run(tmp_path, landing):
    _, _, rows = landing
    generate(str(tmp_path), SampleSpec(start_date=START + dt.timedelta(days=1), lanes=20, seed=7))
    alone = read_landing(tmp_path)
    second_day = rows[schema.OBSERVED_AT] >= alone[schema.OBSERVED_AT].min()
    columns = list(schema.RAW_COLUMNS) + ["folder_hour"]
    ours = sorted(zip(*(rows[c][second_day].tolist() for c in columns)))
    theirs = sorted(zip(*(alone[c].tolist() for c in columns)))
    assert ours == theirs and len(ours) > 25000


def test_json_lines_carry_the_same_readings_as_the_stream_does(tmp_path, landing):
    _, _, parquet_rows = landing
    stats = generate(str(tmp_path), SampleSpec(start_date=START, days=2, lanes=20, seed=7,
                                               source_format="json"))
    files = _files(tmp_path)
    assert all(p.suffix == "" and p.name.startswith("traffic-firehose-1-") for p in files)
    objects = [json.loads(line) for p in files for line in p.read_text().splitlines()]
    assert all(isinstance(o, dict) and list(o) == list(schema.RAW_COLUMNS) for o in objects)
    assert len(objects) == stats.readings
    values = [o[c] for o in objects for c in INT_COLUMNS]
    strings = sum(isinstance(v, str) for v in values)
    assert 0.8 * len(values) < strings < len(values)
    assert all(isinstance(v, int) or v.isdigit() for v in values if v != "-1")
    times = [o[schema.OBSERVED_AT] for o in objects]
    iso = [t for t in times if isinstance(t, str) and not t.isdigit()]
    digits = [t for t in times if isinstance(t, str) and t.isdigit()]
    assert len(iso) == stats.json_iso_times > 0 and len(digits) == stats.json_string_times > 0
    assert sum(isinstance(t, int) for t in times) > 0.9 * len(times)
    assert all(re.fullmatch(r"2020-04-0\dT\d\d:\d\d:00\+02:00", t) for t in iso)
    json_rows = read_landing(tmp_path)
    for column in list(schema.RAW_COLUMNS) + ["folder_hour"]:
        assert json_rows[column].tolist() == parquet_rows[column].tolist(), column


def test_cli_prints_the_stats(tmp_path, capsys):
    assert sample_data.main(["--out", str(tmp_path), "--start-date", "2020-04-06", "--lanes", "5",
                             "--seed", "1", "--days", "1", "--format", "json"]) == 0
    out = capsys.readouterr().out
    readings = sum(len(p.read_text().splitlines()) for p in _files(tmp_path))
    assert out.startswith(f"Wrote {readings:,} readings (") and "5 lanes" in out and "json files" in out
    with pytest.raises(SystemExit):
        sample_data.main(["--out", str(tmp_path), "--start-date", "2020-04-06", "--max-late-hours", "1"])


@pytest.mark.parametrize("change, message", [
    (dict(source_format="csv"), "source_format"), (dict(lanes=0), "lanes"), (dict(days=0), "days"),
    (dict(max_late_hours=1), "max_late_hours"), (dict(missing_fraction=0.9), "missing_fraction"),
])
def test_a_bad_spec_is_refused_naming_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        SampleSpec(start_date=START, **change)


def test_stats_fields_include_the_agreed_counts():
    names = {f for f in GenerationStats.__dataclass_fields__}
    assert {"readings", "files", "lanes", "locations", "duplicates", "late", "defect",
            "unknown_occupancy", "missing"} <= names
