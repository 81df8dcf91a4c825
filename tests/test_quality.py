"""The data quality rules (compute/quality_rules.py, compute/quality.py, store/rulesets.py):
the ruleset file read and refused, each check measured on inline curated rows with NULLs,
NaN and values at the edges, and judged; every expected value worked out by hand."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import Row
from pyspark.sql import types as T

from tests import plans
from tests.factories import curated_df as rows_df, curated_row as curated, frame
from tools.stacks import write_library_zip
from traffic_glue.compute import quality
from traffic_glue.compute import schema as S
from traffic_glue.compute.quality_rules import Rule, Ruleset, RulesetError, parse_ruleset
from traffic_glue.jobs.transform_args import parse_job_args
from traffic_glue.runtime.arguments import ArgumentError
from traffic_glue.store import rulesets

ROOT = Path(__file__).resolve().parents[1]
DAY_7, DAY_8 = dt.date(2020, 4, 7), dt.date(2020, 4, 8)
T7 = 1586217600  # 2020-04-07 00:00Z
T8 = T7 + 86400


def rule(name, check, severity="blocking", **fields) -> Rule:
    return Rule(name=name, check=check, severity=severity, **fields)


def one_rule(*rules: Rule) -> Ruleset:
    return Ruleset("test.json", rules)


# --- measured and judged ------------------------------------------------------------------


def test_a_repeated_key_is_counted_per_row_and_a_null_key_repeats_none(spark):
    midnight_7 = dt.datetime(2020, 4, 7)
    rows = rows_df(spark, [
        curated(1, T7), curated(1, T7), curated(1, T7 + 60),     # one row repeats (1, T7)
        curated(4, T7), curated(4, T7), curated(4, T7),          # two rows repeat (4, T7)
        curated(2, T7), curated(3, T7),                          # the same minute, other locations
        curated(None, T7), curated(None, T7),                    # NULL location: no key
        curated(5, None, at=midnight_7), curated(5, None, at=midnight_7),  # NULL minute: no key
        curated(1, T8), curated(1, T8),                          # the 8th: one row repeats
    ])
    unique = rule("key_is_unique", "unique", columns=(S.LOCATION_ID, S.RECORD_TIMESTAMP))
    measured = quality.day_measures(rows, [unique])
    expected = frame(spark,
        [(DAY_7, 12, 3), (DAY_8, 2, 1)],
        T.StructType([T.StructField("date", T.DateType()), T.StructField("rows", T.LongType()),
                      T.StructField("key_is_unique", T.LongType())]))
    assert_df_equality(measured, expected, ignore_row_order=True, ignore_nullable=True)

    verdict = quality.judge(measured.collect(), one_rule(unique), "corrected", [DAY_7, DAY_8], {})
    (outcome,) = verdict.outcomes
    assert outcome.status == quality.FAILED
    assert [(d.day, d.status, d.value, d.measured) for d in outcome.days] == [
        (DAY_7, "failed", 3, "3 rows repeat a key"), (DAY_8, "failed", 1, "1 row repeats a key")]
    assert verdict.blocked and verdict.failure_line() == (
        "data quality: 1 blocking rule failed, nothing was published: key_is_unique on 2020-04-07: "
        "3 rows repeat a key, on 2020-04-08: 1 row repeats a key (wanted: each (uniqueid, recordtimestamp) "
        "once) [ruleset test.json]")


SPEED_EDGES = [0.0, 250.0, 250.0001, -0.0001, None, float("nan")]


@pytest.mark.parametrize("nulls, outside", [(True, 3), (False, 4)])
def test_a_range_holds_its_edges_and_counts_nan_and_null_as_told(spark, nulls, outside):
    """0 and 250 are inside; just above and below, and NaN (above every number in Spark),
    are not; NULL is as `nulls` says."""
    rows = rows_df(spark, [curated(1, T7 + 60 * n, speed=s, **{S.PREVIOUS_SPEED: 10.0})
                           for n, s in enumerate(SPEED_EDGES)])
    speeds = rule("speeds", "between", columns=(S.CURRENT_SPEED, S.PREVIOUS_SPEED), minimum=0, maximum=250,
                  nulls=nulls)
    (row,) = quality.day_measures(rows, [speeds]).collect()
    assert (row["speeds"], row["speeds__currentspeed"], row["speeds__previousspeed"]) == (outside, outside, 0)
    (day,) = quality.judge([row], one_rule(speeds), "corrected", [DAY_7], {}).outcomes[0].days
    assert day.measured == f"{outside} values outside (currentspeed {outside})"


def test_a_minimum_alone_and_a_set_of_values(spark):
    rows = rows_df(spark, [
        curated(1, T7, jam=1, counts=(0, 0, 0, 0)),
        curated(1, T7 + 60, jam=0, **{S.MEAN_VEHICLES_PER_LANE: -1}),
        curated(1, T7 + 120, jam=-1, **{S.MEAN_VEHICLES_PER_LANE: None}),
        curated(1, T7 + 180, jam=2),
        curated(1, T7 + 240, jam=None, **{S.JAM_LONG: 1}),
    ])
    counts = rule("counts", "between", columns=(S.MEAN_VEHICLES_PER_LANE,), minimum=0)
    jams = rule("jams", "in_set", columns=(S.JAM, S.JAM_LONG), values=(-1, 0, 1))
    jams_or_null = rule("jams_or_null", "in_set", columns=(S.JAM,), values=(-1, 0, 1), nulls=True)
    (row,) = quality.day_measures(rows, [counts, jams, jams_or_null]).collect()
    # -1 and NULL; 2 and NULL in trafficjamindicator, 2 in trafficjamindicatorlong (it follows jam); 2 alone.
    assert (row["counts"], row["jams__trafficjamindicator"], row["jams__trafficjamindicatorlong"],
            row["jams"], row["jams_or_null"]) == (2, 2, 1, 3, 1)
    outcomes = quality.judge([row], one_rule(counts, jams, jams_or_null), "corrected", [DAY_7], {}).outcomes
    assert [o.requirement for o in outcomes] == [
        "bezettingsgraad at least 0", "trafficjamindicator, trafficjamindicatorlong in {-1, 0, 1}",
        "trafficjamindicator in {-1, 0, 1} or NULL"]


def test_not_null_counts_each_null_value(spark):
    rows = rows_df(spark, [curated(None, T7), curated(None, None, at=dt.datetime(2020, 4, 7, 3)), curated(7, T7)])
    complete = rule("complete", "not_null", columns=(S.LOCATION_ID, S.RECORD_TIMESTAMP))
    (row,) = quality.day_measures(rows, [complete]).collect()
    assert (row["complete"], row["complete__uniqueid"], row["complete__recordtimestamp"]) == (3, 2, 1)


def test_minutes_per_location_exactly_half_is_enough(spark):
    """Location 1: 720 minutes, half of 1,440: not below. Location 2: 720 rows but one
    minute twice, so 719 minutes: below. A NULL location is no location."""
    rows = rows_df(spark, [curated(1, T7 + 60 * m) for m in range(720)]
                   + [curated(2, T7 + 60 * m) for m in range(719)] + [curated(2, T7)]
                   + [curated(None, T7)])
    share = rule("minutes", "location_minutes", "warning", min_share=0.5)
    (row,) = quality.day_measures(rows, [share]).collect()
    assert (row["minutes"], row["minutes__locations"], row["minutes__lowest"].asDict()) == (
        1, 2, {"minutes": 719, "location": 2})
    verdict = quality.judge([row], one_rule(share), "corrected", [DAY_7], {})
    assert not verdict.blocked and [o.rule.name for o in verdict.warnings] == ["minutes"]
    assert verdict.outcomes[0].days[0].measured == (
        "1 of 2 locations below (fewest: location 2, 719 minutes, 0.499 of the day)")
    assert verdict.outcomes[0].requirement == "every location at least 0.5 of the day's 1,440 minutes (720)"


BAND = rule("band", "day_rows_band", "warning", recent_days=3, min_ratio=0.5, max_ratio=1.5)


@pytest.mark.parametrize("rows, published, status, value", [
    # Nothing published before the day (the day itself and later days do not count).
    (100, {DAY_8: 100, dt.date(2020, 4, 9): 100}, "skipped", None),
    # The last 3 days before it: 200, 300, 100 (median 200); the 1st and the 9th are left out.
    (100, {dt.date(2020, 4, 1): 5000, dt.date(2020, 4, 3): 200, dt.date(2020, 4, 5): 300,
           dt.date(2020, 4, 6): 100, dt.date(2020, 4, 9): 1}, "passed", 0.5),
    (300, {dt.date(2020, 4, 5): 100, dt.date(2020, 4, 6): 300}, "passed", 1.5),   # even: median 200
    (301, {dt.date(2020, 4, 5): 100, dt.date(2020, 4, 6): 300}, "failed", 1.505),
    (99, {dt.date(2020, 4, 6): 200}, "failed", 0.495),
    (0, {dt.date(2020, 4, 6): 200}, "failed", 0.0),  # a day without a row
])
def test_the_band_of_the_recent_published_days(rows, published, status, value):
    measures = [Row(date=DAY_8, rows=rows)] if rows else []
    (outcome,) = quality.judge(measures, one_rule(BAND), "corrected", [DAY_8], published).outcomes
    (day,) = outcome.days
    assert (outcome.status, day.status, day.value) == (status, status, value)
    if status == "skipped":
        assert day.measured == "100 rows; no published day before it to compare with"


def test_a_rule_of_the_other_mode_is_skipped_and_not_measured(spark):
    """athena keys its rows by (lve_nr, minute): two rows of one uniqueid and minute are
    its quirk, not a fault, so the shipped uniqueness rule is corrected's only."""
    rows = rows_df(spark, [curated(1, T7), curated(1, T7)])
    shipped = rulesets.read(None)
    measured = quality.day_measures(rows, shipped.for_semantics("athena"))
    assert "key_is_unique" not in measured.columns and "speeds_in_range" not in measured.columns
    verdict = quality.judge(measured.collect(), shipped, "athena", [DAY_7], {})
    unique = next(o for o in verdict.outcomes if o.rule.name == "key_is_unique")
    assert (unique.status, unique.days, unique.note) == ("skipped", (), "a rule of --semantics corrected only")
    assert not verdict.blocked
    assert verdict.counts_text() == "7 rules: 3 passed, 1 warning, 3 skipped"


