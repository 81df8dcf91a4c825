"""The work per task (traffic_glue.compute.plan): the rule, and a run of many days whose
small task size the rule turns into more tasks, with the rows of the default plan."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.job_helpers import last_report, run_job, table_rows
from traffic_glue.compute import plan
from traffic_glue.store import curated

# --- the rule -----------------------------------------------------------------------------


@pytest.mark.parametrize("readings, hours, floor, per_task, shuffle, write", [
    # 30 days of the full network (6.2 M readings a day): 186 tasks of a million readings,
    # not 16 of twelve million.
    (186_000_000, 720, 16, plan.READINGS_PER_TASK, 186, 186),
    # A year of a small network (53.6 M readings, 8,760 hours): 54 tasks of ~162 hours.
    (53_600_000, 8_760, 16, plan.READINGS_PER_TASK, 54, 54),
    # One day of the full network: the session's 16 stay, the size asks for 7.
    (6_200_000, 24, 16, plan.READINGS_PER_TASK, 16, 16),
    # More tasks than hours are no use to the write: at most one task per hour.
    (30_000_000, 24, 16, plan.READINGS_PER_TASK, 30, 24),
    # Nothing read: the floor; a floor of 0 still one task.
    (0, 24, 16, plan.READINGS_PER_TASK, 16, 16),
    (0, 0, 0, 10, 1, 1),
    # A small task size: 43,200 readings / 5,000 = 8.64, up to 9.
    (43_200, 144, 2, 5_000, 9, 9),
])
def test_the_tasks_follow_the_readings_above_the_sessions_floor(readings, hours, floor, per_task, shuffle, write):
    chosen = plan.plan_for(readings, hours, floor, per_task)
    assert (chosen.shuffle_partitions, chosen.write_tasks) == (shuffle, write)
    assert chosen.as_dict() == {"readings": readings, "hours": hours, "readings_per_task": per_task,
                                "shuffle_partitions": shuffle, "write_tasks": write}


def test_json_files_are_counted_from_their_bytes_and_a_task_size_must_be_positive():
    # A Parquet file's footer says 100; a JSON file of 1,200 bytes is ten 120-byte readings,
    # one of 121 bytes two (rounded up).
    assert plan.estimated_readings([100, None, None], [5_000, 1_200, 121]) == 100 + 10 + 2
    with pytest.raises(ValueError, match="readings per task must be at least 1: 0"):
        plan.plan_for(10, 24, 2, readings_per_task=0)


def test_the_stage_write_uses_the_clustered_writer():
    # One open file per task: rows come sorted by hour (layout_for_write).
    assert curated.WRITE_OPTIONS == {"fanout-enabled": "false"}


# --- a run of many days with a small task size ----------------------------------------------

START, DAYS, LANES = dt.date(2020, 4, 6), 4, 5


@pytest.fixture(scope="module")
def two_plans(spark, tmp_path_factory):
    """The same four days written twice: with the default plan, and with 2,000 readings a
    task; the stages' task counts of the second run."""
    from tools.sample_data import SampleSpec, generate

    work = tmp_path_factory.mktemp("plan")
    generate(str(work / "raw"), SampleSpec(start_date=START, days=DAYS, lanes=LANES, seed=3))
    end = str(START + dt.timedelta(days=DAYS - 1))
    assert run_job(work / "raw", work / "default", str(START), end) == 0
    tracker = spark.sparkContext.statusTracker()
    before = set(tracker.getJobIdsForGroup())
    spark.conf.set(plan.READINGS_PER_TASK_CONF, "2000")
    try:
        assert run_job(work / "raw", work / "small", str(START), end) == 0
    finally:
        spark.conf.unset(plan.READINGS_PER_TASK_CONF)
    jobs = [tracker.getJobInfo(j) for j in set(tracker.getJobIdsForGroup()) - before]
    stages = [tracker.getStageInfo(s) for job in jobs if job for s in job.stageIds]
    tasks = sorted({stage.numTasks for stage in stages if stage})
    return work, tasks


def test_a_small_task_size_gives_the_rules_tasks_and_the_default_plans_rows(two_plans, spark):
    work, tasks = two_plans
    default, small = last_report(work / "default"), last_report(work / "small")
    readings = small["readings"]["read"]
    assert readings == default["readings"]["read"] > 20_000
    expected_tasks = -(-readings // 2000)  # rounded up
    assert small["source"]["plan"] == {"readings": readings, "hours": DAYS * 24, "readings_per_task": 2000,
                                       "shuffle_partitions": expected_tasks, "write_tasks": expected_tasks}
    # The suite's session has 2 shuffle partitions, the floor the default plan keeps to.
    assert default["source"]["plan"]["shuffle_partitions"] == max(2, -(-readings // plan.READINGS_PER_TASK))
    # A stage of the run had exactly the rule's tasks (the write's, and the shuffle's).
    assert expected_tasks in tasks
    # The session's own setting is back after the run.
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    # The same rows, one file per hour partition.
    assert table_rows(work / "small") == table_rows(work / "default")
    files = sorted((work / "small" / "data").rglob("*.parquet"))
    hours = {f.parent for f in files}
    assert len(files) == len(hours) == DAYS * 24
    # Iceberg names a file <task's partition>-<task>-...: the hours were written by
    # several tasks, none of them more than the hours' share a hash gives it.
    writers = {re.match(r"(\d+)-", f.name).group(1) for f in files}
    assert 1 < len(writers) <= expected_tasks
