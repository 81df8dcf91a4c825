"""The DuckDB reference implementation (tools/duckdb_reference.py) against values
worked out by hand from docs/SEMANTICS.md. No Spark.

Every test writes a few raw readings in the Firehose layout under tmp_path
(`year=YYYY/month=MM/day=DD/hour=HH/`, the hour the reading arrived) and runs a day.
Times are UTC; T0 is 2020-04-07 08:00:00.
"""

import json
from datetime import date, datetime, timedelta, timezone
from itertools import count

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tools.duckdb_reference import CURATED_ARROW_SCHEMA, curated_rows, seen_lanes, write_curated
from traffic_glue import schema

DAY = date(2020, 4, 7)
MIDNIGHT = 1586217600  # 2020-04-07 00:00:00 UTC = 97 days * 86400 after 2020-01-01 (1577836800)
T0 = MIDNIGHT + 8 * 3600
MINUTE = 60
HOUR = 3600
MODIFIED = "2020-04-07T10:00:00+02:00"
BOTH = pytest.mark.parametrize("semantics", ["athena", "corrected"])

_ARROW = {"IntegerType": pa.int32(), "LongType": pa.int64(), "StringType": pa.string()}
RAW_ARROW_SCHEMA = pa.schema(
    [pa.field(f.name, _ARROW[type(f.dataType).__name__]) for f in schema.RAW_SCHEMA.fields]
)
_file_numbers = count()


def reading(lane, lve, t, i=(1, 0, 0, 0), s=(100, 0, 0, 0), modified=MODIFIED, defect=0,
            occupancy=5, arrived=None):
    """One raw reading; i and s are the intensities and arithmetic speeds of classes
    2..5. `arrived` (epoch seconds) picks the processing-hour folder, default t."""
    row = {name: 0 for name in schema.RAW_COLUMNS}
    row.update({
        schema.LANE_NAME: f"H{lane}", schema.LANE_ID: lane, schema.UNIT_ID: lve,
        schema.OBSERVED_AT: t, schema.MODIFIED_AT: modified, schema.DEFECT: defect,
        schema.OCCUPANCY: occupancy, schema.harmonic_speed(1): 252,
        "arrived": t if arrived is None else arrived,
    })
    for k, ik, sk in zip(schema.COUNTED_CLASSES, i, s):
        row[schema.intensity(k)] = ik
        row[schema.arithmetic_speed(k)] = sk
        row[schema.harmonic_speed(k)] = sk if ik else 252
    return row


def _folder(root, arrived):
    at = datetime.fromtimestamp(arrived, timezone.utc)
    folder = root / f"year={at:%Y}" / f"month={at:%m}" / f"day={at:%d}" / f"hour={at:%H}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_parquet(root, readings):
    """One Parquet file per arrival hour, typed as schema.RAW_SCHEMA."""
    by_hour = {}
    for r in readings:
        by_hour.setdefault(r["arrived"] // HOUR, []).append(r)
    for hour, rows in by_hour.items():
        table = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "arrived"} for r in rows],
                                     schema=RAW_ARROW_SCHEMA)
        pq.write_table(table, _folder(root, hour * HOUR) / f"part-{next(_file_numbers)}.parquet")


def write_json_lines(root, arrived, lines):
    """Lines as given (dicts are dumped as JSON, strings written verbatim)."""
    path = _folder(root, arrived) / f"firehose-{next(_file_numbers)}"
    path.write_text("".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines))


def run(root, semantics, start=DAY, end=DAY, **options):
    table = curated_rows(str(root), start, end, semantics=semantics, **options)
    assert table.schema == CURATED_ARROW_SCHEMA
    return table.to_pylist()


def by_key(rows):
    return {(r["uniqueid"], r["recordtimestamp"]): r for r in rows}


def pick(row, *names):
    return tuple(row[name] for name in names)


# --- output contract ----------------------------------------------------------------

def test_columns_types_and_order(tmp_path):
    write_parquet(tmp_path, [reading(2, 1, T0 + MINUTE), reading(1, 2, T0 + MINUTE), reading(2, 1, T0)])
    table = curated_rows(str(tmp_path), DAY, DAY)
    assert table.column_names == [*schema.CURATED_COLUMNS, *schema.EVENT_PARTITIONS]
    assert [f.type for f in table.schema] == (
        [pa.int32(), pa.int64(), pa.float64(), pa.int32(), pa.float64()]
        + [pa.int32()] * 7 + [pa.float64()] * 2 + [pa.int64()] * 4
    )
    # sorted by uniqueid (corrected: the lve_nr), recordtimestamp
    assert [pick(r, "uniqueid", "recordtimestamp") for r in table.to_pylist()] == [
        (1, T0), (1, T0 + MINUTE), (2, T0 + MINUTE)]