def test_the_shipped_rules_pass_a_clean_day_and_block_a_speed_out_of_range(spark):
    clean = [curated(loc, T7 + 60 * m, speed=None if m % 7 == 0 else 95.5) for loc in (1, 2) for m in range(1440)]
    shipped = rulesets.read(None)
    verdict = quality.evaluate(rows_df(spark, clean), shipped, "corrected", [DAY_7], {dt.date(2020, 4, 6): 2880})
    assert [(o.rule.name, o.status) for o in verdict.outcomes] == [
        ("key_is_unique", "passed"), ("key_is_complete", "passed"), ("speeds_in_range", "passed"),
        ("indicators_in_set", "passed"), ("vehicle_counts_not_negative", "passed"),
        ("minutes_per_location", "passed"), ("day_rows_in_band", "passed")]
    broken = clean[:-1] + [curated(2, T7 + 60 * 1439, speed=251.0)]
    verdict = quality.evaluate(rows_df(spark, broken), shipped, "corrected", [DAY_7], {})
    assert [o.rule.name for o in verdict.blocking_failures] == ["speeds_in_range"]
    assert verdict.failure_line() == (
        "data quality: 1 blocking rule failed, nothing was published: speeds_in_range on 2020-04-07: "
        "4 values outside (currentspeed 1, previousspeed 1, avgspeed3minutes 1, avgspeed20minutes 1) "
        "(wanted: currentspeed, previousspeed, avgspeed3minutes, avgspeed20minutes in 0..250 or NULL) "
        "[ruleset traffic_glue/quality_rules.json]")


