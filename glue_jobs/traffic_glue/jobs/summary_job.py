"""One run of the daily summary: read the curated days, summarise, replace those days.

The summary table (`traffic.daily_summary`, docs/SEMANTICS.md "The daily summary") is
an Iceberg table partitioned by `day`. A run replaces exactly its days in one commit
(`overwrite` by a filter on `day`): readers see the old days or the new ones, and every
other day stays as it is. A day of the run without curated rows keeps no summary rows.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from traffic_glue.compute import summary
from traffic_glue.store import catalog, iceberg, locations, publish, sinks, storage
from traffic_glue.runtime.config import ICEBERG, PARQUET, SummaryConfig
from traffic_glue.runtime.progress import Progress, spark_activity

RUN_ID_PROPERTY = "traffic-glue.run-id"


class SummaryInputError(RuntimeError):
    """The curated table to summarise is not there; nothing was changed."""


EXPECTED_ERRORS = (SummaryInputError, catalog.CatalogError)


@dataclass
class SummaryReport:
    run_id: str
    job_name: str
    arguments: dict
    started_at: str
    status: str = "running"
    error: str | None = None
    finished_at: str | None = None
    duration_seconds: float | None = None
    days: list = field(default_factory=list)
    output: dict = field(default_factory=dict)
    report_path: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def summary(self) -> str:
        o = self.output
        lines = [
            f"traffic-glue daily summary {self.run_id}: {self.status}"
            + (f" in {self.duration_seconds:.1f} s" if self.duration_seconds is not None else ""),
            f"  days {', '.join(self.days) if self.days else 'none'} (UTC)",
        ]
        if self.error:
            lines.append(f"  error: {self.error}")
        if o:
            lines.append(f"  curated rows read    {o.get('curated_rows', 0):>12,}")
            lines.append(f"  summary rows written {o.get('rows', 0):>12,} "
                         f"({o.get('locations', 0):,} locations)")
            for day, n in o.get("rows_per_day", {}).items():
                lines.append(f"    {day}: {n:>8,} rows")
            lines.append(f"  output: {o.get('table')} (iceberg, snapshot {o.get('snapshot_id')})")
        if self.report_path:
            lines.append(f"  report: {self.report_path}")
        return "\n".join(lines)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_run_id(now: dt.datetime | None = None) -> str:
    from traffic_glue.jobs.job import new_run_id as transform_run_id

    return transform_run_id(now)


def curated_rows(spark: SparkSession, config: SummaryConfig) -> DataFrame:
    """The curated table's rows of the run's days (only their hour partitions are read)."""
    if config.source_table:
        table = spark.table(config.source_table)
    else:
        path = storage.qualified(spark, config.source_path)
        if iceberg.made_by_a_catalog(spark, path):
            raise SummaryInputError(
                f"--source_path {config.source_path} holds an Iceberg table of a catalog: give "
                "its name as --source_table database.table"
            )
        if storage.exists(spark, f"{path.rstrip('/')}/metadata"):
            table = spark.table(iceberg.path_table(spark, path))
        elif storage.glob(spark, f"{path.rstrip('/')}/year=*"):
            table = spark.read.parquet(path)  # the Parquet table format
        else:
            raise SummaryInputError(
                f"--source_path {config.source_path} holds no curated table (no Iceberg "
                "metadata/, no year=... folders): run the transform job first"
            )
    return table.where(sinks.days_filter(list(config.days)))


def location_names(spark: SparkSession, config: SummaryConfig) -> DataFrame | None:
    """The names of the locations table beside the curated table (`locations`), as
    `summary.NAMES_SCHEMA`; None when there is none (an `athena` table's)."""
    if config.source_table:
        info = catalog.describe(spark, config.source_table)
        location, table_format = info.location, ICEBERG if info.provider == ICEBERG else PARQUET
    else:
        location = storage.qualified(spark, config.source_path)
        table_format = ICEBERG if storage.exists(spark, f"{location.rstrip('/')}/metadata") else PARQUET
    store = locations.open_store(spark, "summary", table_format, location, config.source_table)
    rows = store.read()
    if not rows:
        return None
    return spark.createDataFrame(
        [tuple(row[name] for name in summary.NAMES_SCHEMA.fieldNames()) for row in rows],
        summary.NAMES_SCHEMA,
    )


class SummaryTable:
    """The summary's Iceberg table, in the catalog (`table`) or at a path (`location`)."""

    def __init__(self, spark: SparkSession, location: str | None, table: str | None):
        self.spark = spark
        self.location = storage.qualified(spark, location) if location else None
        if table and not spark.catalog.tableExists(table) and not location:
            raise catalog.CatalogError(
                f"--target_table {table} does not exist; give --target_path too to create it there"
            )
        if not table and iceberg.made_by_a_catalog(spark, self.location):
            raise SummaryInputError(
                f"--target_path {location} holds an Iceberg table of a catalog: give its name "
                "as --target_table database.table (with --target_path, or alone)"
            )
        self.identifier = table or iceberg.path_table(spark, self.location)
        self.name = table or self.location

    def create_if_missing(self) -> None:
        if self.spark.catalog.tableExists(self.identifier):
            if summary.LOCATION_NAME not in self.spark.table(self.identifier).columns:
                # A table made before locations had names: the column is added, its
                # earlier rows read NULL until their days are summarised again.
                self.spark.sql(f"ALTER TABLE {self.identifier} ADD COLUMN {summary.LOCATION_NAME} string")
            return
        iceberg.create_table(
            self.spark, self.identifier, summary.TABLE_SCHEMA, self.location,
            summary.SUMMARY_PARTITIONS, {"write.distribution-mode": "hash"},
        )

    def replace_days(self, rows: DataFrame, days: list[dt.date], run_id: str) -> int | None:
        """`rows` in place of everything of `days`, in one commit; the new snapshot's id."""
        (
            rows.sortWithinPartitions(summary.DAY, "uniqueid", summary.HOUR)
            .writeTo(self.identifier)
            .option(f"snapshot-property.{RUN_ID_PROPERTY}", run_id)
            .overwrite(F.col(summary.DAY).isin(list(days)))
        )
        found = self.spark.sql(
            f"SELECT snapshot_id FROM {self.identifier}.refs WHERE name = 'main'"
        ).first()
        return int(found[0]) if found else None

    def rows_per_day(self, days: list[dt.date]) -> dict[str, int]:
        counted = (
            self.spark.table(self.identifier)
            .where(F.col(summary.DAY).isin(list(days)))
            .groupBy(summary.DAY).count().collect()
        )
        found = {row[summary.DAY].isoformat(): int(row["count"]) for row in counted}
        return {day.isoformat(): found.get(day.isoformat(), 0) for day in days}

    def report_folder(self) -> str | None:
        if self.location:
            return self.location
        info = catalog.describe(self.spark, self.identifier)
        return info.location


def run(spark: SparkSession, config: SummaryConfig, progress: Progress | None = None) -> SummaryReport:
    """Summarise `config.days`; the report says what happened, also when it fails."""
    progress = progress or Progress(where=spark_activity(spark))
    started = time.monotonic()
    run_id = config.run_id or new_run_id()
    report = SummaryReport(run_id, config.job_name, config.as_report(), _now().isoformat(),
                           days=[d.isoformat() for d in config.days])
    table = None
    try:
        days = list(config.days)
        table = SummaryTable(spark, config.target_path, config.target_table)
        if not days:
            report.status = "succeeded"  # the transform replaced no day: nothing to do
            return report
        rows = curated_rows(spark, config)
        table.create_if_missing()
        with progress.phase(
            "summarising", f"{len(days)} day{'s' * (len(days) > 1)} of the curated table into {table.name}"
        ) as phase:
            named = summary.daily_summary(rows).transform(
                summary.with_location_names, location_names(spark, config)
            )
            snapshot = table.replace_days(named, days, run_id)
            phase.text = f"replaced {len(days)} day{'s' * (len(days) > 1)}: snapshot {snapshot}"
        per_day = table.rows_per_day(days)
        locations = (
            spark.table(table.identifier).where(F.col(summary.DAY).isin(days))
            .select("uniqueid").distinct().count()
        )
        report.output = {
            "table": table.name,
            "snapshot_id": snapshot,
            "rows": sum(per_day.values()),
            "rows_per_day": per_day,
            "locations": locations,
            # Parquet counts from its footers: the days' files are not read again.
            "curated_rows": rows.count(),
        }
        report.status = "succeeded"
    except Exception as error:
        report.status, report.error = "failed", str(error).strip().splitlines()[0]
        raise
    finally:
        report.finished_at = _now().isoformat()
        report.duration_seconds = round(time.monotonic() - started, 3)
        folder = table.report_folder() if table is not None and _exists(spark, table) else None
        if folder:
            day = report.started_at[:10]
            report.report_path = f"{folder.rstrip('/')}/{publish.REPORTS}/run_date={day}/{run_id}.json"
            storage.write_text(spark, report.report_path, report.to_json())
            progress.say(f"report: {report.report_path}")
    return report


def _exists(spark: SparkSession, table: SummaryTable) -> bool:
    return bool(spark.catalog.tableExists(table.identifier))