# --- steps 3 and 4: lane speed, lane grouping, location id ------------------------------

@pytest.mark.parametrize("semantics, speed_11, speed_21", [
    # lane 11: i=(2,1,0,0), s=(100,51,0,0)
    #   athena:    (100+51+0+0) DIV 2 classes = 151 DIV 2 = 75
    #   corrected: (2*100 + 1*51) / (2+1) = 251/3
    # lane 21: i=(1,1,1,0), s=(100,90,81,0)
    #   athena:    (100+90+81+0) DIV 3 = 271 DIV 3 = 90
    #   corrected: (100+90+81) / 3 = 271/3
    ("athena", 75.0, 90.0),
    ("corrected", 251 / 3, 271 / 3),
])
def test_lane_speed_integer_division_vs_weighted(tmp_path, semantics, speed_11, speed_21):
    write_parquet(tmp_path, [
        reading(11, 1, T0, i=(2, 1, 0, 0), s=(100, 51, 0, 0)),
        reading(21, 2, T0, i=(1, 1, 1, 0), s=(100, 90, 81, 0)),
    ])
    row_11, row_21 = run(tmp_path, semantics)  # athena ids 11 and 21; corrected 1 and 2
    assert row_11["currentspeed"] == speed_11
    assert row_21["currentspeed"] == speed_21
    # classes summed as given; bezettingsgraad = ROUND(AVG(i2+i3+i4+i5)) = 3 for both
    assert pick(row_11, "trafficintensityclass2", "trafficintensityclass3",
                "trafficintensityclass4", "trafficintensityclass5", "bezettingsgraad") == (2, 1, 0, 0, 3)
    assert row_21["bezettingsgraad"] == 3


@BOTH
def test_null_speed_when_no_vehicle_passed(tmp_path, semantics):
    motorbikes_only = reading(41, 4, T0, i=(0, 0, 0, 0), s=(0, 0, 0, 0))
    motorbikes_only[schema.intensity(1)] = 3  # class 1 is ignored
    motorbikes_only[schema.arithmetic_speed(1)] = 120
    write_parquet(tmp_path, [motorbikes_only])
    [row] = run(tmp_path, semantics)
    assert row["currentspeed"] is None and row["previousspeed"] is None
    assert row["avgspeed3minutes"] is None and row["avgspeed20minutes"] is None
    assert pick(row, "bezettingsgraad", "trafficintensityclass2", "trafficjamindicator",
                "trafficjamindicatorlong", "speeddiffindicator") == (0, 0, -1, -1, 0)


def _lve5_readings():
    return [
        # T0: lanes 51 (90 km/h, 1 vehicle), 52 (110, 2 vehicles), 53 (no vehicle)
        reading(51, 5, T0, i=(1, 0, 0, 0), s=(90, 0, 0, 0)),
        reading(52, 5, T0, i=(2, 0, 0, 0), s=(110, 0, 0, 0)),
        reading(53, 5, T0, i=(0, 0, 0, 0), s=(0, 0, 0, 0)),
        # T0+60: lane 53, the highest id, is missing
        reading(51, 5, T0 + MINUTE, i=(1, 0, 0, 0), s=(80, 0, 0, 0)),
        reading(52, 5, T0 + MINUTE, i=(2, 0, 0, 0), s=(100, 0, 0, 0)),
    ]


def test_lane_grouping_athena_takes_max_id_of_lanes_present(tmp_path):
    write_parquet(tmp_path, _lve5_readings())
    rows = by_key(run(tmp_path, "athena"))
    assert set(rows) == {(53, T0), (52, T0 + MINUTE)}
    # T0: AVG(90, 110, NULL) = 100; ROUND(AVG(1, 2, 0)) = ROUND(1.0) = 1; SUM(i2) = 3
    assert pick(rows[(53, T0)], "currentspeed", "bezettingsgraad", "trafficintensityclass2") == (100.0, 1, 3)
    # T0+60 is a new series (uniqueid 52): no previous row; AVG(80, 100) = 90;
    # ROUND(AVG(1, 2)) = ROUND(1.5) = 2 (half away from zero)
    assert pick(rows[(52, T0 + MINUTE)], "currentspeed", "bezettingsgraad", "previousspeed",
                "avgspeed3minutes") == (90.0, 2, None, 90.0)