# --- checks of values proven from the files' column metrics --------------------------------

M = quality.ColumnMetrics
SPEEDS = rule("speeds", "between", columns=(S.CURRENT_SPEED,), minimum=0, maximum=250, nulls=True)
COUNTS = rule("counts", "between", columns=(S.MEAN_VEHICLES_PER_LANE,), minimum=0)
JAMS = rule("jams", "in_set", columns=(S.JAM,), values=(-1, 0, 1))
COMPLETE = rule("complete", "not_null", columns=(S.LOCATION_ID,))
INTEGRAL = frozenset({S.MEAN_VEHICLES_PER_LANE, S.JAM, S.LOCATION_ID})


@pytest.mark.parametrize("metrics, proven", [
    # inside the range, NULLs allowed: proven
    (M(values=10, nulls=3, nans=0, lower=0.0, upper=250.0), True),
    # only NULLs: no bound recorded, nothing to break
    (M(values=4, nulls=4, nans=0, lower=None, upper=None), True),
    # a value above, a value below, a NaN (above every number in Spark): counted
    (M(values=10, nulls=0, nans=0, lower=0.0, upper=250.0001), False),
    (M(values=10, nulls=0, nans=0, lower=-0.0001, upper=90.0), False),
    (M(values=10, nulls=0, nans=1, lower=1.0, upper=90.0), False),
    # a figure the file did not record: counted
    (M(values=10, nulls=0, nans=None, lower=1.0, upper=90.0), False),
    (M(values=10, nulls=None, nans=0, lower=1.0, upper=90.0), False),
    (M(values=10, nulls=0, nans=0, lower=None, upper=None), False),
    (None, False),
])
def test_a_range_is_proven_only_when_every_files_metrics_leave_no_doubt(metrics, proven):
    clean = {S.CURRENT_SPEED: M(values=5, nulls=0, nans=0, lower=50.0, upper=60.0)}
    files = [clean, {S.CURRENT_SPEED: metrics} if metrics else {}]
    assert quality.proven_columns([SPEEDS], files) == (frozenset({("speeds", S.CURRENT_SPEED)}) if proven else frozenset())


