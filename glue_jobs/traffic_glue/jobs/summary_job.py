"""One run of the daily summary: read the curated days, summarise, replace those days.

The summary table (`traffic.daily_summary`, docs/SEMANTICS.md "The daily summary") is
an Iceberg table partitioned by `day`. A run replaces exactly its days in one commit
(`overwrite` by a filter on `day`): readers see the old days or the new ones, and every
other day stays as it is. A day of the run without curated rows keeps no summary rows.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from traffic_glue.compute import summary
from traffic_glue.jobs.summary_args import SummaryConfig
from traffic_glue.runtime.report import SummaryReport
from traffic_glue.runtime.progress import Progress, spark_activity
from traffic_glue.store import catalog, curated, frames, locations, storage, tables


class SummaryInputError(RuntimeError):
    """The curated table to summarise is not there; nothing was changed."""


EXPECTED_ERRORS = (SummaryInputError, catalog.CatalogError, tables.TableError)


def open_source(spark: SparkSession, config: SummaryConfig) -> tables.IcebergTable:
    """The curated table to summarise; `SummaryInputError` if it is not there."""
    given = f"--source_table {config.source_table}" if config.source_table else f"--source_path {config.source_path}"
    if config.source_table and not spark.catalog.tableExists(config.source_table):
        raise SummaryInputError(f"{given} does not exist: run the transform job first")
    table = curated.open_table(spark, config.source_table, config.source_path, argument="source")
    if not table.exists():
        raise SummaryInputError(f"{given} holds no curated table: run the transform job first")
    return table


def location_names(spark: SparkSession, source: tables.IcebergTable) -> DataFrame | None:
    """The names of the locations table beside the curated table (`locations`), as
    `summary.NAMES_SCHEMA`; None when there is none (an `athena` table's)."""
    rows = locations.open_store(spark, "summary", source).read()
    if not rows:
        return None
    return frames.driver_frame(
        spark,
        [tuple(row[name] for name in summary.NAMES_SCHEMA.fieldNames()) for row in rows],
        summary.NAMES_SCHEMA,
    )


SPEC = tables.TableSpec(
    kind="the daily summary table",
    schema=summary.TABLE_SCHEMA,
    partitioned_by=summary.SUMMARY_PARTITIONS,
    properties={"write.distribution-mode": "hash"},
)


def rows_per_day(table: tables.IcebergTable, days: list[dt.date]) -> dict[str, int]:
    counted = table.read(F.col(summary.DAY).isin(list(days))).groupBy(summary.DAY).count().collect()
    found = {row[summary.DAY].isoformat(): int(row["count"]) for row in counted}
    return {day.isoformat(): found.get(day.isoformat(), 0) for day in days}


def run(spark: SparkSession, config: SummaryConfig, progress: Progress | None = None) -> SummaryReport:
    """Summarise `config.days`; the report says what happened, also when it fails."""
    progress = progress or Progress(where=spark_activity(spark))
    report = SummaryReport.for_config(config, days=[d.isoformat() for d in config.days])
    table = None

    def write_report() -> None:
        if table is not None and table.location and table.exists():
            day = report.started_at[:10]
            report.report_path = f"{table.location.rstrip('/')}/{curated.REPORTS}/run_date={day}/{report.run_id}.json"
            storage.write_text(spark, report.report_path, report.to_json())
            progress.say(f"report: {report.report_path}")

    with report.running(then=write_report):
        days = list(config.days)
        table = tables.open_table(spark, SPEC, table=config.target_table, path=config.target_path)
        if not days:
            return report  # the transform replaced no day: nothing to do
        source = open_source(spark, config)
        rows = source.read(curated.days_filter(days))
        # A table made before locations had names gets the column; its earlier rows
        # read NULL until their days are summarised again.
        table.create_if_missing()
        with progress.phase(
            "summarising", f"{len(days)} day{'s' * (len(days) > 1)} of the curated table into {table.name}"
        ) as phase:
            named = summary.daily_summary(rows).transform(
                summary.with_location_names, location_names(spark, source)
            )
            snapshot = table.overwrite(
                named.sortWithinPartitions(summary.DAY, "uniqueid", summary.HOUR),
                F.col(summary.DAY).isin(days), tables.snapshot_properties(report.run_id),
            )
            phase.text = f"replaced {len(days)} day{'s' * (len(days) > 1)}: snapshot {snapshot}"
        per_day = rows_per_day(table, days)
        located = table.read(F.col(summary.DAY).isin(days)).select("uniqueid").distinct().count()
        report.output = {
            "table": table.name,
            "snapshot_id": snapshot,
            "rows": sum(per_day.values()),
            "rows_per_day": per_day,
            "locations": located,
            # Counted from the data files' metadata: the days' rows are not read again.
            "curated_rows": rows.count(),
        }
    return report
