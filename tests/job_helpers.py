"""Running the job script as Glue does, in this process, and reading what it wrote."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import runpy
import sys
from pathlib import Path
from unittest import mock

import pyarrow.parquet as pq

from traffic_glue import schema as S

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "glue_jobs" / "traffic_transform.py"


def run_job(source: Path, target: Path, start: str, end: str, *extra: str) -> int:
    """Run the job script in this process (sharing the suite's Spark session)."""
    argv = [str(SCRIPT), "--JOB_NAME", "test-transform", "--source_path", str(source),
            "--target_path", str(target), "--start_date", start, "--end_date", end, *extra]
    with mock.patch.object(sys, "argv", argv):
        try:
            runpy.run_path(str(SCRIPT), run_name="__main__")
        except SystemExit as done:
            return done.code
    raise AssertionError("the script did not exit")


def table_rows(root: Path, day: dt.date | None = None) -> list[tuple]:
    """Every row of the curated table (partition values from the folders), sorted."""
    rows = []
    for path in sorted(root.glob("year=*/month=*/day=*/hour=*/*.parquet")):
        parts = dict(p.split("=") for p in path.parent.relative_to(root).parts)
        if day and (int(parts["year"]), int(parts["month"]), int(parts["day"])) != (
            day.year, day.month, day.day):
            continue
        for row in pq.read_table(path).to_pylist():
            rows.append(tuple(row[c] for c in S.CURATED_COLUMNS)
                        + tuple(int(parts[k]) for k in S.EVENT_PARTITIONS))
    return sorted(rows, key=lambda r: (r[0], r[1]))


def partition_digests(root: Path) -> dict[str, list[str]]:
    """Per partition folder, the sorted content hashes of its data files."""
    digests: dict[str, list[str]] = {}
    for path in root.glob("year=*/month=*/day=*/hour=*/*.parquet"):
        key = str(path.parent.relative_to(root))
        digests.setdefault(key, []).append(hashlib.sha256(path.read_bytes()).hexdigest())
    return {k: sorted(v) for k, v in digests.items()}


def last_report(target: Path) -> dict:
    reports = sorted(target.glob("_reports/run_date=*/*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(reports[-1].read_text())