def test_nulls_sets_and_minimums_from_metrics():
    files = [{
        S.MEAN_VEHICLES_PER_LANE: M(values=5, nulls=0, nans=None, lower=0, upper=12),
        S.JAM: M(values=5, nulls=0, nans=None, lower=-1, upper=1),
        S.LOCATION_ID: M(values=5, nulls=0, nans=None, lower=3, upper=9),
    }]
    rules = [COUNTS, JAMS, COMPLETE]
    assert quality.proven_columns(rules, files, INTEGRAL) == {
        ("counts", S.MEAN_VEHICLES_PER_LANE), ("jams", S.JAM), ("complete", S.LOCATION_ID)}
    # a set of whole numbers is proven only for a whole-number column
    assert ("jams", S.JAM) not in quality.proven_columns(rules, files, frozenset())
    with_null = [{**files[0], S.JAM: M(values=5, nulls=1, nans=None, lower=-1, upper=1),
                  S.LOCATION_ID: M(values=5, nulls=1, nans=None, lower=3, upper=9)}]
    assert quality.proven_columns(rules, with_null, INTEGRAL) == {("counts", S.MEAN_VEHICLES_PER_LANE)}
    # 2 may be there: bounds -1..2
    wider = [{**files[0], S.JAM: M(values=5, nulls=0, nans=None, lower=-1, upper=2)}]
    assert ("jams", S.JAM) not in quality.proven_columns(rules, wider, INTEGRAL)
    below = [{**files[0], S.MEAN_VEHICLES_PER_LANE: M(values=5, nulls=0, nans=None, lower=-1, upper=12)}]
    assert ("counts", S.MEAN_VEHICLES_PER_LANE) not in quality.proven_columns(rules, below, INTEGRAL)
    assert quality.proven_columns(rules, [], INTEGRAL) == frozenset()


def test_a_proven_column_is_measured_0_without_being_read_and_the_others_are_counted(spark):
    rows = rows_df(spark, [curated(1, T7, jam=2), curated(1, T7 + 60, jam=0), curated(2, T7, jam=None)])
    jams_and_counts = rule("jc", "in_set", columns=(S.JAM, S.JAM_LONG), values=(-1, 0, 1))
    proven = frozenset({("jc", S.JAM_LONG)})
    # the proven column is not read: the rows may lack it
    (row,) = quality.day_measures(rows.drop(S.JAM_LONG), [jams_and_counts], proven).collect()
    (full,) = quality.day_measures(rows, [jams_and_counts]).collect()
    # trafficjamindicator: 2 and NULL; trafficjamindicatorlong follows jam (2 and NULL), but proven: 0
    assert (row["jc"], row["jc__trafficjamindicator"], row["jc__trafficjamindicatorlong"], row["rows"]) == (2, 2, 0, 3)
    assert (full["jc"], full["jc__trafficjamindicator"], full["jc__trafficjamindicatorlong"]) == (4, 2, 2)


