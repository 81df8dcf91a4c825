"""The shape of the physical plan: the shuffles to the windows (`corrected`: one of the
readings; `athena`: one of each task's partial sums, one of the minute rows), a pruned,
narrow scan.

Checked on the plan Spark builds, never on time (timing lives in `make bench`).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests import plans
from tools.sample_data import SampleSpec, generate, sample_lanes
from traffic_glue.compute import pipeline, validation
from traffic_glue.store import configuration_files, sources
from traffic_glue.store import curated as curated_table
from traffic_glue.compute.modes import ATHENA, CORRECTED
from traffic_glue.compute.configuration import Snapshot
from traffic_glue.compute.run_range import RunRange

DAY = dt.date(2020, 4, 7)
SPAN = RunRange.for_days(DAY, DAY, 60, 24)
SPEC = SampleSpec(start_date=dt.date(2020, 4, 5), days=5, lanes=8, seed=5)
# The plans checked: athena; corrected without a configuration (every lane its own
# location); corrected with the sample's configuration joined in (the job's default).
ATHENA_PLAN, UNCONFIGURED, CONFIGURED = (ATHENA, False), (CORRECTED, False), (CORRECTED, True)
PLANS = [ATHENA_PLAN, UNCONFIGURED, CONFIGURED]
PLAN_IDS = ["athena", "corrected-unconfigured", "corrected-configured"]
# The first column each shuffle to the windows hashes on: corrected's one shuffle by the
# location; athena's by (lve_nr, minute) to the lane grouping, then by (lve_nr, uniqueid).
SHUFFLE_KEYS = {ATHENA: ["lve_nr", "lve_nr"], CORRECTED: ["uniqueid"]}


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan-landing")
    generate(str(root), SPEC)
    return root


def _raw(spark, landing, semantics):
    return sources.read_raw(spark, str(landing), "parquet", SPAN, semantics, False)


def _plan(df) -> str:
    """`explain("formatted")` as text, for what Spark gives only as text (a scan's file
    index); the checks read the plan's nodes (tests/plans.py) wherever they can."""
    jvm = df.sparkSession.sparkContext._jvm
    return jvm.PythonSQLUtils.explainString(df._jdf.queryExecution(), "formatted")


def _lane_map(spark):
    """The sample's lanes as one configuration file, as the job makes its lane map."""
    snapshot = Snapshot("sample.xml", None, sample_lanes(SPEC))
    return configuration_files.configuration_lane_map(spark, [snapshot])


def _curated(spark, landing, semantics, configured=False):
    raw = _raw(spark, landing, semantics)
    readings = sources.readings_to_validate(raw, SPAN)  # as the job composes it
    curated = pipeline.curated_minutes(
        validation.typed_readings(readings, SPAN.context), semantics, SPAN,
        lane_map=_lane_map(spark) if configured else None,
    ).rows
    return raw, curated


@pytest.mark.parametrize("semantics, configured", PLANS[1:], ids=PLAN_IDS[1:])
def test_corrected_shuffles_once_between_the_scan_and_the_windows(spark, landing, semantics, configured):
    _, curated = _curated(spark, landing, semantics, configured)
    assert plans.shuffle_keys(curated) == SHUFFLE_KEYS[semantics]
    # One Exchange, so deduplication, every window and the lane grouping reuse its partitioning.
    nodes = plans.names(curated)
    assert "Window" in nodes and "HashAggregate" in nodes
    assert nodes.count("Exchange") == 1
    # The configuration's lane map is the only other data, joined without a shuffle.
    assert nodes.count("BroadcastExchange") == (1 if configured else 0)
    assert not {"SortMergeJoin", "ShuffledHashJoin", "CartesianProduct"} & set(nodes)


def test_athena_shuffles_each_tasks_sums_per_cabinet_minute_not_its_readings(spark, landing):
    """docs/SEMANTICS.md, "Step 4: the location": `athena` does not deduplicate,
    so each task sums its own readings per (`lve_nr`, minute, status) before the shuffle
    (Spark's partial aggregation) and only those sums cross it; the statuses are counted
    from the grouped rows, not reading by reading; the kept minute rows cross a second
    shuffle to the windows, keyed as the series are, each task's in series order."""
    _, curated = _curated(spark, landing, ATHENA)
    nodes = plans.nodes(curated)
    names = [node.name for node in nodes]
    assert names.count("Exchange") == 2 and names.count("HashAggregate") == 2
    assert not {"SortMergeJoin", "ShuffledHashJoin", "CartesianProduct", "BroadcastExchange"} & set(names)
    partial, to_grouping, final, to_windows = [node for node in nodes if node.name in ("HashAggregate", "Exchange")]
    assert [partial.name, to_grouping.name, final.name, to_windows.name] == [
        "HashAggregate", "Exchange", "HashAggregate", "Exchange"]
    # The first shuffle's rows are the partial sums, not readings.
    assert to_grouping.children == [partial]
    assert partial.aggregate_modes() == {"Partial"} and final.aggregate_modes() == {"Final"}
    assert to_grouping.shuffle() == ("HashPartitioning", ["lve_nr", "tijd_waarneming", "reading_status"])
    # What a partial row carries: the minute's id, its readings, the speed's mean and the
    # four class totals. A kept reading's vehicles are its class totals' sum, so neither
    # they nor the readings that counted them are summed apart (transforms.group_lanes).
    classes = [f"sum(verkeersintensiteit_klasse{k})" for k in (2, 3, 4, 5)]
    assert sorted(partial.aggregate_functions()) == sorted(
        ["max(unieke_id)", "count(1)", "avg(lane_speed)", *classes])
    assert to_windows.shuffle() == ("HashPartitioning", ["lve_nr", "uniqueid"])
    # The statuses are observed on the grouped rows: above the final sums, nowhere below.
    observed = [node for node in nodes if node.name == "CollectMetrics"]
    assert final in observed[0].walk() and not any(o in partial.walk() for o in observed)
    # Each task's kept rows cross the second shuffle in series order, by one long (a
    # radix sort: transforms.presorted_for_series); the windows sort what it gave them.
    (presort,) = [node for node in to_windows.walk() if node.name == "Sort"]
    assert final in presort.walk()
    assert [e.split(" ")[0] for e in presort.expressions()] == ["_series_key"]
    (sort,) = nodes[names.index("Window")].children
    assert sort.name == "Sort" and sort.children == [to_windows]


