"""The shape of the physical plan: one shuffle to the windows, a pruned, narrow scan.

Checked on the plan Spark builds, never on time (timing lives in `make bench`).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tools.sample_data import SampleSpec, generate
from traffic_glue import pipeline, publish, sources, validation
from traffic_glue.config import ATHENA, CORRECTED
from traffic_glue.run_range import RunRange

DAY = dt.date(2020, 4, 7)
SPAN = RunRange.for_days(DAY, DAY, 60, 24)


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan-landing")
    generate(str(root), SampleSpec(start_date=dt.date(2020, 4, 5), days=5, lanes=8, seed=5))
    return root


def _raw(spark, landing, semantics):
    return sources.read_raw(spark, str(landing), "parquet", SPAN, semantics, False)


def _plan(df) -> str:
    """`explain("formatted")` as text: each node once, with its arguments in full.

    It is the initial physical plan; AQE may later coalesce partitions, never add shuffles.
    """
    jvm = df.sparkSession.sparkContext._jvm
    return jvm.PythonSQLUtils.explainString(df._jdf.queryExecution(), "formatted")


def _shuffle_keys(plan: str) -> list[str]:
    """The first key of every Exchange, in the plan's (scan-first) node order."""
    assert len(re.findall(r"^\(\d+\) Exchange", plan, re.M)) == len(
        re.findall(r"^Arguments: hashpartitioning", plan, re.M))  # no other kind of Exchange
    return re.findall(r"^Arguments: hashpartitioning\(([a-z_]+)#", plan, re.M)


def _curated(spark, landing, semantics):
    raw = _raw(spark, landing, semantics)
    readings = sources.readings_to_validate(raw, SPAN)  # as the job composes it
    curated = pipeline.curated_minutes(
        validation.typed_readings(readings, SPAN.context), semantics, SPAN
    ).rows
    return raw, curated


@pytest.mark.parametrize("semantics", [ATHENA, CORRECTED])
def test_one_shuffle_between_the_scan_and_the_windows(spark, landing, semantics):
    _, curated = _curated(spark, landing, semantics)
    plan = _plan(curated)
    assert _shuffle_keys(plan) == ["lve_nr"]
    # One Exchange, so every window and the lane grouping reuse its partitioning.
    assert re.search(r"^\(\d+\) Window", plan, re.M) and "HashAggregate" in plan


@pytest.mark.parametrize("semantics", [ATHENA, CORRECTED])
def test_at_most_one_more_shuffle_before_the_write(spark, landing, semantics):
    _, curated = _curated(spark, landing, semantics)
    plan = _plan(publish.layout_for_write(curated))
    assert _shuffle_keys(plan) == ["lve_nr", "year"]  # the windows', then the write's


@pytest.mark.parametrize("semantics", [ATHENA, CORRECTED])
def test_no_python_udf_on_the_row_path(spark, landing, semantics):
    _, curated = _curated(spark, landing, semantics)
    plan = _plan(publish.layout_for_write(curated))
    for python_node in ("BatchEvalPython", "ArrowEvalPython", "PythonUDF", "MapInPandas"):
        assert python_node not in plan


def test_the_scan_reads_only_the_needed_columns(spark, landing):
    _, curated = _curated(spark, landing, CORRECTED)
    read_schema = re.search(r"^ReadSchema: struct<([^>]*)>", _plan(curated), re.M).group(1)
    columns = {field.split(":")[0] for field in read_schema.split(",")}
    assert columns == set(validation.READING_COLUMNS)  # 14 of the 30 raw columns


def test_the_scan_reads_only_the_processing_hours_of_the_requested_day(spark, landing):
    raw, curated = _curated(spark, landing, CORRECTED)
    hours = sorted({re.search(r"year=(\d+)/month=(\d+)/day=(\d+)/hour=(\d+)", f.path).groups()
                    for f in raw.files})
    # From the hour holding 2020-04-06 23:00 (the 60-minute lookback) up to, not including,
    # 2020-04-09 00:00 (end of day + 24 late hours).
    assert hours[0] == ("2020", "04", "06", "23") and hours[-1] == ("2020", "04", "08", "23")
    assert len(hours) == 1 + 24 + 24
    # The landing holds five days of folders; the plan's file index holds just these.
    others = re.search(r"^Location: InMemoryFileIndex \[[^,]+, \.\.\. (\d+) entries\]",
                       _plan(curated), re.M).group(1)
    assert int(others) + 1 == len(raw.files)


@pytest.mark.parametrize("semantics", [ATHENA, CORRECTED])
def test_validation_is_computed_once_not_copied_into_a_filter(spark, landing, semantics):
    """Spark pushes a filter below deterministic projections by copying what it refers
    to; on the statuses that would be the whole validation, once more per reading (6x
    slower on the benchmark). No Filter may hold the parse of tijd_laatst_gewijzigd."""
    _, curated = _curated(spark, landing, semantics)
    plan = _plan(curated)
    filters = re.findall(r"^\(\d+\) Filter\n(?:.*\n)*?Condition : (.*)$", plan, re.M)
    assert filters  # the status filter and the output-range filter are there
    assert not [condition for condition in filters if "tijd_laatst_gewijzigd" in condition]
    # Its two regexes (the feed's form, any ISO date) appear once each, in one projection.
    assert len(re.findall(r"RLIKE\(tijd_laatst_gewijzigd", plan)) == 2


def test_the_scan_hands_parquet_the_run_s_time_range(spark, landing):
    """Row groups of other days' readings (a one-day run's late folders hold the next
    day) are skipped on their statistics: the range is a filter pushed into the scan."""
    _, curated = _curated(spark, landing, ATHENA)
    pushed = re.search(r"^PushedFilters: \[(.*)\]$", _plan(curated), re.M).group(1)
    assert f"GreaterThanOrEqual(tijd_waarneming,{SPAN.context_start})" in pushed
    assert f"LessThan(tijd_waarneming,{SPAN.output_end})" in pushed
    # Readings without a usable time are let through, to be rejected.
    assert "IsNull(tijd_waarneming)" in pushed
