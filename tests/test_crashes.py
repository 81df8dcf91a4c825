"""Faults of the run itself: killed, crashed, or beaten to the commit by another writer.

A run stages its rows on a branch of its own (`traffic_run_<run id>`) and publishes by
fast-forwarding `main` to it: one commit (`store/tables.py`, `TableRun`). So whatever
stops a run before that commit leaves `main` (what readers see) as it was: its
snapshot, every partition's bytes and rows (`table_state`). A run that fails in this
process drops its branch and its pending quarantine; a killed process leaves its
branch, which the maintenance job drops (`jobs/maintenance.expire`).

The crashes are made in this process (`job_helpers.run_job` runs the script's `main`
here) by patching the table seam; the kill is a SIGKILL of a job's own process. The
good landing and its numbers are in tests/fault_landing.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import subprocess
from collections import Counter
from pathlib import Path
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.fault_landing import (
    DAY, EXPECTED_REJECTED, TableState, assert_accounting, assert_nothing_left_behind, bad_lines,
    good_readings, job_command, land_json_at, land_parquet_at, published_copy, referenced_files,
    run_branches, shared_state, table_state,
)
from tests.job_helpers import iceberg_table, job_env, kill_when, last_report, run_job, snapshot_rows
from tools.sample_data import SampleSpec, generate
from traffic_glue.compute import pipeline
from traffic_glue.jobs import maintenance
from traffic_glue.store import curated, quarantine, tables

HOUR_18 = "year=2020/month=4/day=7/hour=18"


class _Crash(RuntimeError):
    pass


@pytest.fixture(scope="module")
def shared_table(baseline, tmp_path_factory) -> Path:
    """One table of the baseline's partitions for this module's runs that fail."""
    target, _ = published_copy(baseline, tmp_path_factory.mktemp("published"))
    return target


@pytest.fixture
def published(shared_table, baseline) -> tuple[Path, TableState]:
    """The shared table and its state as the test begins."""
    return shared_table, shared_state(shared_table, baseline)


def _without_hour_18(folder: Path) -> Path:
    """The good landing less its 18:00 block: a run of it empties hour 18 of the day on
    its branch before the commit (`CuratedWrite.publish`)."""
    land_parquet_at(folder, good_readings(hours=(6, 12)))
    return folder


def _shown(target: Path) -> list[dict]:
    files = list((target / quarantine.REJECTED).glob("run_date=*/*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in files]).to_pylist() if files else []


# --- killed -------------------------------------------------------------------------------


def _unreferenced_data_files(target: Path, referenced: set[Path]) -> set[Path]:
    return {p for p in (target / "data").rglob("*.parquet") if p not in referenced}


def test_a_job_killed_while_writing_its_branch_leaves_main_as_it_was(spark, tmp_path):
    small, big, target = tmp_path / "small", tmp_path / "big", tmp_path / "curated"
    generate(str(small), SampleSpec(start_date=dt.date(2020, 4, 7), days=2, lanes=6, seed=5))
    # Enough readings that the write lasts well past the first data file (the kill point).
    generate(str(big), SampleSpec(start_date=dt.date(2020, 4, 7), days=2, lanes=150, seed=5))
    assert run_job(small, target, "2020-04-07", "2020-04-08") == 0
    before, referenced = table_state(target), referenced_files(target)
    assert len(before.digests) == 48 and len(referenced) == 48

    log = tmp_path / "killed-job.log"
    job = subprocess.Popen(
        job_command(big, target, "2020-04-07", "2020-04-08"), env=job_env(),
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    # Killed mid-write: data files main does not list are there (the branch's, being written).
    kill_when(job, lambda: bool(_unreferenced_data_files(target, referenced)), log, limit=150)

    assert _unreferenced_data_files(target, referenced)
    assert table_state(target) == before  # main's snapshot, bytes and rows
    assert referenced_files(target) == referenced  # no partition mixes two runs
    dead = run_branches(target)
    assert len(dead) == 1  # the killed run's branch, which nobody dropped

    # The next run is not in the dead run's way: it replaces the partitions with new
    # files of the same bytes (the same input), and leaves the dead branch alone.
    assert run_job(small, target, "2020-04-07", "2020-04-08") == 0
    after = table_state(target)
    assert (after.digests, after.rows) == (before.digests, before.rows)
    assert after.snapshot_id != before.snapshot_id
    assert referenced_files(target).isdisjoint(referenced)
    assert run_branches(target) == dead
    assert not list((target / quarantine.REJECTED / quarantine.PENDING).glob("*"))
    assert_accounting(last_report(target))

    # The maintenance job drops the dead run's branch; main reads as before.
    table = tables.open_table(spark, None, path=f"file:{target}")
    result = maintenance.expire(table, retention_days=0, now=dt.datetime.now(dt.timezone.utc))
    assert result["branches_dropped"] == dead
    assert_nothing_left_behind(target)
    expired = table_state(target)
    assert (expired.snapshot_id, expired.digests, expired.rows) == (after.snapshot_id, after.digests, after.rows)


# --- crashed in this process --------------------------------------------------------------


def test_a_crash_between_staging_and_the_commit_changes_nothing_and_the_rerun_finishes(
        baseline, tmp_path):
    """The run (a semantics change, with rejected readings) has staged its rows and
    written its quarantine, pending; it crashes before the fast-forward."""
    target = tmp_path / "curated"
    assert baseline.run(baseline.raw, target, DAY, DAY, "--semantics", "athena") == 0
    old, new = table_state(target), baseline.digests
    assert old.digests.keys() == new.keys() and all(old.digests[p] != new[p] for p in new)
    raw = tmp_path / "raw"
    land_json_at(raw, good_readings(), extra_lines={12: bad_lines()})
    staged = []

    def publish(self):
        staged.append(self.table.snapshot_id(self.branch))
        raise _Crash("crash before the fast-forward")

    with mock.patch.object(tables.TableRun, "publish", publish):
        with pytest.raises(_Crash):
            baseline.run(raw, target, DAY, DAY, "--source_format", "json", "--replace_semantics", "true")

    crashed = last_report(target)
    assert crashed["status"] == "failed" and crashed["error"] == "crash before the fast-forward"
    assert staged and staged[0] != old.snapshot_id  # the run had committed to its branch
    assert table_state(target) == old  # main, and no quarantine shown
    assert_nothing_left_behind(target)  # its branch dropped, its quarantine discarded
    # The crashed run had not recorded its mode: the table still says athena.
    assert iceberg_table(target).properties[tables.SEMANTICS_PROPERTY] == "athena"

    assert baseline.run(raw, target, DAY, DAY, "--source_format", "json", "--replace_semantics", "true") == 0
    report = last_report(target)
    now = table_state(target)
    assert (now.digests, now.rows) == (new, baseline.rows)  # equals a clean run's table
    assert iceberg_table(target).properties[tables.SEMANTICS_PROPERTY] == "corrected"
    assert_accounting(report)
    shown = _shown(target)
    assert Counter(row["reject_reason"] for row in shown) == EXPECTED_REJECTED  # once
    assert {row["run_id"] for row in shown} == {report["run_id"]}
    assert_nothing_left_behind(target)


def test_a_plan_that_fails_after_the_branch_was_made_drops_it_and_leaves_main(baseline, published):
    """A run makes its branch while its plan is built (`job.run`): a plan that fails
    then leaves main as it was, and the branch is dropped."""
    target, before = published
    made, real = [], tables.TableRun.branch_off

    def branch_off(self):
        real(self)
        made.append(self.branch)

    def failing_plan(*args, **kwargs):
        raise _Crash("the plan failed")

    with mock.patch.object(tables.TableRun, "branch_off", branch_off), \
            mock.patch.object(pipeline, "curated_minutes", failing_plan):
        with pytest.raises(_Crash):
            baseline.run(baseline.raw, target, DAY, DAY)

    assert len(made) == 1 and made[0].startswith(tables.RUN_BRANCH_PREFIX)  # it was made
    report = last_report(target)
    assert report["status"] == "failed" and report["error"] == "the plan failed"
    assert table_state(target) == before
    assert_nothing_left_behind(target)  # the branch dropped


@pytest.mark.parametrize("emptied", [False, True], ids=["while-emptying", "after-emptying"])
def test_a_failure_while_emptying_stale_hours_leaves_main_as_it_was(
        baseline, published, tmp_path, emptied):
    """A run whose day has no 18:00 readings any more empties that hour on its branch,
    then fast-forwards: stopped before (or after) the emptying, main still has hour 18,
    and every other hour as it was: a partition is old or new, never both."""
    target, before = published
    raw = _without_hour_18(tmp_path / "raw")
    real, heads = tables.TableRun.overwrite, []

    def overwrite(self, rows, where, properties):
        if emptied:
            heads.append(real(self, rows, where, properties))
        raise _Crash("crash while emptying hours")

    with mock.patch.object(tables.TableRun, "overwrite", overwrite):
        with pytest.raises(_Crash):
            baseline.run(raw, target, DAY, DAY)

    assert last_report(target)["status"] == "failed"
    assert table_state(target) == before
    assert_nothing_left_behind(target)
    if emptied:  # the branch held the day without hour 18, which readers never saw
        on_branch = snapshot_rows(target, heads[0])
        assert on_branch == baseline.rows_without(18) != before.rows


def test_a_failure_after_the_commit_leaves_the_runs_rows_published_whole(baseline, tmp_path):
    """Dropping the branch fails once `main` has moved: the commit stands, all of it."""
    target, before = published_copy(baseline, tmp_path)
    raw = _without_hour_18(tmp_path / "raw")
    real, calls = tables.IcebergTable.drop_branch, []

    def drop_branch(self, name):
        calls.append(name)
        if len(calls) == 1:
            raise _Crash("crash after the fast-forward")
        real(self, name)

    with mock.patch.object(tables.IcebergTable, "drop_branch", drop_branch):
        with pytest.raises(_Crash):
            baseline.run(raw, target, DAY, DAY)

    after = table_state(target)
    assert after.snapshot_id != before.snapshot_id
    assert (after.digests, after.rows) == (baseline.digests_without(18), baseline.rows_without(18))
    assert last_report(target)["status"] == "failed"
    assert_nothing_left_behind(target)  # the run's abandon dropped the branch after all


# --- another writer --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lost_race(baseline, tmp_path_factory) -> dict:
    """Run A (with rejected readings) stages; run B commits to the same table (the day
    less hour 18) before A publishes; A's fast-forward fails. What A and B left, and how
    A ended: its exit status or the error it raised, and its standard error."""
    root = tmp_path_factory.mktemp("lost-race")
    target, before = published_copy(baseline, root)
    raw_a = root / "raw-a"
    land_json_at(raw_a, good_readings(), extra_lines={12: bad_lines()})
    raw_b = _without_hour_18(root / "raw-b")
    real, b = curated.CuratedWrite.publish, {}

    def publish_after_another_writer(self, days):
        if not b:  # A's publish: B (whose own publish is this one too) runs first
            b["started"] = True
            b["status"] = baseline.run(raw_b, target, DAY, DAY)
            b["report"] = last_report(target)
        return real(self, days)

    stderr = io.StringIO()
    with mock.patch.object(curated.CuratedWrite, "publish", publish_after_another_writer):
        with contextlib.redirect_stderr(stderr):
            try:
                a_ended = baseline.run(raw_a, target, DAY, DAY, "--source_format", "json")
            except Exception as error:  # see test_a_run_beaten_to_the_commit_says_so_in_one_line
                a_ended = error
    return {"target": target, "before": before, "raw_a": raw_a, "b": b, "a_ended": a_ended,
            "a_stderr": stderr.getvalue(), "a_report": last_report(target), "after": table_state(target)}


def test_a_run_beaten_to_the_commit_by_another_writer_changes_nothing_and_the_other_commit_stands(
        baseline, lost_race):
    target, b, a_report, now = lost_race["target"], lost_race["b"], lost_race["a_report"], lost_race["after"]
    assert b["status"] == 0 and b["report"]["output"]["partitions_removed"] == [HOUR_18]
    assert lost_race["a_ended"] != 0
    assert a_report["status"] == "failed" and a_report["run_id"] != b["report"]["run_id"]
    assert now.snapshot_id == b["report"]["output"]["snapshot_id"]  # B's commit, exactly
    assert (now.digests, now.rows) == (baseline.digests_without(18), baseline.rows_without(18))
    assert now.rejected_shown == []  # B had none; A's were discarded
    assert_nothing_left_behind(target)  # A's branch dropped, B's too

    # Run again, A replaces B's day.
    assert baseline.run(lost_race["raw_a"], target, DAY, DAY, "--source_format", "json") == 0
    again = table_state(target)
    assert (again.digests, again.rows) == (lost_race["before"].digests, lost_race["before"].rows)
    assert Counter(row["reject_reason"] for row in _shown(target)) == EXPECTED_REJECTED
    assert_nothing_left_behind(target)


def test_a_run_beaten_to_the_commit_says_so_in_one_line(lost_race):
    assert lost_race["a_ended"] == 1
    lines = lost_race["a_stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("traffic_transform: error: "), lines
    assert "another writer" in lines[0] and str(lost_race["target"]) in lines[0]
    assert "another writer" in lost_race["a_report"]["error"]