def test_the_metrics_of_staged_files_prove_a_clean_day_and_leave_a_broken_one_counted(spark, tmp_path):
    """Through the table seam: the column metrics Iceberg recorded for the run's staged
    files, read back, prove the shipped checks of a clean day; a speed of 251 leaves its
    column to be counted, and the verdict is the one of the full pass."""
    from traffic_glue.jobs.job import INTEGRAL_COLUMNS
    from traffic_glue.store import curated as curated_table
    from traffic_glue.store import tables

    shipped = rulesets.read(None)
    rules = shipped.for_semantics("corrected")
    table = curated_table.open_table(spark, path=str(tmp_path / "curated"))
    table.create_if_missing("corrected")
    clean = [curated(loc, T7 + 60 * m, speed=None if m % 7 == 0 else 95.5) for loc in (1, 2) for m in range(0, 1440, 30)]
    broken = clean[:-1] + [curated(2, T7 + 60 * 1410, speed=251.0)]
    value_columns = {(r.name, c) for r in rules if r.check in ("not_null", "between", "in_set") for c in r.columns}
    for rows, left in [(clean, set()), (broken, {("speeds_in_range", c) for c in (
            S.CURRENT_SPEED, S.PREVIOUS_SPEED, S.AVG_SPEED_3, S.AVG_SPEED_20)})]:
        writing = curated_table.CuratedWrite(table, f"run{len(left)}", [DAY_7], "2020-04-07", "corrected")
        writing.stage(rows_df(spark, rows))
        files = writing.staged_file_metrics([DAY_7])
        assert sorted(hour for hour, _ in files) == [(2020, 4, 7, h) for h in range(24)]  # a file per hour
        proven = quality.proven_columns(rules, [metrics for _, metrics in files], INTEGRAL_COLUMNS)
        assert proven == frozenset(value_columns - left)
        by_hour = quality.times_in_their_hours([(hour, m.get(S.RECORD_TIMESTAMP)) for hour, m in files])
        assert by_hour
        staged = writing.staged_rows([DAY_7])
        # 24 files of a few kB, each weighed as 1 MB, packed in splits of `counting_read`'s
        # size (its arithmetic: tests/test_tables.py): Iceberg takes the option.
        split = int(tables.counting_read([1] * 24, spark.sparkContext.defaultParallelism)["split-size"])
        assert staged.rdd.getNumPartitions() == -(-24 // max(1, split >> 20))
        fast = quality.evaluate(staged, shipped, "corrected", [DAY_7], {}, proven, by_hour)
        assert fast == quality.evaluate(staged, shipped, "corrected", [DAY_7], {})
        writing.abandon()


def hour_metrics(lower, upper, values=60, nulls=0):
    return M(values=values, nulls=nulls, nans=None, lower=lower, upper=upper)


def test_times_in_their_hours_only_when_every_file_says_so():
    hour_5 = (2020, 4, 7, 5)
    start = T7 + 5 * 3600
    assert quality.times_in_their_hours([(hour_5, hour_metrics(start, start + 3599))])
    assert quality.times_in_their_hours([(hour_5, hour_metrics(None, None, values=3, nulls=3))])  # NULL times only
    assert not quality.times_in_their_hours([(hour_5, hour_metrics(start, start + 3600))])  # 06:00 in hour 5
    assert not quality.times_in_their_hours([(hour_5, hour_metrics(start - 1, start + 60))])
    assert not quality.times_in_their_hours([(hour_5, None)])
    assert not quality.times_in_their_hours([(hour_5, hour_metrics(None, None))])  # bounds not recorded
    assert not quality.times_in_their_hours([((2020, 4, 7, None), hour_metrics(start, start))])


def test_keys_counted_by_hour_add_up_to_the_days_and_would_not_where_a_minute_strays(spark):
    unique = rule("unique", "unique", columns=(S.LOCATION_ID, S.RECORD_TIMESTAMP))
    minutes = rule("minutes", "location_minutes", severity="warning", min_share=0.5)
    rows = [curated(1, T7 + 60 * m) for m in range(180)] + [curated(1, T7 + 600), curated(2, T7), curated(None, T7)]
    by_day = quality.day_measures(rows_df(spark, rows), [unique, minutes]).collect()
    by_hour = quality.day_measures(rows_df(spark, rows), [unique, minutes], by_hour=True).collect()
    assert [r.asDict() for r in by_hour] == [{**r.asDict(), "_unaligned": 0} for r in by_day]
    assert (by_day[0]["rows"], by_day[0]["unique"], by_day[0]["minutes__lowest"]["minutes"]) == (183, 1, 1)
    # 00:10 once more, but filed in hour 3: the day's repeat, not an hour's
    strayed = rows[:-3] + [curated(1, T7 + 600, at=dt.datetime(2020, 4, 7, 3))]
    (day,) = quality.day_measures(rows_df(spark, strayed), [unique]).collect()
    (hours,) = quality.day_measures(rows_df(spark, strayed), [unique], by_hour=True).collect()
    assert (day["unique"], hours["unique"]) == (1, 0)  # why `times_in_their_hours` must hold first


def test_keys_counted_by_hour_cross_the_shuffle_as_one_row_per_hour_and_location(spark):
    """Each task counts its rows per hour and location before the first shuffle (Spark's
    partial aggregation): the rows themselves never cross it (docs/QUALITY.md)."""
    unique = rule("unique", "unique", columns=(S.LOCATION_ID, S.RECORD_TIMESTAMP))
    minutes = rule("minutes", "location_minutes", severity="warning", min_share=0.5)
    rows = rows_df(spark, [curated(1, T7 + 60 * m) for m in range(3)])
    exchanges = [n for n in plans.nodes(quality.day_measures(rows, [unique, minutes], by_hour=True))
                 if n.name == "Exchange"]
    first = exchanges[0]
    assert first.shuffle() == ("HashPartitioning", [*S.EVENT_PARTITIONS, S.LOCATION_ID])
    (below,) = first.children
    assert below.name == "HashAggregate" and below.aggregate_modes() == {"Partial"}


def test_minutes_counted_by_their_hours_bits_are_the_distinct_keys(spark):
    """Per hour, a location's minutes are the bits of a mask of the hour's 60 minutes: the
    same counts as a distinct count, NULL keys and repeats included, across hours."""
    unique = rule("unique", "unique", columns=(S.RECORD_TIMESTAMP, S.LOCATION_ID))  # either order
    minutes = rule("minutes", "location_minutes", severity="warning", min_share=0.5)
    hour_1 = T7 + 3600
    rows = rows_df(spark, [
        *(curated(1, T7 + 60 * m) for m in range(60)),      # every minute of hour 0: bits 0..59
        curated(1, T7 + 59 * 60), curated(1, T7),           # two repeats in hour 0
        curated(1, hour_1), curated(1, hour_1 + 60),         # two minutes of hour 1
        curated(2, hour_1 + 120), curated(2, hour_1 + 120),  # location 2: one minute, one repeat
        curated(None, T7), curated(None, T7),               # NULL location: no key
        curated(3, None, at=dt.datetime(2020, 4, 7, 1)),    # NULL minute: no key, 0 minutes
        curated(1, T8 + 3540),                               # the 8th, 00:59: the last bit
    ])
    measured = quality.day_measures(rows, [unique, minutes], by_hour=True)
    # By hand: the 7th has 69 rows; location 1 has 62 minutes (64 rows), location 2 one
    # (2 rows), location 3 none; 3 rows repeat a key; the fewest minutes: location 3, 0.
    expected = frame(spark,
        [(DAY_7, 69, 0, 3, 3, 3), (DAY_8, 1, 0, 0, 1, 1)],
        "date date, rows long, _unaligned long, unique long, minutes long, minutes__locations long")
    assert_df_equality(measured.drop("minutes__lowest"), expected, ignore_row_order=True, ignore_nullable=True,
                       ignore_column_order=True)
    lowest = {r["date"]: r["minutes__lowest"].asDict() for r in measured.collect()}
    assert lowest == {DAY_7: {"minutes": 0, "location": 3}, DAY_8: {"minutes": 1, "location": 1}}
    exact = quality.day_measures(rows, [unique, minutes], by_hour=True, exact=True)
    assert_df_equality(measured.drop("_unaligned"), exact, ignore_row_order=True, ignore_nullable=True)


def test_a_time_that_is_no_whole_minute_has_the_keys_counted_exactly(spark):
    """10:00:00 and 10:00:30 are two keys, but one minute's bit: the masks would count a
    repeat, so `evaluate` counts the keys again, exactly."""
    unique = rule("unique", "unique", columns=(S.LOCATION_ID, S.RECORD_TIMESTAMP))
    rows = rows_df(spark, [curated(1, T7 + 36000), curated(1, T7 + 36030), curated(1, T7 + 36060)])
    (masked,) = quality.day_measures(rows, [unique], by_hour=True).collect()
    assert (masked["_unaligned"], masked["unique"]) == (1, 1)
    verdict = quality.evaluate(rows, one_rule(unique), "corrected", [DAY_7], {}, by_hour=True)
    (outcome,) = verdict.outcomes
    assert (outcome.status, outcome.days[0].value) == (quality.PASSED, 0)


# --- the ruleset file ---------------------------------------------------------------------


def shipped_document() -> dict:
    return json.loads((ROOT / "glue_jobs" / "traffic_glue" / rulesets.SHIPPED).read_text())


def with_rule(index: int, **changes) -> dict:
    document = shipped_document()
    document["rules"][index].update(changes)
    return {key: value for key, value in document.items()}


def without(index: int, field: str) -> dict:
    document = shipped_document()
    del document["rules"][index][field]
    return document


@pytest.mark.parametrize("document, message", [
    ("{", "f.json: not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("[]", 'f.json: must be a JSON object with "rules", got a list'),
    ({"rules": []}, 'f.json: "rules" must be a non-empty list of rules'),
    ({"rule": []}, 'f.json: unknown field "rule" (did you mean "rules"?)'),
    (with_rule(0, serverity="warning"), 'f.json: rule 1 ("key_is_unique"): unknown field "serverity" (did you mean "severity"?)'),
    (with_rule(2, columns=["currentsped"]),
     'f.json: rule 3 ("speeds_in_range"): "columns": "currentsped" is not a column of the curated table '
     '(did you mean "currentspeed"?)'),
    (with_rule(2, min="zero"), 'f.json: rule 3 ("speeds_in_range"): "min" must be a number, got "zero"'),
    (with_rule(2, max=True), 'f.json: rule 3 ("speeds_in_range"): "max" must be a number, got true'),
    (with_rule(2, min=300), 'f.json: rule 3 ("speeds_in_range"): "min" 300 is above "max" 250'),
    (with_rule(2, nulls="yes"), 'f.json: rule 3 ("speeds_in_range"): "nulls" must be true or false, got "yes"'),
    (with_rule(3, values=[]), 'f.json: rule 4 ("indicators_in_set"): "values" must be a non-empty list of numbers, got []'),
    (without(3, "values"), 'f.json: rule 4 ("indicators_in_set"): check "in_set" needs "values"'),
    (with_rule(0, columns=["recordtimestamp"]),
     'f.json: rule 1 ("key_is_unique"): "columns" must include uniqueid: a key is counted per location and day'),
    (with_rule(0, severity="fatal"), 'f.json: rule 1 ("key_is_unique"): "severity" must be blocking or warning, got "fatal"'),
    (with_rule(0, semantics=["exact"]),
     'f.json: rule 1 ("key_is_unique"): "semantics" must be a non-empty list of athena and corrected, got ["exact"]'),
    (with_rule(0, check="primary_key"),
     'f.json: rule 1 ("key_is_unique"): "check" must be one of unique, not_null, between, in_set, '
     'location_minutes, day_rows_band, got "primary_key"'),
    (with_rule(1, name="key_is_unique"), 'f.json: rule 2: the name "key_is_unique" is used twice'),
    (with_rule(1, name="Key"), 'f.json: rule 2: "name" must be up to 64 lower-case letters'),
    (with_rule(1, name="rows"), 'f.json: rule 2: "name" must be up to 64 lower-case letters'),
    (with_rule(1, name="hour"), 'f.json: rule 2: "name" must be up to 64 lower-case letters'),
    (with_rule(1, name="key__complete"), 'f.json: rule 2: "name" must be up to 64 lower-case letters'),
    (with_rule(4, columns=["uniqueid", "year"], check="between", min=0),
     None),  # a partition column is a column of the table, and a number
    (with_rule(5, min_share=0), 'f.json: rule 6 ("minutes_per_location"): "min_share" must be a number above 0 and at most 1, got 0'),
    (with_rule(5, min_share=1.5), 'f.json: rule 6 ("minutes_per_location"): "min_share" must be a number above 0 and at most 1, got 1.5'),
    (with_rule(6, recent_days=0), 'f.json: rule 7 ("day_rows_in_band"): "recent_days" must be a whole number of at least 1, got 0'),
    (with_rule(6, min_ratio=2), 'f.json: rule 7 ("day_rows_in_band"): "min_ratio" 2 is above "max_ratio" 1.5'),
])
def test_a_bad_ruleset_is_refused_naming_the_file_the_rule_and_the_field(document, message):
    text = document if isinstance(document, str) else json.dumps(document)
    if message is None:
        assert parse_ruleset(text, "f.json").rules[4].columns == ("uniqueid", "year")
        return
    with pytest.raises(RulesetError) as refused:
        parse_ruleset(text, "f.json")
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_the_argument_names_the_file_before_spark_starts(tmp_path):
    base = ["s", "--JOB_NAME", "t", "--source_path", str(ROOT / "tests"), "--target_path", "out"]
    bad = tmp_path / "rules.json"
    bad.write_text(json.dumps(with_rule(2, min="zero")))
    with pytest.raises(ArgumentError) as refused:
        parse_job_args(base + ["--quality_rules", str(bad)])
    assert str(refused.value) == f'--quality_rules {bad}: rule 3 ("speeds_in_range"): "min" must be a number, got "zero"'
    with pytest.raises(ArgumentError, match=f"^--quality_rules {tmp_path}/none.json does not exist$"):
        parse_job_args(base + ["--quality_rules", str(tmp_path / "none.json")])
    # `off`, the shipped one, and one on S3 (read by the run) pass the parser.
    assert parse_job_args(base + ["--quality_rules", "off"]).quality_ruleset() is None
    assert parse_job_args(base).quality_ruleset().source == "traffic_glue/quality_rules.json"
    assert parse_job_args(base + ["--quality_rules", "s3://rules/curated.json"]).quality_rules == "s3://rules/curated.json"


def test_a_bad_ruleset_stops_the_script_with_one_line_and_status_2(tmp_path, capsys):
    from tests.job_helpers import run_job

    (tmp_path / "raw").mkdir()
    bad = tmp_path / "rules.json"
    bad.write_text('{"rules": [{"name": "x", "check": "unique", "columns": ["uniqueid"], "severity": "fatal"}]}')
    assert run_job(tmp_path / "raw", tmp_path / "curated", "2020-04-07", "2020-04-07",
                   "--quality_rules", str(bad)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f'traffic_transform: error: --quality_rules {bad}: rule 1 ("x"): "severity" must be '
                   'blocking or warning, got "fatal"']
    assert not (tmp_path / "curated").exists()


def test_the_shipped_ruleset_travels_in_the_library_zip(tmp_path):
    """On Glue the package is a zip on the path (`--extra-py-files`): the ruleset is read
    from inside it, as a package resource."""
    library = tmp_path / "traffic_glue.zip"
    write_library_zip(ROOT / "glue_jobs" / "traffic_glue", library)
    script = (f"import sys; sys.path.insert(0, {str(library)!r}); "
              "import traffic_glue; from traffic_glue.store import rulesets; "
              "assert traffic_glue.__file__.startswith(sys.path[0]), traffic_glue.__file__; "
              "print([r.name for r in rulesets.read(None).rules])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([r["name"] for r in shipped_document()["rules"]])