def test_lane_grouping_corrected_names_the_location_by_its_lve_nr(tmp_path):
    write_parquet(tmp_path, _lve5_readings())
    rows = by_key(run(tmp_path, "corrected"))
    assert set(rows) == {(5, T0), (5, T0 + MINUTE)}
    assert pick(rows[(5, T0)], "currentspeed", "bezettingsgraad", "trafficintensityclass2") == (100.0, 1, 3)
    # one series: previous = 100 (60 s earlier), 90-100 = -10 -> 0, avg3 = (100+90)/2 = 95
    assert pick(rows[(5, T0 + MINUTE)], "currentspeed", "bezettingsgraad", "previousspeed",
                "speeddiffindicator", "avgspeed3minutes") == (90.0, 2, 100.0, 0, 95.0)


@pytest.mark.parametrize("semantics, locations", [
    ("athena", [61, 661]),  # MAX of the kept lanes of the minute
    # the lve_nr, whatever lanes were read: 62 (occupancy -1), 63 (defect), 69 (invalid,
    # speed 300) and 668 (another day's, in a late folder) change nothing
    ("corrected", [6, 66]),
])
def test_location_id_of_lanes_not_kept(tmp_path, semantics, locations):
    write_parquet(tmp_path, [
        reading(61, 6, T0, s=(70, 0, 0, 0)),
        reading(62, 6, T0, i=(5, 0, 0, 0), s=(10, 0, 0, 0), occupancy=-1),
        reading(63, 6, T0, i=(5, 0, 0, 0), s=(10, 0, 0, 0), defect=1),
        reading(69, 6, T0, s=(300, 0, 0, 0)),
        reading(661, 66, T0, s=(80, 0, 0, 0)),
        reading(668, 66, MIDNIGHT + 24 * HOUR + 10 * HOUR),
    ])
    rows = run(tmp_path, semantics)
    # only the kept lane of each location counts in the values
    assert [pick(r, "uniqueid", "recordtimestamp", "currentspeed", "trafficintensityclass2")
            for r in rows] == [(locations[0], T0, 70.0, 1), (locations[1], T0, 80.0, 1)]


# --- steps 6 to 9: previous speed and windows ------------------------------------------

@pytest.mark.parametrize("semantics, expected", [
    # speeds 50 @T0, 80 @T0+60, 55 @T0+180 (a minute missing), 60 @T0+241 (61 s later)
    # columns: previousspeed, speeddiffindicator, avgspeed3minutes, avgspeed20minutes
    ("athena", {
        T0: (None, 0, 50.0, 50.0),
        T0 + 60: (50.0, 1, 65.0, 65.0),  # 80-50 = 30; (50+80)/2
        T0 + 180: (80.0, -1, 185 / 3, 185 / 3),  # previous row, no time check: 55-80 = -25; 3 rows
        T0 + 241: (55.0, 0, 65.0, 245 / 4),  # 60-55 = 5; rows 80,55,60 -> 195/3; 4 rows 245/4
    }),
    ("corrected", {
        T0: (None, 0, 50.0, 50.0),
        T0 + 60: (50.0, 1, 65.0, 65.0),  # previous row exactly 60 s earlier counts
        T0 + 180: (None, 0, 67.5, 185 / 3),  # 120 s gap: no previous; [T0+60, T0+180]: (80+55)/2
        T0 + 241: (None, 0, 57.5, 245 / 4),  # 61 s gap; [T0+121, T0+241]: (55+60)/2
    }),
])
def test_previousspeed_60_second_rule_and_3_minute_window(tmp_path, semantics, expected):
    write_parquet(tmp_path, [reading(71, 7, T0 + dt, s=(v, 0, 0, 0))
                             for dt, v in ((0, 50), (60, 80), (180, 55), (241, 60))])
    rows = by_key(run(tmp_path, semantics))
    assert {t: pick(r, "previousspeed", "speeddiffindicator", "avgspeed3minutes", "avgspeed20minutes")
            for (_, t), r in rows.items()} == expected


