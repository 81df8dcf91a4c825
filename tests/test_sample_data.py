"""tools.sample_data: the generated landing is realistic, valid, deterministic and
counted exactly, on the lanes of the real network's configuration. Reads the files back
with pyarrow (no Spark)."""

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
from tools.sample_data import GenerationStats, SampleSpec, generate, one_road_jams, sample_lanes
from traffic_glue.compute import configuration, schema

START = dt.date(2020, 4, 6)  # a Monday, in summer time
# cabinets 437 (11 lanes), 411 (12) and 191 (4, two of them wrong-way lanes)
SPEC = SampleSpec(start_date=START, days=2, lanes=27, seed=7)
NETWORK = {lane.lane_id: lane for lane in sample_data.load_configuration()}
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
    assert stats.lanes == SPEC.lanes
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


def test_readings_carry_the_configured_ids_of_whole_cabinets(landing):
    _, stats, rows = landing
    lane, unit, name = rows[schema.LANE_ID], rows[schema.UNIT_ID], rows[schema.LANE_NAME]
    triples = set(zip(lane.tolist(), unit.tolist(), name.tolist()))
    assert len(triples) == len(set(lane.tolist())) == SPEC.lanes == stats.lanes
    assert all((NETWORK[u].unit_id, NETWORK[u].lane_name) == (v, n) for u, v, n in triples)
    # the anchor cabinets, whole: 437 (3637..3647), 411 (3078..3089), 191
    assert {u for u, _, _ in triples} == set(range(3637, 3648)) | set(range(3078, 3090)) | {
        2055, 2057, 2058, 2060}
    assert stats.cabinets == 3 and {v for _, v, _ in triples} == {437, 411, 191}
    # locations of `corrected`: 437 has 7 (A0140001, A0140002, two of A0149411, two main
    # and one W09 of A0149402), 411 has 5, 191 two (its TR lanes are none)
    assert stats.locations == 14 == len(configuration.locations_of(tuple(NETWORK[u] for u, _, _ in triples)))


def test_a_small_sample_holds_what_the_real_network_is_made_of():
    lanes = sample_lanes(SampleSpec(start_date=START, lanes=300))  # the Makefile's SAMPLE_LANES
    assert len(lanes) == 300 and len({lane.lane_id for lane in lanes}) == 300
    by_id = {lane.lane_id: lane for lane in lanes}
    # cabinet 437 (Parking Kruibeke): both directions of the A14 at km 94.69, slip roads, W09
    kruibeke = sorted((lane.road, lane.lane_type) for lane in lanes if lane.unit_id == 437)
    assert kruibeke == [("A0140001", "R10"), ("A0140001", "R11"), ("A0140001", "R12"),
                        ("A0140002", "R10"), ("A0140002", "R11"), ("A0140002", "R12"),
                        ("A0149402", "R10"), ("A0149402", "R10"), ("A0149402", "W09"),
                        ("A0149411", "R10"), ("A0149411", "R10")]
    assert by_id[3637].kilometre_point == 94.692 and by_id[3640].kilometre_point == 94.695
    assert by_id[3078].road == "A0120001" and by_id[3081].road == "A0120002"  # 411: the A12
    assert by_id[2058].lane_type == by_id[2060].lane_type == "TR10"  # 191: wrong-way lanes
    assert by_id[2058].unit_id == 191 and configuration.lane_group("TR10") is None
    no_point = [lane.lane_id for lane in lanes if lane.kilometre_point is None]
    assert {694, 695, 697, 698} <= set(no_point)  # cabinet 4: the A8 without Kmp_Rsys
    assert by_id[4258].lane_type == "B09" and by_id[1626].lane_type == "P00"  # 549, 211
    assert sum(sum(lane.unit_id == unit for lane in NETWORK.values())
               for unit in sample_data.ANCHOR_CABINETS) == sample_data.ANCHOR_LANES == 41
    # beyond the anchors, whole cabinets chosen by the seed; only the last may be cut
    units = [lane.unit_id for lane in lanes]
    whole = [unit for unit in set(units) if units.count(unit) == sum(
        lane.unit_id == unit for lane in NETWORK.values())]
    assert len(set(units)) - len(whole) <= 1 and len(set(units)) > 30
    other = sample_lanes(SampleSpec(start_date=START, lanes=300, seed=8))
    assert {lane.unit_id for lane in other} != set(units)
    assert {lane.lane_id for lane in other if lane.unit_id in sample_data.ANCHOR_CABINETS} == {
        lane.lane_id for lane in lanes if lane.unit_id in sample_data.ANCHOR_CABINETS}


