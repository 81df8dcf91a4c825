"""The daily summary (docs/SEMANTICS.md, "The daily summary"): the Spark computation
(traffic_glue.compute.summary) and its DuckDB twin (tools/duckdb_summary.py) against values
worked out by hand, and against each other on seeded generated curated rows.
"""

from __future__ import annotations

import datetime as dt
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chispa import assert_approx_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from tests.factories import curated_df, frame
from tools import comparing
from tools import duckdb_summary
from tools.duckdb_summary import summary_rows
from traffic_glue.compute import schema as S
from traffic_glue.compute import summary as SU

COLUMNS = list(SU.SUMMARY_COLUMNS)
DOUBLES = {f.name for f in SU.SUMMARY_SCHEMA.fields if f.dataType.simpleString() == "double"}
# Means are sums of doubles in an order neither engine promises; the percentile's
# interpolation is written differently in each. Everything else must be equal.
TOLERANCE = 1e-9

_ARROW = {"int": pa.int32(), "bigint": pa.int64(), "double": pa.float64()}
CURATED_ARROW_SCHEMA = pa.schema(
    [pa.field(f.name, _ARROW[f.dataType.simpleString()]) for f in S.CURATED_SCHEMA.fields]
)


def at(text: str) -> int:
    """Epoch seconds of a UTC wall-clock time, '2020-04-07 05:00'."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp())


def minute(location, text, speed, jam=0, jam_long=0, classes=(1, 0, 0, 0), avg20=50.0) -> tuple:
    """A curated row as the table holds it (CURATED_TABLE_SCHEMA, with its partition
    columns); `classes` are trafficintensityclass2..5."""
    t = at(text)
    when = dt.datetime.fromtimestamp(t, dt.timezone.utc)
    vehicles = sum(c or 0 for c in classes)
    return (location, t, speed, vehicles, None, jam, jam_long, *classes, 0, speed, avg20,
            when.year, when.month, when.day, when.hour)


def write_parquet(rows, path) -> None:
    """Curated rows (tuples of `minute`) as one Parquet file, without the partitions."""
    names = CURATED_ARROW_SCHEMA.names
    table = pa.Table.from_pylist([dict(zip(names, row)) for row in rows], schema=CURATED_ARROW_SCHEMA)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def assert_same_rows(ours: list[tuple], theirs: list[tuple]) -> None:
    """Rows in COLUMNS order, sorted by uniqueid, day, hour; doubles within TOLERANCE."""
    comparing.assert_same_rows(ours, theirs, COLUMNS, DOUBLES, tolerance=TOLERANCE)


def _spark_rows(df) -> list[tuple]:
    return sorted((tuple(r) for r in df.collect()), key=lambda r: r[:3])


def _duck_rows(curated) -> list[tuple]:
    return [tuple(r[c] for c in COLUMNS) for r in summary_rows(curated)]


APR7, APR8 = dt.date(2020, 4, 7), dt.date(2020, 4, 8)

HAND_ROWS = [
    # Location 1, 2020-04-07 05:00..06:00 UTC (07:00 in Brussels, summer time).
    minute(1, "2020-04-07 05:00", 50.0, jam=0, jam_long=0, classes=(10, 1, 0, 2), avg20=55.0),
    minute(1, "2020-04-07 05:01", 30.0, jam=1, jam_long=1, classes=(5, 0, 0, 0), avg20=45.0),
    # No vehicle: currentspeed NULL, the indicator unknown; still a measured minute.
    minute(1, "2020-04-07 05:02", None, jam=-1, jam_long=1, classes=(0, 0, 0, 0), avg20=40.0),
    minute(1, "2020-04-07 05:03", 20.0, jam=1, jam_long=-1, classes=(3, 0, 1, 0), avg20=38.5),
    minute(1, "2020-04-07 05:59", 10.0, jam=1, jam_long=1, classes=(1, 0, 0, 0), avg20=35.0),
    # Location 1, the next hour: one row, a NULL class total.
    minute(1, "2020-04-07 06:00", 60.0, jam=0, jam_long=1, classes=(4, None, 0, 1), avg20=52.0),
    # Location 2, the same hour as location 1's first: no speed at all, NULL totals.
    minute(2, "2020-04-07 05:10", None, jam=-1, jam_long=-1, classes=(None,) * 4, avg20=None),
    minute(2, "2020-04-07 05:11", None, jam=-1, jam_long=-1, classes=(None,) * 4, avg20=None),
    # Location 2 across midnight UTC: two days.
    minute(2, "2020-04-07 23:59", 80.0, jam=0, jam_long=0, classes=(2, 0, 0, 0), avg20=70.0),
    minute(2, "2020-04-08 00:00", 40.0, jam=1, jam_long=0, classes=(3, 1, 0, 0), avg20=60.0),
    # Location 1 in winter time: 05:30 UTC is 06:30 in Brussels.
    minute(1, "2020-01-07 05:30", 90.0, jam=0, jam_long=0, classes=(7, 0, 0, 0), avg20=88.0),
]

HAND_EXPECTED = [
    # (uniqueid, day, hour, local_hour, minutes_measured, jam_minutes, long_jam_minutes,
    #  mean_speed, p15_speed, vehicles_class2..5, worst_avgspeed20)
    #
    # 5 rows. jam = 1 at 05:01, 05:03, 05:59 (0 and -1 do not count): 3; long: 05:01,
    # 05:02, 05:59: 3. Speeds without NULL: 50, 30, 20, 10: mean 110 / 4 = 27.5.
    # p15: sorted 10, 20, 30, 50; rank h = 0.15 * (4 - 1) = 0.45, between 10 and 20:
    # 10 + 0.45 * (20 - 10) = 14.5. Class 2: 10 + 5 + 0 + 3 + 1 = 19; class 3: 1;
    # class 4: 1; class 5: 2. Lowest avgspeed20minutes: 35.0.
    (1, APR7, 5, 7, 5, 3, 3, 110 / 4, 14.5, 19, 1, 1, 2, 35.0),
    # One row: every statistic is that row's; the NULL class 3 sums to 0.
    (1, APR7, 6, 8, 1, 0, 1, 60.0, 60.0, 4, 0, 0, 1, 52.0),
    # Two minutes, no speed, no avgspeed20minutes: NULL statistics, 0 vehicles, no jam.
    (2, APR7, 5, 7, 2, 0, 0, None, None, 0, 0, 0, 0, None),
    # 23:59 UTC on 7 April is 01:59 on 8 April in Brussels: day and hour stay UTC.
    (2, APR7, 23, 1, 1, 0, 0, 80.0, 80.0, 2, 0, 0, 0, 70.0),
    (2, APR8, 0, 2, 1, 1, 0, 40.0, 40.0, 3, 1, 0, 0, 60.0),
    # Winter: UTC+1.
    (1, dt.date(2020, 1, 7), 5, 6, 1, 0, 0, 90.0, 90.0, 7, 0, 0, 0, 88.0),
]


def test_daily_summary_by_hand(spark):
    result = SU.daily_summary(curated_df(spark, HAND_ROWS))
    # The schema's names and types: its column comments are the table's, not the frame's.
    plain = T.StructType([T.StructField(f.name, f.dataType) for f in SU.SUMMARY_SCHEMA.fields])
    expected = frame(spark, HAND_EXPECTED, plain)
    assert_approx_df_equality(result, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_duckdb_summary_by_hand(tmp_path):
    write_parquet(HAND_ROWS, tmp_path / "curated" / "part-0.parquet")
    expected = sorted(HAND_EXPECTED, key=lambda r: r[:3])
    assert_same_rows(_duck_rows(tmp_path / "curated"), expected)


def test_summary_schema_is_the_table_contract(spark):
    result = SU.daily_summary(curated_df(spark, HAND_ROWS[:1]))
    assert [(f.name, f.dataType) for f in result.schema.fields] == [
        (f.name, f.dataType) for f in SU.SUMMARY_SCHEMA.fields
    ]
    assert COLUMNS == [
        "uniqueid", "day", "hour", "local_hour", "minutes_measured", "jam_minutes",
        "long_jam_minutes", "mean_speed", "p15_speed", "vehicles_class2", "vehicles_class3",
        "vehicles_class4", "vehicles_class5", "worst_avgspeed20",
    ]


PERCENTILE_ROWS = [
    # Seven speeds and a NULL, unordered, in one hour of location 4.
    minute(4, "2020-04-07 10:00", 100.0),
    minute(4, "2020-04-07 10:01", 12.0),
    minute(4, "2020-04-07 10:02", 80.0),
    minute(4, "2020-04-07 10:03", 10.0),
    minute(4, "2020-04-07 10:04", 50.0),
    minute(4, "2020-04-07 10:05", None),
    minute(4, "2020-04-07 10:06", 30.0),
    minute(4, "2020-04-07 10:07", 90.0),
    # Ties in location 5: 20, 20, 20, 40; h = 0.45 lies between two 20s.
    minute(5, "2020-04-07 10:00", 40.0),
    minute(5, "2020-04-07 10:01", 20.0),
    minute(5, "2020-04-07 10:02", 20.0),
    minute(5, "2020-04-07 10:03", 20.0),
]
# Location 4: sorted 10, 12, 30, 50, 80, 90, 100 (n = 7); h = 0.15 * 6 = 0.9, between
# 10 and 12: 10 + 0.9 * (12 - 10) = 11.8. Location 5: 20.
PERCENTILE_EXPECTED = [(4, 11.8), (5, 20.0)]


def test_p15_interpolates_between_closest_ranks(spark, tmp_path):
    result = SU.daily_summary(curated_df(spark, PERCENTILE_ROWS)).select(S.LOCATION_ID, SU.P15_SPEED)
    expected = frame(spark, PERCENTILE_EXPECTED, result.schema)
    assert_approx_df_equality(result, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)

    write_parquet(PERCENTILE_ROWS, tmp_path / "curated.parquet")
    duck = [(r[S.LOCATION_ID], r[SU.P15_SPEED]) for r in summary_rows(tmp_path / "curated.parquet")]
    assert duck == [(4, pytest.approx(11.8, abs=1e-12)), (5, pytest.approx(20.0, abs=1e-12))]


DST_ROWS = [
    # Spring forward, 2020-03-29 01:00 UTC: Brussels 02:00 CET becomes 03:00 CEST.
    minute(3, "2020-03-29 00:30", 70.0),
    minute(3, "2020-03-29 01:30", 70.0),
    # Fall back, 2020-10-25 01:00 UTC: Brussels 03:00 CEST becomes 02:00 CET.
    minute(3, "2020-10-25 00:30", 70.0),
    minute(3, "2020-10-25 01:30", 70.0),
    minute(3, "2020-10-25 02:30", 70.0),
]
DST_EXPECTED = [
    (3, dt.date(2020, 3, 29), 0, 1),  # 00:30 UTC = 01:30 CET
    (3, dt.date(2020, 3, 29), 1, 3),  # 01:30 UTC = 03:30 CEST: no local hour 2 that day
    (3, dt.date(2020, 10, 25), 0, 2),  # 00:30 UTC = 02:30 CEST
    (3, dt.date(2020, 10, 25), 1, 2),  # 01:30 UTC = 02:30 CET: local hour 2 twice
    (3, dt.date(2020, 10, 25), 2, 3),  # 02:30 UTC = 03:30 CET
]


def test_local_hour_follows_brussels_clock_changes(spark, tmp_path):
    keys = [S.LOCATION_ID, SU.DAY, SU.HOUR, SU.LOCAL_HOUR]
    result = _spark_rows(SU.daily_summary(curated_df(spark, DST_ROWS)).select(*keys))
    assert result == DST_EXPECTED

    write_parquet(DST_ROWS, tmp_path / "curated.parquet")
    assert [tuple(r[k] for k in keys) for r in summary_rows(tmp_path / "curated.parquet")] == DST_EXPECTED


def test_day_and_hour_come_from_recordtimestamp_not_the_partition_columns(spark):
    # A row filed under the wrong partition still counts in the hour it was measured.
    row = list(minute(1, "2020-04-07 05:00", 50.0))
    row[-4:] = [2019, 1, 1, 0]
    result = _spark_rows(SU.daily_summary(curated_df(spark, [tuple(row)])).select(SU.DAY, SU.HOUR))
    assert result == [(APR7, 5)]


def test_empty_curated_gives_empty_summary(spark, tmp_path):
    assert SU.daily_summary(curated_df(spark, [])).count() == 0
    assert summary_rows(tmp_path / "nothing-here") == []


# --- parity: Spark against DuckDB on generated curated rows ------------------------------

PARITY_DAYS = (dt.date(2020, 10, 24), dt.date(2020, 10, 25))  # the second one falls back
PARITY_LOCATIONS = (101, 205, 333, 480)


def _generated_rows(seed: int = 7) -> list[tuple]:
    """Curated rows of a few locations over two days: missing minutes, NULL speeds,
    NULL class totals and avgspeed20minutes, all three indicator values, tied speeds,
    an hour without any speed, hours without a missing minute and a location present
    only some hours."""
    rng = random.Random(seed)
    rows = []
    for location in PARITY_LOCATIONS:
        for day in PARITY_DAYS:
            start = at(f"{day} 00:00")
            for m in range(1440):
                t = start + 60 * m
                hour = m // 60
                complete = location == 333 and hour == 7
                if (rng.random() < 0.1 and not complete) or (location == 480 and hour % 5 != 0):
                    continue  # a missing minute; 480 reports only every fifth hour
                no_speed = rng.random() < 0.08 or (location == 205 and hour == 13)
                # Speeds on a 0.5 grid, so an hour holds ties.
                speed = None if no_speed else rng.randrange(0, 260) / 2
                classes = tuple(None if rng.random() < 0.03 else rng.randrange(0, 30)
                                for _ in S.COUNTED_CLASSES)
                avg20 = None if rng.random() < 0.05 else rng.uniform(0, 130)
                rows.append((location, t, speed, sum(c or 0 for c in classes), None,
                             rng.choice((-1, 0, 1)), rng.choice((-1, 0, 1)), *classes,
                             0, speed, avg20))
    return rows


@pytest.fixture(scope="module")
def generated_curated(tmp_path_factory):
    """The generated rows as a Parquet curated table (`year=/month=/day=/` folders,
    partition values in the names only), beside a `_rejected/` folder that is not part
    of it."""
    root = tmp_path_factory.mktemp("summary") / "curated"
    rows = _generated_rows()
    for day in PARITY_DAYS:
        first, end = at(f"{day} 00:00"), at(f"{day} 00:00") + 86400
        write_parquet([r for r in rows if first <= r[1] < end],
                      root / f"year={day.year}" / f"month={day.month}" / f"day={day.day}"
                      / "part-0.parquet")
    rejected = root / "_rejected" / "run_date=2020-10-26" / "part-0.parquet"
    rejected.parent.mkdir(parents=True)
    pq.write_table(pa.table({"reject_reason": ["bad_speed"]}), rejected)
    return root, rows


def test_spark_and_duckdb_agree_on_generated_rows(spark, generated_curated):
    root, rows = generated_curated
    ours = _spark_rows(SU.daily_summary(spark.read.parquet(str(root))))
    theirs = _duck_rows(root)

    hours = {(r[0], r[1] // 3600) for r in rows}
    assert len(ours) == len(hours)
    assert_same_rows(ours, theirs)

    by_name = [dict(zip(COLUMNS, r)) for r in ours]
    # The data exercises what the table's rules distinguish.
    assert any(r[SU.P15_SPEED] is None for r in by_name)  # location 205, 13:00
    assert any(r[SU.MINUTES_MEASURED] == 60 for r in by_name)  # location 333, 07:00
    assert any(0 < r[SU.JAM_MINUTES] < r[SU.MINUTES_MEASURED] for r in by_name)
    fall_back = [r[SU.LOCAL_HOUR] for r in by_name
                 if r[S.LOCATION_ID] == 101 and r[SU.DAY] == PARITY_DAYS[1] and r[SU.HOUR] < 3]
    assert fall_back == [2, 2, 3]


def test_duckdb_summary_command_line(generated_curated, capsys):
    root, _ = generated_curated
    assert duckdb_summary.main(["--curated", str(root)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(printed) == len(_duck_rows(root))
    assert list(printed[0]) == COLUMNS
    assert printed[0][SU.DAY] == str(PARITY_DAYS[0])


def test_location_names_take_the_version_in_force_at_the_start_of_the_day(spark):
    """Location 7 was renamed by a snapshot of 2020-04-07 12:00: rows of the 7th take the
    version in force at 00:00 (the old one), rows of the 8th the new one, rows of the
    6th (before every version) the earliest. Location 8 has one version without bounds
    (a single configuration file); location 9 is not in the table (NULL)."""
    noon_7th = at("2020-04-07 12:00")
    names = frame(spark, [
        (7, "A14 km 94.7 (old name), direction 1", at("2020-04-07 00:30"), noon_7th),
        (7, "A14 km 94.7 (Parking Kruibeke), direction 1", noon_7th, None),
        (8, "lane 957 (not in the configuration)", None, None),
    ], SU.NAMES_SCHEMA)
    summary_fields = [f for f in SU.SUMMARY_SCHEMA.fields]
    base = [None] * (len(summary_fields) - 3)
    rows = frame(spark, [
        (7, dt.date(2020, 4, 6), 5, *base),
        (7, dt.date(2020, 4, 7), 5, *base),
        (7, dt.date(2020, 4, 7), 13, *base),
        (7, dt.date(2020, 4, 8), 5, *base),
        (8, dt.date(2020, 4, 7), 5, *base),
        (9, dt.date(2020, 4, 7), 5, *base),
        (None, dt.date(2020, 4, 7), 5, *base),
    ], SU.SUMMARY_SCHEMA)
    named = SU.with_location_names(rows, names)
    assert tuple(named.columns) == SU.TABLE_COLUMNS
    got = sorted(((r[S.LOCATION_ID] or 0), r[SU.DAY].day, r[SU.HOUR], r[SU.LOCATION_NAME]) for r in named.collect())
    assert got == [
        (0, 7, 5, None),
        (7, 6, 5, "A14 km 94.7 (old name), direction 1"),  # before every version: the earliest
        (7, 7, 5, "A14 km 94.7 (old name), direction 1"),  # 00:00 of the 7th: none in force yet
        (7, 7, 13, "A14 km 94.7 (old name), direction 1"),  # by day, not by hour
        (7, 8, 5, "A14 km 94.7 (Parking Kruibeke), direction 1"),
        (8, 7, 5, "lane 957 (not in the configuration)"),
        (9, 7, 5, None),
    ]
    assert SU.with_location_names(rows, None).where(F.col(SU.LOCATION_NAME).isNotNull()).count() == 0