def test_corrected_joins_the_lane_map_by_broadcast_before_the_one_shuffle(spark, landing):
    """docs/SEMANTICS.md, "Step 4: the location": each reading is joined with the lane
    map (a broadcast) before the shuffle, which partitions by the location it gives.
    The join is on the lane (an equi-join: a hash join), the snapshot's validity a
    condition of it; a nested-loop join would compare every reading with every lane."""
    _, curated = _curated(spark, landing, CORRECTED, configured=True)
    nodes = plans.nodes(curated)
    names = [node.name for node in nodes]
    assert names.count("BroadcastHashJoin") == 1
    assert "BroadcastNestedLoopJoin" not in names
    assert names.index("BroadcastExchange") < names.index("BroadcastHashJoin") < names.index("Exchange")
    join = nodes[names.index("BroadcastHashJoin")].join()
    assert (join["left_keys"], join["right_keys"]) == (["unieke_id"], ["_map_lane"])
    # A reading of no configured lane stays (a location of its own), the map is built.
    assert (join["type"], join["build_side"]) == ("LeftOuter", "BuildRight")
    # [valid_from, valid_to), NULL bounds unbounded, checked in the join itself.
    assert "(_map_from IS NULL) OR (tijd_waarneming >= _map_from)" in join["condition"]
    assert "(_map_to IS NULL) OR (tijd_waarneming < _map_to)" in join["condition"]
    # The one shuffle partitions by the location the join gave.
    (exchange,) = [node for node in nodes if node.name == "Exchange"]
    assert exchange.shuffle() == ("HashPartitioning", ["uniqueid"])
    assert exchange.shuffle_origin() == "REPARTITION_BY_COL"


@pytest.mark.parametrize("semantics, configured", PLANS, ids=PLAN_IDS)
def test_at_most_one_more_shuffle_before_the_write(spark, landing, semantics, configured):
    _, curated = _curated(spark, landing, semantics, configured)
    # the windows', then the write's
    assert plans.shuffle_keys(curated_table.layout_for_write(curated)) == [*SHUFFLE_KEYS[semantics], "year"]


@pytest.mark.parametrize("semantics, configured", PLANS, ids=PLAN_IDS)
def test_no_python_udf_on_the_row_path(spark, landing, semantics, configured):
    _, curated = _curated(spark, landing, semantics, configured)
    nodes = plans.nodes(curated_table.layout_for_write(curated))
    assert not {"BatchEvalPython", "ArrowEvalPython", "MapInPandas", "FlatMapGroupsInPandas"} & {
        node.name for node in nodes}
    assert not [e for node in nodes for e in node.expressions() if "PythonUDF" in e]


@pytest.mark.parametrize("configured", [False, True], ids=["unconfigured", "configured"])
def test_the_scan_reads_only_the_needed_columns(spark, landing, configured):
    _, curated = _curated(spark, landing, CORRECTED, configured)
    (scan,) = [node for node in plans.nodes(curated) if node.kind == "FileSourceScanExec"]
    assert set(scan.read_columns()) == set(validation.READING_COLUMNS)  # 14 of the 30 raw columns


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


@pytest.mark.parametrize("semantics, configured", PLANS, ids=PLAN_IDS)
def test_validation_is_computed_once_not_copied_into_a_filter(spark, landing, semantics, configured):
    """Spark pushes a filter below deterministic projections by copying what it refers
    to; on the statuses that would be the whole validation, once more per reading (6x
    slower on the benchmark). No Filter may hold the parse of tijd_laatst_gewijzigd,
    nor may the lane map's join copy it."""
    _, curated = _curated(spark, landing, semantics, configured)
    nodes = plans.nodes(curated)
    filters = [node.condition() for node in nodes if node.name == "Filter"]
    assert filters  # the status filter and the output-range filter are there
    assert not [condition for condition in filters if "tijd_laatst_gewijzigd" in condition]
    # Its two regexes (the feed's form, any ISO date) appear once each, in one projection.
    assert sum(e.count("RLIKE(tijd_laatst_gewijzigd") for node in nodes for e in node.expressions()) == 2


def test_the_scan_hands_parquet_the_run_s_time_range(spark, landing):
    """Row groups of other days' readings (a one-day run's late folders hold the next
    day) are skipped on their statistics: the range is a filter pushed into the scan."""
    _, curated = _curated(spark, landing, ATHENA)
    (scan,) = [node for node in plans.nodes(curated) if node.kind == "FileSourceScanExec"]
    pushed = scan.scan_metadata("PushedFilters")
    assert f"GreaterThanOrEqual(tijd_waarneming,{SPAN.context_start})" in pushed
    assert f"LessThan(tijd_waarneming,{SPAN.output_end})" in pushed
    # Readings without a usable time are let through, to be rejected.
    assert "IsNull(tijd_waarneming)" in pushed
