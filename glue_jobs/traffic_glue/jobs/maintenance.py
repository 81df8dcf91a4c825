"""The curated Iceberg table's history: what each run committed, undoing a run, and
expiring old snapshots and the files no snapshot needs any more.

Each run's commits carry its run id, days and `--semantics` in their snapshot summaries
(`sinks.IcebergSink`); a run moves `main` once, so one entry of the table's history is
one run (or one rollback).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import SparkSession

from traffic_glue.store import iceberg, sinks
from traffic_glue.runtime.config import DEFAULT_RETENTION_DAYS
ORPHAN_MIN_AGE = dt.timedelta(days=1, minutes=5)


class TableHistoryError(RuntimeError):
    """A run or snapshot asked for is not in the table's history."""


@dataclass(frozen=True)
class Commit:
    """One change of what readers see: a run's commit, or a rollback."""

    made_current_at: dt.datetime
    snapshot_id: int
    before_snapshot_id: int | None  # what readers saw before it (restore it to undo)
    run_id: str | None
    days: str | None
    semantics: str | None
    rows: int  # the table's rows after it
    current: bool


def _snapshots(spark: SparkSession, identifier: str) -> dict[int, dict]:
    return {
        int(row["snapshot_id"]): {
            "parent": int(row["parent_id"]) if row["parent_id"] is not None else None,
            "summary": dict(row["summary"] or {}),
        }
        for row in spark.sql(f"SELECT snapshot_id, parent_id, summary FROM {identifier}.snapshots").collect()
    }


def history(spark: SparkSession, identifier: str) -> list[Commit]:
    """Every time `main` moved, oldest first, with the run that moved it."""
    snapshots = _snapshots(spark, identifier)
    current = spark.sql(f"SELECT snapshot_id FROM {identifier}.refs WHERE name = 'main'").first()
    commits = []
    for row in spark.sql(
        f"SELECT made_current_at, snapshot_id FROM {identifier}.history ORDER BY made_current_at"
    ).collect():
        head = int(row["snapshot_id"])
        summary = snapshots.get(head, {}).get("summary", {})
        run_id = summary.get(sinks.RUN_ID)
        commits.append(Commit(
            made_current_at=row["made_current_at"],
            snapshot_id=head,
            before_snapshot_id=_base(snapshots, head, run_id),
            run_id=run_id,
            days=summary.get(sinks.RUN_DAYS),
            semantics=summary.get(sinks.RUN_SEMANTICS),
            rows=int(summary.get("total-records", 0)),
            current=bool(current) and int(current[0]) == head,
        ))
    return commits


def _base(snapshots: dict[int, dict], head: int, run_id: str | None) -> int | None:
    """The snapshot before the run's first commit (its commits are a chain on `main`)."""
    snapshot = head
    while run_id and snapshot in snapshots:
        parent = snapshots[snapshot]["parent"]
        if parent is None or snapshots.get(parent, {}).get("summary", {}).get(sinks.RUN_ID) != run_id:
            return parent
        snapshot = parent
    return snapshots.get(head, {}).get("parent")


def _procedure(spark: SparkSession, identifier: str, name: str, **args: str) -> list:
    catalog = iceberg.catalog_of(identifier)
    table = iceberg.table_in_catalog(identifier)
    named = ", ".join([f"table => '{table}'", *(f"{k} => {v}" for k, v in args.items())])
    return spark.sql(f"CALL {catalog}.system.{name}({named})").collect()


def rollback_to_snapshot(spark: SparkSession, identifier: str, snapshot_id: int) -> None:
    known = _snapshots(spark, identifier)
    if snapshot_id not in known:
        raise TableHistoryError(f"snapshot {snapshot_id} is not in {identifier}'s history")
    _procedure(spark, identifier, "rollback_to_snapshot", snapshot_id=str(snapshot_id))


def rollback_run(spark: SparkSession, identifier: str, run_id: str) -> Commit:
    """Make the table read as it was before `run_id`'s commit; returns that commit."""
    commits = [c for c in history(spark, identifier) if c.run_id == run_id]
    if not commits:
        raise TableHistoryError(f"run {run_id} made no commit in {identifier}'s history")
    commit = commits[0]
    if commit.before_snapshot_id is None:
        raise TableHistoryError(f"run {run_id} made the table's first snapshot: nothing to restore")
    rollback_to_snapshot(spark, identifier, commit.before_snapshot_id)
    return commit


def expire(
    spark: SparkSession,
    identifier: str,
    location: str,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    now: dt.datetime | None = None,
) -> dict:
    """Drop snapshots older than the retention (the current one always stays), the
    branches crashed runs left behind, and the data files no snapshot needs.

    Orphan files are looked for under `data/` only: the table's folder also holds the
    run reports and the quarantine, which no snapshot lists.
    """
    real_now = dt.datetime.now(dt.timezone.utc)
    now = now or real_now
    cutoff = (now - dt.timedelta(days=retention_days)).strftime("%Y-%m-%d %H:%M:%S")
    # Iceberg refuses to look for orphans younger than a day: a running write's files
    # are not in any snapshot yet.
    orphan_cutoff = min(now - dt.timedelta(days=retention_days), real_now - ORPHAN_MIN_AGE)
    dropped = []
    for row in spark.sql(
        f"SELECT r.name, s.committed_at FROM {identifier}.refs r "
        f"JOIN {identifier}.snapshots s ON r.snapshot_id = s.snapshot_id "
        f"WHERE r.type = 'BRANCH' AND r.name LIKE '{sinks.RUN_BRANCH_PREFIX}%' "
        f"AND s.committed_at < TIMESTAMP '{cutoff}'"
    ).collect():
        spark.sql(f"ALTER TABLE {identifier} DROP BRANCH IF EXISTS `{row['name']}`")
        dropped.append(row["name"])
    expired = _procedure(
        spark, identifier, "expire_snapshots", older_than=f"TIMESTAMP '{cutoff}'", retain_last="1"
    )[0].asDict()
    orphans = _procedure(
        spark, identifier, "remove_orphan_files",
        older_than=f"TIMESTAMP '{orphan_cutoff:%Y-%m-%d %H:%M:%S}'", location=f"'{location.rstrip('/')}/data'",
    )
    return {
        "older_than": cutoff,
        "branches_dropped": dropped,
        "data_files_deleted": int(expired.get("deleted_data_files_count", 0)),
        "manifest_files_deleted": int(expired.get("deleted_manifest_files_count", 0)),
        "orphan_files_deleted": len(orphans),
    }
