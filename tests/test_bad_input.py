"""Bad input: nothing lost, nothing doubled, every problem named.

Every test reruns the job over a published table (the baseline's partitions) with
something wrong in what it reads, and checks three things: the outcome (the error's
one line, or the rows), that the partitions already published are there byte for byte
(`partition_digests`; for a failed run the whole `table_state`: `main`'s snapshot too),
and, where the run wrote a report, that its accounting holds (read = kept + filtered +
rejected). The good landing and its numbers, worked out by hand, are in
tests/fault_landing.py; faults of the process itself are in test_crashes.py.

The tests whose run must leave the table as the baseline's share one published table
(`published`: one run per module instead of one per test); those that leave a
quarantine behind make their own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.factories import hour_folder
from tests.fault_landing import (
    BLOCK_HOURS, DAY, EXPECTED_REJECTED, GOOD_FILTERED, GOOD_KEPT, GOOD_READ, GOOD_ROWS, LOCATION_1,
    LOCATION_2, SCRIPT, TableState, assert_accounting, assert_nothing_left_behind, assert_same_as_baseline,
    at, bad_lines, good_readings, iso, land_json_at, land_parquet_at, one_line_error, published_copy,
    shared_state, table_state,
)
from tests.job_helpers import job_env, last_report, partition_digests, table_rows
from traffic_glue.compute import schema as S
from traffic_glue.runtime.report import new_run_id
from traffic_glue.store import quarantine


@pytest.fixture(scope="module")
def shared_table(baseline, tmp_path_factory) -> Path:
    """One table of the baseline's partitions for this module's tests whose run leaves
    it as it was (failed, or rewrote the same bytes)."""
    target, _ = published_copy(baseline, tmp_path_factory.mktemp("published"))
    return target


@pytest.fixture
def published(shared_table, baseline) -> tuple[Path, TableState]:
    """The shared table and its state as the test begins."""
    return shared_table, shared_state(shared_table, baseline)


def test_baseline_numbers_by_hand(baseline):
    r = baseline.readings
    assert (r["read"], r["kept"], r["rejected_total"]) == (GOOD_READ, GOOD_KEPT, 0)
    assert r["filtered"] == GOOD_FILTERED
    assert len(baseline.rows) == GOOD_ROWS
    # The correction (40 km/h, later tijd_laatst_gewijzigd) won over the 30 km/h reading:
    # location 1 at 12:02 = AVG(lane 11: 40, lane 12: (70 + 60) / 2 = 65) = 52.5.
    at_1202 = [r for r in baseline.rows if r[1] == at(12, 2) and r[0] == LOCATION_1]
    assert at_1202[0][S.CURATED_COLUMNS.index(S.CURRENT_SPEED)] == 52.5
    # Two locations, each of 18 minutes but location 2 at 12:04 (unknown occupancy).
    assert Counter(r[0] for r in baseline.rows) == {LOCATION_1: 18, LOCATION_2: 17}
    assert r["unconfigured"] == {"readings": 0, "lanes": 0}
    assert len(baseline.digests) == len(BLOCK_HOURS)


# --- 1. quarantine ---------------------------------------------------------------------


def _shown(target: Path) -> list[dict]:
    """The rows of the shown quarantine (`_rejected/run_date=*/`)."""
    files = list((target / quarantine.REJECTED).glob("run_date=*/*.parquet"))
    assert files
    return pa.concat_tables([pq.read_table(p) for p in files]).to_pylist()


def test_bad_readings_are_quarantined_and_the_good_ones_give_the_clean_table(baseline, tmp_path):
    target, before = published_copy(baseline, tmp_path)
    raw = tmp_path / "raw"
    files = land_json_at(raw, good_readings(), extra_lines={12: bad_lines()})
    noon_file = next(f for f in files if "/hour=12/" in str(f))

    assert baseline.run(raw, target, DAY, DAY, "--source_format", "json") == 0

    assert table_rows(target) == baseline.rows
    assert partition_digests(target) == before.digests  # same bytes: nothing lost, nothing doubled
    report = last_report(target)
    assert_accounting(report)
    r = report["readings"]
    assert r["rejected"] == EXPECTED_REJECTED and r["rejected_total"] == 11
    assert r["filtered"] == GOOD_FILTERED
    assert (r["read"], r["kept"]) == (GOOD_READ + 11, GOOD_KEPT)

    run_date = report["started_at"][:10]
    quarantined = list((target / "_rejected" / f"run_date={run_date}").glob("*.parquet"))
    assert quarantined and report["output"]["rejected_path"].endswith("/_rejected")
    rejected = pa.concat_tables([pq.read_table(p) for p in quarantined]).to_pylist()
    assert Counter(row["reject_reason"] for row in rejected) == EXPECTED_REJECTED
    assert {row["run_id"] for row in rejected} == {report["run_id"]}
    assert {row["source_file"] for row in rejected} == {f"file://{noon_file}"}
    # As they arrived: the raw text of what did not parse, the whole line when malformed.
    by_reason = {}
    for row in rejected:
        by_reason.setdefault(row["reject_reason"], []).append(row)
    assert by_reason["bad_lve_nr"][0][S.UNIT_ID] == "abc"
    assert by_reason["bad_speed"][0][S.arithmetic_speed(2)] == "251"
    assert sorted(row["raw_record"][:6] for row in by_reason["malformed_record"]) == [
        '[1, 2]', '[{"bes', '{"unie']
    assert_nothing_left_behind(target)


def test_a_killed_runs_quarantine_is_never_shown_and_its_rerun_shows_each_reading_once(
        baseline, tmp_path):
    """A run killed after writing its rejected readings leaves them in
    `_rejected/_pending/<run_id>/`, where no reader looks; a later run drops them once
    the run would have timed out, and keeps a pending quarantine of a run still going.

    The target holds no table yet: what the killed run had published is no matter to
    its quarantine (and a run saved)."""
    target = tmp_path / "curated"
    raw = tmp_path / "raw"
    land_json_at(raw, good_readings(), extra_lines={12: bad_lines()})
    pending = target / quarantine.REJECTED / quarantine.PENDING
    killed, going = "20200101T000000Z-deadbeef", new_run_id()
    for run_id in (killed, going):
        (pending / run_id).mkdir(parents=True)
        shutil.copy(next(baseline.raw.rglob("*.parquet")), pending / run_id / "part-0.parquet")

    assert baseline.run(raw, target, DAY, DAY, "--source_format", "json") == 0
    report = last_report(target)
    assert report["quarantines_dropped"] == [killed]
    assert sorted(p.name for p in pending.iterdir()) == [going]
    shown = _shown(target)
    assert Counter(row["reject_reason"] for row in shown) == EXPECTED_REJECTED
    assert {row["run_id"] for row in shown} == {report["run_id"]}
    assert table_rows(target) == baseline.rows


# --- 2. schema drift -------------------------------------------------------------------


def test_json_with_every_value_a_string_equals_parquet(baseline, published, tmp_path):
    target, before = published
    land_json_at(tmp_path / "raw", good_readings())
    assert baseline.run(tmp_path / "raw", target, DAY, DAY, "--source_format", "json") == 0
    assert_same_as_baseline(target, before, baseline)


def _replace(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def _ids_as_text_times_as_iso_extra_column(table: pa.Table) -> pa.Table:
    table = _replace(table, S.LANE_ID, pc.cast(table[S.LANE_ID], pa.string()))
    stamps = pa.array([iso(t) for t in table[S.OBSERVED_AT].to_pylist()], pa.string())
    table = _replace(table, S.OBSERVED_AT, stamps)
    table = table.append_column("firehose_partition_key", pa.array(["x"] * len(table)))
    return table.drop_columns([S.LANE_NAME])


def _ids_as_bigint_times_as_int32_no_class_1(table: pa.Table) -> pa.Table:
    table = _replace(table, S.LANE_ID, pc.cast(table[S.LANE_ID], pa.int64()))
    table = _replace(table, S.OBSERVED_AT, pc.cast(table[S.OBSERVED_AT], pa.int32()))
    class_1 = [S.intensity(1), S.arithmetic_speed(1), S.harmonic_speed(1)]
    return table.drop_columns([S.LANE_NAME, *class_1])


def test_parquet_whose_columns_drift_between_files_gives_the_same_numbers(baseline, published, tmp_path):
    target, before = published
    # hour 6: unieke_id string, tijd_waarneming ISO string, an extra column, no
    # beschrijvende_id; hour 12: as typed in docs/SEMANTICS.md (int32, int64); hour 18: unieke_id
    # int64, tijd_waarneming int32, no beschrijvende_id and no class 1 columns.
    land_parquet_at(tmp_path / "raw", good_readings(), variants={
        6: _ids_as_text_times_as_iso_extra_column,
        18: _ids_as_bigint_times_as_int32_no_class_1,
    })
    assert baseline.run(tmp_path / "raw", target, DAY, DAY) == 0
    report = assert_same_as_baseline(target, before, baseline)
    assert report["source"]["files"] == len(list((tmp_path / "raw").rglob("*.parquet")))


def test_a_file_without_an_essential_column_stops_the_run_naming_both(baseline, published, tmp_path, capsys):
    target, before = published
    drop_unit = lambda table: table.drop_columns([S.UNIT_ID])  # noqa: E731
    files = land_parquet_at(tmp_path / "raw", good_readings(), variants={18: drop_unit})
    broken = next(f for f in files if "/hour=18/" in str(f))
    capsys.readouterr()

    assert baseline.run(tmp_path / "raw", target, DAY, DAY) == 1

    error = one_line_error(capsys)
    assert "lve_nr" in error and str(broken) in error
    assert table_state(target) == before  # and no quarantine shown
    assert_nothing_left_behind(target)
    report = last_report(target)
    assert report["status"] == "failed" and report["readings"] == {}
    assert report["accounting_holds"] is None  # nothing counted, nothing to account for
    assert "lve_nr" in report["error"]


# --- 3. corrupt and empty input ---------------------------------------------------------


def _corrupt(kind: str, folder: Path, a_real_file: Path) -> Path:
    if kind == "truncated":
        data = a_real_file.read_bytes()
        path = folder / "cut.parquet"
        path.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        path = folder / "notes.txt"
        path.write_text("this is not a Parquet file\n")
    elif kind == "spark_type":  # valid Parquet, with a column type Spark cannot read
        path = folder / "clock.parquet"
        pq.write_table(pa.table({"clock": pa.array([1], pa.time64("ns"))}), path)
    else:
        path = folder / "empty.parquet"
        path.write_bytes(b"")
    return path


@pytest.mark.parametrize("kind", ["truncated", "text", "empty", "spark_type"])
def test_an_unreadable_raw_file_stops_the_run_naming_it(baseline, published, tmp_path, capsys, kind):
    target, before = published
    shutil.copytree(baseline.raw, tmp_path / "raw")
    noon = next((tmp_path / "raw").glob("year=2020/month=04/day=07/hour=12"))
    bad = _corrupt(kind, noon, next(noon.glob("*.parquet")))
    capsys.readouterr()

    assert baseline.run(tmp_path / "raw", target, DAY, DAY) == 1

    error = one_line_error(capsys)
    assert str(bad) in error and "--corrupt_files skip" in error
    if kind == "spark_type":
        assert "Illegal Parquet type: INT64 (TIME(NANOS" in error
    assert table_state(target) == before
    assert_nothing_left_behind(target)


@pytest.mark.parametrize("landing, given, message", [
    ("json", "parquet", "holds JSON lines, not Parquet: run with --source_format json"),
    ("csv", "parquet", "holds CSV text, not Parquet: the job reads Parquet or JSON lines"),
    ("parquet", "json", "is Parquet, not JSON lines: run with --source_format parquet"),
])
def test_a_landing_read_in_the_wrong_format_names_the_format_to_use(
        baseline, published, tmp_path, capsys, landing, given, message):
    """Not a corrupt file: the error says which --source_format fits, and does not
    suggest --corrupt_files skip, which would skip every file."""
    target, before = published
    raw = tmp_path / "raw"
    if landing == "json":
        files = land_json_at(raw, good_readings())
    elif landing == "csv":
        files = land_json_at(raw, good_readings(), name="part-0.csv")
        for path in files:
            path.write_text("unieke_id,lve_nr,tijd_waarneming\n11,1,1586217600\n")
    else:
        shutil.copytree(baseline.raw, raw)
        files = sorted(raw.rglob("*.parquet"))
    capsys.readouterr()

    assert baseline.run(raw, target, DAY, DAY, "--source_format", given) == 1

    error = one_line_error(capsys)
    assert message in error and "--corrupt_files" not in error
    assert any(str(path) in error for path in files)
    assert table_state(target) == before
    assert_nothing_left_behind(target)


def test_corrupt_files_skip_leaves_them_out_and_lists_them(baseline, published, tmp_path):
    target, before = published
    shutil.copytree(baseline.raw, tmp_path / "raw")
    noon = next((tmp_path / "raw").glob("year=2020/month=04/day=07/hour=12"))
    bad = {_corrupt(kind, noon, next(noon.glob("part-*.parquet")))
           for kind in ("truncated", "text", "empty")}

    assert baseline.run(tmp_path / "raw", target, DAY, DAY, "--corrupt_files", "skip") == 0

    report = assert_same_as_baseline(target, before, baseline)
    skipped = report["source"]["skipped"]
    assert {Path(s["file"].removeprefix("file:")) for s in skipped} == bad
    assert all("not a readable Parquet file" in s["reason"] for s in skipped)
    read_files = {Path(f.removeprefix("file:")) for f in report["source"]["readings_per_file"]}
    assert not read_files & bad
    assert_nothing_left_behind(target)


def test_a_day_of_only_rejected_readings_changes_nothing(baseline, published, tmp_path, capsys):
    """Extends tests/test_job.py's empty cases: readings there, none usable. The
    rejected readings are shown all the same (the only run here that shows some in the
    shared table)."""
    target, before = published
    folder = hour_folder(tmp_path / "raw", at(12, 2))
    folder.mkdir(parents=True)
    (folder / "part-0.json").write_text("\n".join(bad_lines()) + "\n")
    capsys.readouterr()

    assert baseline.run(tmp_path / "raw", target, DAY, DAY, "--source_format", "json") == 1

    error = one_line_error(capsys)
    assert "no rows to write for 2020-04-07 .. 2020-04-07: 11 readings read" in error
    assert "0 kept; the table was left unchanged" in error
    after = table_state(target)
    assert (after.snapshot_id, after.digests, after.rows) == (before.snapshot_id, before.digests, before.rows)
    report = last_report(target)
    assert_accounting(report)
    assert report["readings"]["rejected"] == EXPECTED_REJECTED
    shown = [row for row in _shown(target) if row["run_id"] == report["run_id"]]
    assert Counter(row["reject_reason"] for row in shown) == EXPECTED_REJECTED
    assert_nothing_left_behind(target)


# --- 6. arguments -------------------------------------------------------------------------


@pytest.mark.parametrize("extra, named", [
    (["--start_date", "2019-01-01", "--end_date", "2020-02-05"],  # 401 days, default 400
     "--max_days 400"),
    (["--start_date", "2020-04-01", "--end_date", "2020-04-07", "--max_days", "3"],
     "--max_days 3"),
    (["--source_path", "/nonexistent/raw", "--start_date", DAY, "--end_date", DAY],
     "--source_path /nonexistent/raw does not exist"),
    (["--source_path", "file:///nonexistent/raw", "--start_date", DAY, "--end_date", DAY],
     "--source_path file:///nonexistent/raw does not exist"),
])
def test_bad_arguments_stop_the_script_before_spark_starts(tmp_path, extra, named):
    source = ["--source_path", str(tmp_path)] if "--source_path" not in extra else []
    argv = [sys.executable, str(SCRIPT), "--JOB_NAME", "t", "--target_path",
            str(tmp_path / "out"), *source, *extra]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=job_env())
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("traffic_transform: error: ")
    assert named in lines[0]
    assert done.stdout == "" and not (tmp_path / "out").exists()
    assert time.monotonic() - started < 20  # no JVM was started