@pytest.mark.parametrize("semantics, at_minute_20, at_minute_21", [
    # series at minutes 0..21 without minute 10: speed 10 at minute 0, 30 at minute 1,
    # 50 at all others
    # athena, 20 rows: minute 20 -> minutes 0..20 (20 rows): (10+30+18*50)/20 = 940/20 = 47
    #                  minute 21 -> minutes 1..21: (30+19*50)/20 = 980/20 = 49
    ("athena", 47.0, 49.0),
    # corrected, [t-1140, t]: minute 20 -> minutes 1..20 (19 rows): (30+18*50)/19 = 930/19
    #                         minute 21 -> minutes 2..21 (19 rows): 50
    ("corrected", 930 / 19, 50.0),
])
def test_20_minute_window_rows_vs_time(tmp_path, semantics, at_minute_20, at_minute_21):
    speeds = {0: 10, 1: 30}
    write_parquet(tmp_path, [reading(81, 8, T0 + m * MINUTE, s=(speeds.get(m, 50), 0, 0, 0))
                             for m in range(22) if m != 10])
    rows = {r["recordtimestamp"]: r for r in run(tmp_path, semantics)}
    assert rows[T0 + 20 * MINUTE]["avgspeed20minutes"] == at_minute_20
    assert rows[T0 + 21 * MINUTE]["avgspeed20minutes"] == at_minute_21
    assert rows[T0 + 21 * MINUTE]["trafficjamindicatorlong"] == 0  # 49 and 50 are in the 0 band


# --- steps 7 and 10: indicators ------------------------------------------------------

@pytest.mark.parametrize("semantics, expected", [
    # one reading per location, so avg3 = avg20 = currentspeed
    # uniqueid: (avgspeed3minutes, trafficjamindicator)
    ("athena", {1001: (0.0, 1), 1011: (40.0, 1), 1022: (40.5, -1), 1031: (41.0, 0),
                1041: (250.0, 0), 1052: (250.5, -1), 1061: (None, -1)}),
    # 250.5 cannot happen in corrected: a weighted mean of speeds 0..250 stays <= 250;
    # uniqueid is the lve_nr
    ("corrected", {100: (0.0, 1), 101: (40.0, 1), 102: (40.5, 0), 103: (41.0, 0),
                   104: (250.0, 0), 105: (250.0, 0), 106: (None, -1)}),
])
def test_jam_bands(tmp_path, semantics, expected):
    write_parquet(tmp_path, [
        reading(1001, 100, T0, s=(0, 0, 0, 0)),
        reading(1011, 101, T0, s=(40, 0, 0, 0)),
        reading(1021, 102, T0, s=(40, 0, 0, 0)),  # AVG(40, 41) = 40.5
        reading(1022, 102, T0, s=(41, 0, 0, 0)),
        reading(1031, 103, T0, s=(41, 0, 0, 0)),
        reading(1041, 104, T0, s=(250, 0, 0, 0)),
        # athena sums the speeds of all four classes, also of a class without vehicles
        # (validation only checks classes with vehicles): lane 1052 = (250+1) DIV 1 = 251,
        # AVG(250, 251) = 250.5. corrected: 1*250/1 = 250, AVG(250, 250) = 250.
        reading(1051, 105, T0, s=(250, 0, 0, 0)),
        reading(1052, 105, T0, s=(250, 1, 0, 0)),
        reading(1061, 106, T0, i=(0, 0, 0, 0), s=(0, 0, 0, 0)),  # no vehicle: NULL
    ])
    rows = run(tmp_path, semantics)
    assert {r["uniqueid"]: pick(r, "avgspeed3minutes", "trafficjamindicator") for r in rows} == expected
    assert all(r["trafficjamindicatorlong"] == r["trafficjamindicator"] for r in rows)


@BOTH
def test_speed_difference(tmp_path, semantics):
    # minutes 0..5: 50, 70 (+20), 50 (-20), 69 (+19), no vehicle (NULL), 80 (after NULL)
    speeds = [50, 70, 50, 69, None, 80]
    write_parquet(tmp_path, [
        reading(111, 11, T0 + m * MINUTE, i=(0 if v is None else 1, 0, 0, 0), s=(v or 0, 0, 0, 0))
        for m, v in enumerate(speeds)])
    rows = run(tmp_path, semantics)
    assert [r["previousspeed"] for r in rows] == [None, 50.0, 70.0, 50.0, 69.0, None]
    assert [r["speeddiffindicator"] for r in rows] == [0, 1, -1, 0, 0, 0]


