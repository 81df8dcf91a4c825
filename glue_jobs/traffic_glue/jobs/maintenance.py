"""The table maintenance job (glue_jobs/traffic_table_maintenance.py): expiring the
tables' old snapshots and the files no snapshot needs any more.

Its arguments are declared once (README's table, `--help`); its run checks every table
before any is changed, then expires each one's old snapshots (`expire`), one JSON line
per table. A table's history (what each run committed) and undoing a run are the table
seam's (`tables.IcebergTable.history`, `rollback_run`; `python -m tools.table`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from traffic_glue.runtime import glue
from traffic_glue.runtime.arguments import Argument, ArgumentError, Arguments, Config, table_name, whole
from traffic_glue.runtime.config import CATALOG_DIR, JOB_NAME
from traffic_glue.runtime.frame import JobSpec
from traffic_glue.store import catalog, tables

DEFAULT_RETENTION_DAYS = 7  # days of snapshots kept (the job's --retention_days)
ORPHAN_MIN_AGE = dt.timedelta(days=1, minutes=5)


def open_tables(spark: SparkSession, names: tuple[str, ...]) -> list[tables.IcebergTable]:
    """Every table named, checked before any is changed; `TableError` names one that is
    missing or not an Iceberg table."""
    found = []
    for name in names:
        if not spark.catalog.tableExists(name):
            raise tables.TableError(f"table {name} does not exist in the catalog: nothing to expire")
        found.append(tables.open_table(spark, None, table=name))
    return found


def expire(
    table: tables.IcebergTable,
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
    dropped = table.run_branches(older_than=cutoff)
    for name in dropped:
        table.drop_branch(name)
    expired = table.call("expire_snapshots", older_than=f"TIMESTAMP '{cutoff}'", retain_last="1")[0].asDict()
    orphans = table.call(
        "remove_orphan_files",
        older_than=f"TIMESTAMP '{orphan_cutoff:%Y-%m-%d %H:%M:%S}'", location=f"'{table.location.rstrip('/')}/data'",
    )
    return {
        "older_than": cutoff,
        "branches_dropped": dropped,
        "data_files_deleted": int(expired.get("deleted_data_files_count", 0)),
        "manifest_files_deleted": int(expired.get("deleted_manifest_files_count", 0)),
        "orphan_files_deleted": len(orphans),
    }


# --- the job ------------------------------------------------------------------------------

USAGE = "--JOB_NAME NAME --target_table DB.T[,DB.T...] [--retention_days N] [--catalog_dir PATH]"


def table_names(name: str, value: str) -> tuple[str, ...]:
    """Comma-separated `database.table` names, in order."""
    names = tuple(table_name(name, part.strip()) for part in value.split(",") if part.strip())
    if not names:
        raise ArgumentError(f"--{name} must be database.table, got {value!r}")
    return names


ARGUMENTS = Arguments(
    JOB_NAME,
    Argument("target_table", table_names, (), attribute="target_tables", required=True,
             help="the Iceberg tables to expire, comma-separated `database.table` names (the "
                  "curated table, the locations table, the daily summary); every one is checked "
                  "before any is changed"),
    Argument("retention_days", whole(minimum=1), DEFAULT_RETENTION_DAYS,
             "snapshots older than this many days are expired (the current one always stays), "
             "with the files only they need"),
    CATALOG_DIR,
)


@ARGUMENTS.config
class MaintenanceConfig(Config):
    """The table maintenance job's configuration: an attribute per argument."""


def parse_maintenance_args(argv: list[str]) -> MaintenanceConfig:
    """The maintenance job's `sys.argv`, read through Glue's `getResolvedOptions`;
    `ArgumentError` names a wrong argument."""
    return ARGUMENTS.parse(argv, glue.resolved_options)


@dataclass(frozen=True)
class Expired:
    """What the run removed: one JSON line per table."""

    results: list[dict] = field(default_factory=list)
    exit_status = 0
    error_log = False

    def summary(self) -> str:
        return "\n".join(json.dumps(result, sort_keys=True) for result in self.results)


def run(spark: SparkSession, config: MaintenanceConfig) -> Expired:
    opened = open_tables(spark, config.target_tables)  # all checked first
    return Expired([
        {"table": name, **expire(table, config.retention_days)}
        for name, table in zip(config.target_tables, opened)
    ])


def start(config: MaintenanceConfig, argv: list[str]) -> glue.Runtime:
    """Its session always has a catalog: the tables are named in one."""
    return glue.start_job(config.job_name, argv, catalog_dir=config.catalog_dir)


SPEC = JobSpec(
    program="traffic_table_maintenance",
    usage=USAGE,
    arguments=ARGUMENTS,
    run=run,
    expected_errors=(tables.TableError, catalog.CatalogError),
    start=start,
)