def test_the_whole_network_and_no_more():
    assert len(sample_lanes(SampleSpec(start_date=START, lanes=4254))) == 4254
    with pytest.raises(ValueError, match="lanes must be at most 4,254"):
        sample_lanes(SampleSpec(start_date=START, lanes=4600))


def test_each_carriageway_has_its_own_traffic(landing):
    _, _, rows = landing
    counted = sum(rows[schema.intensity(k)] for k in schema.COUNTED_CLASSES)
    weights = sum(rows[schema.intensity(k)] * rows[schema.arithmetic_speed(k)] for k in schema.COUNTED_CLASSES)
    lane = rows[schema.LANE_ID]
    day = (rows[schema.OBSERVED_AT] // 3600 + 2) % 24 >= 10  # local 10:00 .. 24:00
    def median_speed(lane_ids):
        mine = np.isin(lane, lane_ids) & (counted > 0) & day
        return np.median(weights[mine] / counted[mine])
    def vehicles(lane_ids):
        return counted[np.isin(lane, lane_ids)].mean()
    a14 = [median_speed([3637, 3638, 3639]), median_speed([3640, 3641, 3642])]  # A0140001, 0002
    assert all(s > 85 for s in a14) and abs(a14[0] - a14[1]) > 1
    assert median_speed([3643, 3644, 3645, 3647]) < min(a14) - 15  # slip roads
    assert vehicles([2058, 2060]) < 0.1 and (counted[np.isin(lane, [2058, 2060])] == 0).mean() > 0.9  # TR
    assert vehicles([3646]) < 0.2 * vehicles([3637, 3638, 3639])  # W09


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


def test_the_jobs_duplicates_are_the_copies_of_readings_it_keeps(landing):
    """What `describe` says of the job's `left out: duplicate`, in numbers: the copies
    (the second row of a lane and minute) of defect readings, of readings with unknown
    occupancy and of wrong-way lanes' readings, worked out here from the files, are left
    out under those rules as their originals are; the DuckDB reference, which counts as
    the job does (tests/test_parity.py), counts the other copies as duplicates."""
    from tools.duckdb_reference import reading_counts

    root, stats, rows = landing
    wrong_way_lanes = [lane for lane, where in NETWORK.items() if configuration.lane_group(where.lane_type) is None]
    # The first rule of step 1 each row fails, in the job's order (0: none, it is kept).
    rule = np.select([rows[schema.DEFECT] != 0, rows[schema.OCCUPANCY] == -1,
                      np.isin(rows[schema.LANE_ID], wrong_way_lanes)], [1, 2, 3], 0)
    key = _key(rows)
    order = np.lexsort((rows["modified"], key))
    pair = np.flatnonzero(key[order][1:] == key[order][:-1])
    original, copy = rule[order][pair], rule[order][pair + 1]
    assert copy.size == stats.duplicates and (original == copy).all()
    of_defect, of_unknown, of_wrong_way = ((copy == n).sum() for n in (1, 2, 3))
    assert min(of_defect, of_unknown, of_wrong_way) > 0  # each rule takes copies in this sample

    counted = reading_counts(str(root), START, START + dt.timedelta(days=SPEC.days - 1),
                             configuration=sample_data.DEFAULT_CONFIGURATION)
    assert counted["duplicate"] == stats.duplicates - of_defect - of_unknown - of_wrong_way
    # The left-out counts hold the copies, as the generator's counts do.
    assert (counted["defect"], counted["unknown_occupancy"]) == (stats.defect, stats.unknown_occupancy)
    assert counted["wrong_way_lane"] == (rule == 3).sum()


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
    # jams are the carriageways' (ramps and odd lanes have lower speeds of their own)
    carriageway = np.isin(rows[schema.LANE_ID], [u for u, lane in NETWORK.items() if configuration.road_name(
        lane.road)[1] is not None and configuration.lane_group(lane.lane_type) == configuration.MAIN])
    speed[~carriageway] = np.nan
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
    generate(str(tmp_path), SampleSpec(start_date=START + dt.timedelta(days=1), lanes=SPEC.lanes, seed=SPEC.seed))
    alone = read_landing(tmp_path)
    second_day = rows[schema.OBSERVED_AT] >= alone[schema.OBSERVED_AT].min()
    columns = list(schema.RAW_COLUMNS) + ["folder_hour"]
    ours = sorted(zip(*(rows[c][second_day].tolist() for c in columns)))
    theirs = sorted(zip(*(alone[c].tolist() for c in columns)))
    assert ours == theirs and len(ours) > 25000


def test_json_lines_carry_the_same_readings_as_the_stream_does(tmp_path, landing):
    _, _, parquet_rows = landing
    stats = generate(str(tmp_path), SampleSpec(start_date=START, days=2, lanes=SPEC.lanes, seed=SPEC.seed,
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
    assert out.startswith(f"Wrote {readings:,} readings (") and "5 lanes in 1 cabinets" in out
    assert "json files" in out
    with pytest.raises(SystemExit):
        sample_data.main(["--out", str(tmp_path), "--start-date", "2020-04-06", "--max-late-hours", "1"])


def test_cli_copies_the_configuration_under_its_dated_name(tmp_path, capsys):
    assert sample_data.main(["--out", str(tmp_path / "raw"), "--start-date", "2020-04-06", "--lanes", "3",
                             "--configuration-out", str(tmp_path / "configuration")]) == 0
    copied = tmp_path / "configuration" / "miv-config-2017-05-18.xml.gz"
    assert copied.read_bytes() == sample_data.DEFAULT_CONFIGURATION.read_bytes()
    assert f"Configuration: {copied}." in capsys.readouterr().out
    assert configuration.snapshot_time(copied.name) == dt.datetime(2017, 5, 18, tzinfo=dt.timezone.utc)


OWN_CONFIGURATION = b"""<?xml version="1.0" encoding="UTF-8"?>
<mivconfig>
  <meetpunt unieke_id="7"><beschrijvende_id>X1L10</beschrijvende_id><Ident_8>N0010001</Ident_8>
    <lve_nr>900</lve_nr><Kmp_Rsys>1,5</Kmp_Rsys><Rijstrook>R10</Rijstrook></meetpunt>
  <meetpunt unieke_id="8"><beschrijvende_id>X1L20</beschrijvende_id><Ident_8>N0010002</Ident_8>
    <lve_nr>900</lve_nr><Kmp_Rsys>1,5</Kmp_Rsys><Rijstrook>R10</Rijstrook></meetpunt>
  <meetpunt unieke_id="9"><beschrijvende_id>X2L10</beschrijvende_id><Ident_8>N0010002</Ident_8>
    <Rijstrook>R10</Rijstrook></meetpunt>
</mivconfig>
"""


def test_cli_reads_another_configuration(tmp_path, capsys):
    own = tmp_path / "miv-config-2021-01-02.xml"
    own.write_bytes(OWN_CONFIGURATION)
    assert sample_data.main(["--out", str(tmp_path / "raw"), "--start-date", "2020-04-06", "--lanes", "2",
                             "--configuration", str(own), "--configuration-out", str(tmp_path / "c")]) == 0
    rows = read_landing(tmp_path / "raw")
    assert set(zip(rows[schema.LANE_ID].tolist(), rows[schema.UNIT_ID].tolist(),
                   rows[schema.LANE_NAME].tolist())) == {(7, 900, "X1L10"), (8, 900, "X1L20")}
    assert (tmp_path / "c" / own.name).read_bytes() == OWN_CONFIGURATION
    capsys.readouterr()
    with pytest.raises(SystemExit):  # lane 9 has no lve_nr: two lanes to take, not three
        sample_data.main(["--out", str(tmp_path / "more"), "--start-date", "2020-04-06", "--lanes", "3",
                          "--configuration", str(own)])
    assert "lanes must be at most 2" in capsys.readouterr().err
    undated = tmp_path / "network.xml"
    undated.write_bytes(OWN_CONFIGURATION)
    with pytest.raises(SystemExit):  # the job reads a snapshot's time from its name
        sample_data.main(["--out", str(tmp_path / "undated"), "--start-date", "2020-04-06", "--lanes", "2",
                          "--configuration", str(undated), "--configuration-out", str(tmp_path / "u")])
    assert "must end in its UTC date" in capsys.readouterr().err and not (tmp_path / "undated").exists()


# --- the scenario jam_one_road ---------------------------------------------------------

JAM_SPEC = SampleSpec(start_date=START, days=1, lanes=27, seed=7, jam_one_road=True)


def test_one_road_jams_chooses_one_carriageway_per_cabinet_of_several_roads():
    scenario = one_road_jams(sample_lanes(SampleSpec(start_date=START, lanes=41)))  # the anchors
    # by hand: 437 and 411 the smallest main carriageway (0001 before 0002, before ramps);
    # 191 has none, so its smallest road with through lanes; 4: the A8's 0001; 549 and 211
    # hold one road each, so no jam there
    assert scenario.carriageways == {("A0140001", 437), ("A0120001", 411), ("N0499011", 191),
                                     ("A0080001", 4)}
    assert scenario.lane_ids == {3637, 3638, 3639, 3078, 3079, 3080, 2057, 694, 695}  # TR 2060 not
    assert scenario.location_ids == {configuration.location_id(key) for key in (
        "A0140001|m94692|main", "A0120001|m2888|main", "N0499011|m4217|main",
        "A0080001|at4.184756,50.711676|main")}


def test_one_road_jams_jams_through_lanes_only_and_skips_cabinets_without():
    lane = configuration.ConfiguredLane
    lanes = [lane(1, road="A0010111", unit_id=1, kilometre_point=1.0, lane_type="R10"),  # ramps only
             lane(2, road="A0010121", unit_id=1, kilometre_point=1.0, lane_type="R10"),
             lane(3, road="A0010121", unit_id=1, kilometre_point=1.0, lane_type="S09"),
             lane(4, road="A0020001", unit_id=2, kilometre_point=2.0, lane_type="R09"),  # no through lane
             lane(5, road="A0020002", unit_id=2, kilometre_point=2.0, lane_type="B09"),
             lane(6, road="A0030002", unit_id=3, kilometre_point=3.0, lane_type="R10"),
             lane(7, road="A0030001", unit_id=3, kilometre_point=3.0, lane_type="R09"),  # 0001: no R10+
             lane(8, road="A0030002", unit_id=3, kilometre_point=3.0, lane_type="TR10")]
    scenario = one_road_jams(lanes)
    assert scenario.carriageways == {("A0010111", 1), ("A0030002", 3)}
    assert scenario.lane_ids == {1, 6}


@pytest.fixture(scope="module")
def jam_landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("jam")
    stats = generate(str(root), JAM_SPEC)
    return stats, read_landing(root)


def test_in_the_jam_window_one_road_of_a_cabinet_crawls_and_all_else_flows(jam_landing):
    stats, rows = jam_landing
    scenario = one_road_jams(sample_lanes(JAM_SPEC))
    assert stats.jam_locations == len(scenario.location_ids) == 3
    counted = sum(rows[schema.intensity(k)] for k in schema.COUNTED_CLASSES)
    lane, minute = rows[schema.LANE_ID], rows[schema.OBSERVED_AT] // 60 % 1440
    window = (minute >= 7 * 60) & (minute < 9 * 60)
    # cabinet 437 by hand: A0140001's R10..R12 crawl from 07:00 to 08:59 UTC, nothing else
    slow_lanes = [3637, 3638, 3639]
    for k in schema.ALL_CLASSES:
        speed, passed = rows[schema.arithmetic_speed(k)], rows[schema.intensity(k)] > 0
        jammed = np.isin(lane, list(scenario.lane_ids)) & window & passed
        assert ((speed[jammed] >= 15) & (speed[jammed] <= 30)).all()
        assert ((speed[passed & ~jammed] >= 100) & (speed[passed & ~jammed] <= 120)).all()
    for lane_id in range(3637, 3648):
        mine = (lane == lane_id) & (counted > 0)
        speed = sum(rows[schema.intensity(k)] * rows[schema.arithmetic_speed(k)]
                    for k in schema.COUNTED_CLASSES)[mine] / counted[mine]
        inside = window[mine]
        if lane_id in slow_lanes:
            assert inside.sum() > 100 and speed[inside].max() <= 30 and speed[~inside].min() >= 100
        else:
            assert speed.min() >= 100
    # the cabinet's mean speed in the window (what grouping by lve_nr gives) is no jam
    in_437 = (rows[schema.UNIT_ID] == 437) & window & (counted > 0)
    weights = sum(rows[schema.intensity(k)] * rows[schema.arithmetic_speed(k)] for k in schema.COUNTED_CLASSES)
    assert np.mean(weights[in_437] / counted[in_437]) > 60


def test_cli_runs_the_jam_scenario(tmp_path, capsys):
    assert sample_data.main(["--out", str(tmp_path), "--start-date", "2020-04-06", "--lanes", "11",
                             "--jam-one-road"]) == 0
    assert "Scenario jam_one_road: 1 roads jammed (3 lanes, 1 locations)." in capsys.readouterr().out


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