# --- step 11 and the run's ranges -----------------------------------------------------

@BOTH
def test_partitions_around_midnight_utc(tmp_path, semantics):
    write_parquet(tmp_path, [
        reading(121, 12, MIDNIGHT - MINUTE),  # 2020-04-06 23:59: context only
        reading(121, 12, MIDNIGHT),  # 2020-04-07 00:00
        reading(121, 12, MIDNIGHT + 24 * HOUR - MINUTE, arrived=MIDNIGHT + 24 * HOUR + 5),  # 23:59, lands on the 8th
        reading(121, 12, MIDNIGHT + 24 * HOUR),  # 2020-04-08 00:00
    ])
    partitions = lambda rows: [pick(r, "recordtimestamp", "year", "month", "day", "hour") for r in rows]
    assert partitions(run(tmp_path, semantics)) == [
        (MIDNIGHT, 2020, 4, 7, 0), (MIDNIGHT + 24 * HOUR - MINUTE, 2020, 4, 7, 23)]
    assert partitions(run(tmp_path, semantics, end=DAY + timedelta(days=1))) == [
        (MIDNIGHT, 2020, 4, 7, 0), (MIDNIGHT + 24 * HOUR - MINUTE, 2020, 4, 7, 23),
        (MIDNIGHT + 24 * HOUR, 2020, 4, 8, 0)]


@pytest.mark.parametrize("semantics, expected", [
    # columns: currentspeed, trafficintensityclass2, trafficintensityclass3, bezettingsgraad
    ("athena", {
        131: (85.0, 3, 0, 2),  # both readings: AVG(100, 70); 2+1; ROUND(AVG(2, 1)) = ROUND(1.5)
        141: (90.0, 6, 0, 3),  # the same reading twice: 3+3; ROUND(AVG(3, 3))
        151: (97.5, 2, 3, 3),  # (90+80) DIV 2 = 85, (120+100) DIV 2 = 110: AVG 97.5; ROUND(AVG(3, 2)) = 3
        161: (92.5, 2, 0, 1),  # AVG(90, 95)
        171: (80.0, 6, 0, 3),  # AVG(60, 100); 5+1; ROUND(AVG(5, 1))
    }),
    ("corrected", {  # uniqueid is the lve_nr
        13: (70.0, 1, 0, 1),  # B's 09:30+00:00 is later than A's 10:00+02:00 (08:00 UTC)
        14: (90.0, 3, 0, 3),  # counted once
        15: (250 / 3, 1, 2, 3),  # same instant: C wins on i3 (2 > 1): (90 + 2*80)/3
        16: (95.0, 1, 0, 1),  # all else equal: the greater s2 wins
        17: (100.0, 1, 0, 1),  # NULL tijd_laatst_gewijzigd is older than any time
    }),
])
def test_duplicates(tmp_path, semantics, expected):
    winners_first = [
        reading(131, 13, T0, i=(1, 0, 0, 0), s=(70, 0, 0, 0), modified="2020-04-07T09:30:00+00:00"),
        reading(141, 14, T0, i=(3, 0, 0, 0), s=(90, 0, 0, 0)),
        reading(151, 15, T0, i=(1, 2, 0, 0), s=(90, 80, 0, 0), modified="2020-04-07T10:00:00+02:00"),
        reading(161, 16, T0, s=(95, 0, 0, 0)),
        reading(171, 17, T0, s=(100, 0, 0, 0), modified="2020-01-01T00:00:00Z"),
    ]
    losers = [
        reading(131, 13, T0, i=(2, 0, 0, 0), s=(100, 0, 0, 0), modified="2020-04-07T10:00:00+02:00"),
        reading(141, 14, T0, i=(3, 0, 0, 0), s=(90, 0, 0, 0)),
        reading(151, 15, T0, i=(1, 1, 0, 0), s=(120, 100, 0, 0), modified="2020-04-07T08:00:00Z"),
        reading(161, 16, T0, s=(90, 0, 0, 0)),
        reading(171, 17, T0, i=(5, 0, 0, 0), s=(60, 0, 0, 0), modified=None),
    ]
    for name, order in (("a", (winners_first, losers)), ("b", (losers, winners_first))):
        for readings in order:  # one file each, in both orders: the result must not depend on it
            write_parquet(tmp_path / name, readings)
        rows = run(tmp_path / name, semantics)
        assert {r["uniqueid"]: pick(r, "currentspeed", "trafficintensityclass2", "trafficintensityclass3",
                                    "bezettingsgraad") for r in rows} == expected


