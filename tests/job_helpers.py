"""Running the job script as Glue does, in this process, and reading what it wrote."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pyarrow.parquet as pq
from pyiceberg.table import StaticTable

from traffic_glue.runtime.session import local_spark_session

from traffic_glue.compute import schema as S

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "glue_jobs" / "traffic_transform.py"
SERIAL_GC = "-XX:+UseSerialGC"  # the suite's JVMs' collector (conftest)
YOUNG_GENERATION = "-Xmn600m"  # and the size of its young generation (conftest)


def job_env(**extra: str) -> dict:
    """The environment of a job run in a process of its own (its own JVM, two cores)."""
    env = dict(os.environ, TRAFFIC_GLUE_MASTER="local[2]", **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "glue_jobs"), str(ROOT)])
    env.pop("PYSPARK_GATEWAY_PORT", None)
    env.pop("PYSPARK_GATEWAY_SECRET", None)
    return env


def wait_while_running(job: subprocess.Popen, ready, log: Path, limit: float, what: str,
                       interval: float = 0.02) -> None:
    """Return as soon as `ready()` holds; fail, with the end of the job's `log`, if the
    job ends first or `limit` seconds pass (`what`: what was waited for)."""
    deadline = time.monotonic() + limit
    while not ready():
        assert job.poll() is None, f"the job ended before {what}:\n" + log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"the job never reached {what}:\n" + log.read_text()[-3000:]
        time.sleep(interval)


def kill_when(job: subprocess.Popen, ready, log: Path, limit: float = 240) -> None:
    """SIGKILL the job's process group as soon as `ready()` holds; fail if it never does."""
    try:
        wait_while_running(job, ready, log, limit, "the kill point")
        os.killpg(job.pid, signal.SIGKILL)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
        job.wait()  # reaped: a pid in a lock is dead now


def suite_session():
    """The suite's one Spark session (conftest's `spark`): made here if no test asked for
    it yet, so that a job run first in a worker shares it instead of making its own."""
    return local_spark_session(app_name="traffic-glue-tests", shuffle_partitions=2)


def run_script(script: Path, *argv: str) -> int:
    """Run a job script as `__main__` in this process (sharing the suite's Spark
    session), with `argv` after the script's name; its exit status."""
    suite_session()
    with mock.patch.object(sys, "argv", [str(script), *argv]):
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as done:
            return done.code
    raise AssertionError("the script did not exit")


def run_job(source: Path, target: Path, start: str, end: str, *extra: str) -> int:
    """Run the transform job script in this process."""
    return run_script(SCRIPT, "--JOB_NAME", "test-transform", "--source_path", str(source),
                      "--target_path", str(target), "--start_date", start, "--end_date", end, *extra)


def is_iceberg(root: Path) -> bool:
    return (root / "metadata").is_dir()


def iceberg_table(root: Path) -> StaticTable:
    """The current snapshot of the Iceberg table at `root`, read by pyiceberg (not Spark)."""
    metadata = root / "metadata"
    versions = [p.name for p in metadata.glob("v*.metadata.json")]
    if versions:  # a file-based catalog's table (a --target_path alone)
        hint = metadata / "version-hint.text"
        version = hint.read_text().strip() if hint.exists() else hadoop_table_version(versions)
        return StaticTable.from_metadata(str(metadata / f"v{version}.metadata.json"))
    # A catalog's table: its metadata files are numbered, the catalog points at the last.
    return StaticTable.from_metadata(str(max(metadata.glob("*.metadata.json"))))


def hadoop_table_version(names) -> int:
    """The version a file-based (Hadoop) catalog reads when its `version-hint.text` is
    missing, as a run killed while replacing the hint leaves it: the highest `vN.metadata.json`
    (Iceberg's `HadoopTableOperations.findVersion`)."""
    return max(int(m.group(1)) for name in names if (m := re.fullmatch(r"v(\d+)\.metadata\.json", name)))


def _data_files(root: Path) -> list[tuple[Path, tuple[int, int, int, int]]]:
    """(file, partition) of every data file the table's readers see."""
    if is_iceberg(root):
        table = iceberg_table(root)
        if table.current_snapshot() is None:
            return []
        return sorted(
            (Path(task.file.file_path.removeprefix("file:")), tuple(task.file.partition))
            for task in table.scan().plan_files()
        )
    return [
        (path, tuple(int(p.split("=")[1]) for p in path.parent.relative_to(root).parts))
        for path in sorted(root.glob("year=*/month=*/day=*/hour=*/*.parquet"))
    ]


def table_rows(root: Path, day: dt.date | None = None) -> list[tuple]:
    """Every row of the curated table (Parquet folders or an Iceberg table's current
    snapshot; partition values from the layout), sorted."""
    if is_iceberg(root):
        rows = iceberg_rows(iceberg_table(root))
    else:
        rows = []
        for path, partition in _data_files(root):
            for row in pq.read_table(path, columns=list(S.CURATED_COLUMNS)).to_pylist():
                rows.append(tuple(row[c] for c in S.CURATED_COLUMNS) + partition)
    if day:
        rows = [r for r in rows if r[-4:-1] == (day.year, day.month, day.day)]
    return sorted(rows, key=lambda r: (r[0], r[1]))


def iceberg_rows(table: StaticTable) -> list[tuple]:
    """The rows of an Iceberg table's current snapshot, as `table_rows` gives them."""
    if table.current_snapshot() is None:
        return []
    columns = [*S.CURATED_COLUMNS, *S.EVENT_PARTITIONS]
    found = [tuple(row[c] for c in columns) for row in table.scan().to_arrow().to_pylist()]
    return sorted(found, key=lambda r: (r[0], r[1]))


def partition_digests(root: Path) -> dict[str, list[str]]:
    """Per hour partition, the sorted content hashes of the data files readers see."""
    digests: dict[str, list[str]] = {}
    for path, partition in _data_files(root):
        key = "/".join(f"{k}={v}" for k, v in zip(S.EVENT_PARTITIONS, partition))
        digests.setdefault(key, []).append(hashlib.sha256(path.read_bytes()).hexdigest())
    return {k: sorted(v) for k, v in digests.items()}


def last_report(target: Path) -> dict:
    reports = sorted(target.glob("_reports/run_date=*/*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(reports[-1].read_text())


def snapshot_rows(root: Path, snapshot_id: int) -> list[tuple]:
    """The rows of one snapshot of the Iceberg table at `root` (a run's branch's too,
    also after the branch was dropped), as `table_rows` gives them."""
    columns = [*S.CURATED_COLUMNS, *S.EVENT_PARTITIONS]
    scan = iceberg_table(root).scan(snapshot_id=snapshot_id)
    found = [tuple(row[c] for c in columns) for row in scan.to_arrow().to_pylist()]
    return sorted(found, key=lambda r: (r[0], r[1]))