@pytest.mark.parametrize("semantics, lookback, avg20", [
    ("athena", 60, 60.0),  # context from 23:00: rows 30, 60, 90
    ("athena", 120, 47.5),  # context from 22:00 adds 22:30: (10+30+60+90)/4 = 190/4
    ("corrected", 60, 60.0),  # [23:41, 00:00] whatever the lookback
    ("corrected", 120, 60.0),
])
def test_lookback_feeds_windows_but_is_not_output(tmp_path, semantics, lookback, avg20):
    write_parquet(tmp_path, [
        reading(181, 18, MIDNIGHT - 90 * MINUTE, s=(10, 0, 0, 0)),  # 22:30 on the 6th
        reading(181, 18, MIDNIGHT - 2 * MINUTE, s=(30, 0, 0, 0)),
        reading(181, 18, MIDNIGHT - MINUTE, s=(60, 0, 0, 0)),
        reading(181, 18, MIDNIGHT, s=(90, 0, 0, 0)),
    ])
    [row] = run(tmp_path, semantics, lookback_minutes=lookback)
    # previous 60 (90-60 = 30 -> 1), avg3 (30+60+90)/3 = 60
    assert pick(row, "recordtimestamp", "previousspeed", "speeddiffindicator", "avgspeed3minutes",
                "avgspeed20minutes") == (MIDNIGHT, 60.0, 1, 60.0, avg20)


def test_corrected_refuses_a_lookback_shorter_than_its_window(tmp_path):
    with pytest.raises(ValueError, match="lookback_minutes"):
        curated_rows(str(tmp_path), DAY, DAY, semantics="corrected", lookback_minutes=19)
    assert curated_rows(str(tmp_path), DAY, DAY, semantics="athena", lookback_minutes=0).num_rows == 0


@BOTH
def test_late_readings(tmp_path, semantics):
    end_of_day = MIDNIGHT + 24 * HOUR
    write_parquet(tmp_path, [
        # arrived in the folder hour=23 of the 8th: less than 24 h after the end of the 7th
        reading(191, 19, T0 + 4 * HOUR, arrived=end_of_day + 23 * HOUR + 59 * MINUTE),
        # arrived in hour=00 of the 9th: 24 h after, not read
        reading(191, 19, T0 + 4 * HOUR + MINUTE, arrived=end_of_day + 24 * HOUR),
    ])
    assert [r["recordtimestamp"] for r in run(tmp_path, semantics)] == [T0 + 4 * HOUR]
    assert run(tmp_path, semantics, late_hours=2) == []


# --- raw input forms and validation ------------------------------------------------------

def _as_stream_json(r, iso_offset_hours=None):
    """A reading as the stream sends it: every value a JSON string, except a few numbers;
    tijd_waarneming as epoch digits or ISO-8601 with an offset."""
    out = {k: (None if v is None else str(v)) for k, v in r.items() if k != "arrived"}
    out[schema.arithmetic_speed(2)] = r[schema.arithmetic_speed(2)]  # a JSON number
    if iso_offset_hours is not None:
        local = timezone(timedelta(hours=iso_offset_hours))
        out[schema.OBSERVED_AT] = datetime.fromtimestamp(r[schema.OBSERVED_AT], local).isoformat()
    return out


@BOTH
def test_json_strings_and_iso_timestamps_parse_like_parquet(tmp_path, semantics):
    readings = (
        _lve5_readings()
        + [reading(71, 7, T0 + dt, s=(v, 0, 0, 0)) for dt, v in ((0, 50), (60, 80), (180, 55))]
        + [reading(131, 13, T0, s=(70, 0, 0, 0), modified="2020-04-07T09:30:00+00:00"),
           reading(131, 13, T0, i=(2, 0, 0, 0), s=(100, 0, 0, 0)),
           reading(121, 12, MIDNIGHT - MINUTE, s=(60, 0, 0, 0)),  # context: previousspeed of 00:00
           reading(121, 12, MIDNIGHT, s=(100, 0, 0, 0)),
           reading(121, 12, MIDNIGHT + 24 * HOUR - MINUTE)]
    )
    write_parquet(tmp_path / "parquet", readings)

    json_root = tmp_path / "json"
    # every other reading's tijd_waarneming as ISO-8601 in +02:00 (the last one, 23:59 UTC,
    # reads 2020-04-08T01:59:00+02:00), the others as digit strings, the first as a number
    lines = [_as_stream_json(r, iso_offset_hours=(2 if n % 2 == 0 else None))
             for n, r in enumerate(reversed(readings))]
    lines[1][schema.OBSERVED_AT] = int(lines[1][schema.OBSERVED_AT])
    assert lines[0][schema.OBSERVED_AT] == "2020-04-08T01:59:00+02:00"
    for r, line in zip(reversed(readings), lines):
        write_json_lines(json_root, r["arrived"], [line])
    write_json_lines(json_root, T0, [
        "[1, 2]", '"not an object"', "{broken",
        # each would otherwise take part in lve 5's minute T0
        {**_as_stream_json(reading(99, 5, T0)), schema.LANE_ID: "99.5"},
        {**_as_stream_json(reading(99, 5, T0)), schema.arithmetic_speed(2): "fast"},
        {**_as_stream_json(reading(99, 5, T0)), schema.arithmetic_speed(2): 251},
        {**_as_stream_json(reading(99, 5, T0)), schema.intensity(3): "-1"},
        {**_as_stream_json(reading(99, 5, T0)), schema.intensity(4): None},
        {**_as_stream_json(reading(99, 5, T0)), schema.MODIFIED_AT: "yesterday"},
        {**_as_stream_json(reading(99, 5, T0)), schema.OBSERVED_AT: "soon"},
        {**_as_stream_json(reading(99, 5, T0)), schema.UNIT_ID: None},
    ])

    from_parquet = run(tmp_path / "parquet", semantics)
    # lve 5: 2 rows, lve 7: 3, lve 13: 1, lve 12: 2 (00:00 and 23:59; 23:59 on the 6th is context)
    assert len(from_parquet) == 8
    location_12 = 121 if semantics == "athena" else 12
    assert by_key(from_parquet)[(location_12, MIDNIGHT)]["previousspeed"] == 60.0
    assert run(json_root, semantics, source_format="json") == from_parquet


@BOTH
def test_no_files_gives_an_empty_table(tmp_path, semantics):
    assert run(tmp_path / "missing", semantics) == []
    write_parquet(tmp_path, [reading(1, 1, T0 + 10 * 24 * HOUR)])  # only folders outside the run
    (tmp_path / "year=2020" / "month=04" / "day=07" / "hour=08").mkdir(parents=True)  # an empty folder
    assert run(tmp_path, semantics) == []
    assert run(tmp_path, semantics, source_format="json") == []


def test_locations_select_rows_after_grouping(tmp_path):
    write_parquet(tmp_path, _lve5_readings() + [reading(71, 7, T0)])
    rows = run(tmp_path, "corrected", locations=[5])
    assert [pick(r, "uniqueid", "recordtimestamp", "previousspeed") for r in rows] == [
        (5, T0, None), (5, T0 + MINUTE, 100.0)]
    assert run(tmp_path, "athena", locations=[51]) == []  # 51 names no location


def test_seen_lanes_of_sections_whose_lanes_come_and_go(tmp_path):
    """docs/SEMANTICS.md, "The locations table": every reading of the run's days with an
    integer lane and section counts, kept or not; a lane that moves is a lane of both."""
    write_parquet(tmp_path, [
        reading(957, 18, T0), reading(957, 18, T0 + HOUR), reading(957, 19, T0 + HOUR),
        reading(957, 19, T0 + 2 * HOUR),
        reading(50, 18, T0 + MINUTE, defect=1),
        reading(51, 18, T0 + MINUTE, s=(300, 0, 0, 0)),  # rejected (bad speed): still says so
        reading(52, 18, MIDNIGHT - MINUTE),  # the lookback: not the run's day
        reading(53, 18, MIDNIGHT + 24 * HOUR, arrived=MIDNIGHT + 24 * HOUR + 5),  # the next day
    ])
    at = lambda epoch: datetime.fromtimestamp(epoch, timezone.utc).replace(tzinfo=None)
    assert [tuple(r.values()) for r in seen_lanes(str(tmp_path), DAY, DAY)] == [
        (18, 50, "H50", at(T0 + MINUTE), at(T0 + MINUTE)),
        (18, 51, "H51", at(T0 + MINUTE), at(T0 + MINUTE)),
        (18, 957, "H957", at(T0), at(T0 + HOUR)),
        (19, 957, "H957", at(T0 + HOUR), at(T0 + 2 * HOUR)),
    ]
    # --locations: corrected ids are lve_nr, athena ids lane ids (the sections holding one)
    assert {r["lve_nr"] for r in seen_lanes(str(tmp_path), DAY, DAY, locations=[19])} == {19}
    assert {r["lve_nr"] for r in seen_lanes(str(tmp_path), DAY, DAY, semantics="athena",
                                            locations=[957])} == {18, 19}


# --- write_curated -------------------------------------------------------------------------

def test_write_curated_partitions_and_replaces_its_days(tmp_path):
    raw, target = tmp_path / "raw", tmp_path / "curated"
    write_parquet(raw, [reading(71, 7, T0), reading(71, 7, T0 + MINUTE),
                        reading(71, 7, MIDNIGHT + 24 * HOUR - MINUTE, arrived=MIDNIGHT + 24 * HOUR)])
    other_day = target / "year=2020" / "month=4" / "day=8" / "hour=0"
    other_day.mkdir(parents=True)
    pq.write_table(curated_rows(str(raw), DAY, DAY).slice(0, 1).drop_columns(list(schema.EVENT_PARTITIONS)),
                   other_day / "kept.parquet")

    for _ in range(2):  # a second run replaces the day, never adds to it
        result = write_curated(str(raw), str(target), DAY, DAY, semantics="athena")
        assert result["rows"] == 3 and result["seconds"] > 0

    assert sorted(p.relative_to(target).parent.as_posix() for p in target.rglob("*.parquet")) == [
        "year=2020/month=4/day=7/hour=23", "year=2020/month=4/day=7/hour=8",
        "year=2020/month=4/day=8/hour=0"]
    day_7 = ds.dataset(target / "year=2020" / "month=4" / "day=7", format="parquet",
                       partitioning=ds.partitioning(pa.schema([("hour", pa.int64())]), flavor="hive"))
    written = day_7.to_table().sort_by([("uniqueid", "ascending"), ("recordtimestamp", "ascending")])
    expected = curated_rows(str(raw), DAY, DAY, semantics="athena")
    assert written.drop_columns(["hour"]).to_pylist() == expected.drop_columns(
        list(schema.EVENT_PARTITIONS)).to_pylist()
    assert [f.type for f in pq.read_schema(next(target.rglob("hour=8/*.parquet")))] == [
        f.type for f in CURATED_ARROW_SCHEMA][:-4]


def test_missing_columns(tmp_path):
    table = pa.Table.from_pylist([{k: v for k, v in reading(1, 1, T0).items() if k != "arrived"}],
                                 schema=RAW_ARROW_SCHEMA)
    pq.write_table(table.drop_columns([schema.MODIFIED_AT]), _folder(tmp_path / "no_modified", T0) / "a.parquet")
    pq.write_table(table.drop_columns([schema.DEFECT]), _folder(tmp_path / "no_defect", T0) / "a.parquet")
    # tijd_laatst_gewijzigd only resolves duplicates, so athena does without it
    assert [r["uniqueid"] for r in run(tmp_path / "no_modified", "athena")] == [1]
    with pytest.raises(ValueError, match=schema.MODIFIED_AT):
        run(tmp_path / "no_modified", "corrected")
    with pytest.raises(ValueError, match=schema.DEFECT):
        run(tmp_path / "no_defect", "athena")


def test_command_line(tmp_path, capsys):
    from tools.duckdb_reference import main

    write_parquet(tmp_path / "raw", [reading(71, 7, T0), reading(51, 5, T0)])
    assert main(["--raw", str(tmp_path / "raw"), "--start-date", "2020-04-07", "--semantics", "athena",
                 "--locations", "71", "--out", str(tmp_path / "out")]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 1
    assert [p.relative_to(tmp_path / "out").parent.as_posix() for p in (tmp_path / "out").rglob("*.parquet")] == [
        "year=2020/month=4/day=7/hour=8"]
