"""One run of the transform: read, compute, write staged, publish, report.

Works on any SparkSession (Glue's or a local one); takes a `JobConfig` whose dates
are already resolved.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from traffic_glue import catalog, pipeline, publish, sources, storage, transforms, validation
from traffic_glue import schema as S
from traffic_glue.config import JobConfig
from traffic_glue.report import READ, RunReport, status_metrics

TOP_JAM_LOCATIONS = 10
# Metrics are published when the write's job ends; this is a guard, not a wait.
METRICS_TIMEOUT_SECONDS = 120


class NoReadingsError(RuntimeError):
    """The run found nothing to write; nothing was changed."""


# Errors whose message says all a user needs: the job prints it as one line.
EXPECTED_ERRORS = (
    sources.SourceError,
    catalog.CatalogError,
    publish.TargetLockedError,
    NoReadingsError,
)


def new_run_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def resolve_source(spark: SparkSession, config: JobConfig) -> tuple[str, str]:
    if config.source_table:
        info = catalog.describe(spark, config.source_table)
        return info.location, info.source_format
    return config.source_path, config.source_format


def resolve_target(spark: SparkSession, config: JobConfig) -> str:
    if not config.target_table:
        return config.target_path
    if not spark.catalog.tableExists(config.target_table):
        if not config.target_path:
            raise catalog.CatalogError(
                f"--target_table {config.target_table} does not exist; give --target_path "
                "too to create it there"
            )
        catalog.create_curated_table(spark, config.target_table, config.target_path)
    return catalog.describe(spark, config.target_table).location


def run(spark: SparkSession, config: JobConfig) -> RunReport:
    """Process `config`'s days; the report says what happened, also when it fails."""
    started = time.monotonic()
    run_id = config.run_id or new_run_id()
    report = RunReport(run_id, config.job_name, config.as_report(), _now().isoformat())
    target, refused = None, False
    try:
        source_root, source_format = resolve_source(spark, config)
        target = resolve_target(spark, config)
        with publish.TargetLock(spark, target, run_id):
            report.recovered_runs = publish.recover(spark, target)
            _process(spark, config, report, source_root, source_format, target)
        report.status = "succeeded"
    except Exception as error:
        report.status, report.error = "failed", str(error).strip().splitlines()[0]
        # A run refused because another one is writing the target writes nothing there.
        refused = isinstance(error, publish.TargetLockedError)
        raise
    finally:
        report.finished_at = _now().isoformat()
        report.duration_seconds = round(time.monotonic() - started, 3)
        if target and not refused:
            report.report_path = _write_report(spark, target, report)
    return report


def _process(
    spark: SparkSession,
    config: JobConfig,
    report: RunReport,
    source_root: str,
    source_format: str,
    target: str,
) -> None:
    first, after = sources.processing_hours(
        config.start_date, config.end_date, config.lookback_minutes, config.late_hours
    )
    raw_input = sources.read_raw(
        spark, source_root, source_format, first, after, config.semantics,
        skip_corrupt=config.corrupt_files == "skip",
    )
    report.source = {
        "root": source_root,
        "format": source_format,
        "processing_hours": [first.isoformat(), after.isoformat()],
        "files": len(raw_input.files),
        "readings_per_file": {f.path: f.rows for f in raw_input.files if f.rows is not None},
        "skipped": raw_input.skipped,
    }

    statuses = Observation("reading_statuses")
    kept = Observation("kept_readings")
    rows = Observation("output_rows")
    observers = {
        pipeline.STATUSES: lambda df: df.observe(statuses, *status_metrics()),
        # In corrected the observed frame also holds left-out readings naming a location.
        pipeline.KEPT_READINGS: lambda df: df.observe(
            kept, F.count_if(transforms.has_status(transforms.KEPT)).alias("n")
        ),
        pipeline.OUTPUT_ROWS: lambda df: df.observe(rows, F.count(F.lit(1)).alias("n")),
    }
    window = pipeline.RunWindow.for_days(
        config.start_date, config.end_date, config.lookback_minutes
    )
    readings, total = judged_readings(raw_input, window.context)
    curated = pipeline.curated_minutes(
        validation.typed_readings(readings, window.context),
        config.semantics,
        window,
        config.locations,
        observe=lambda stage, df: observers[stage](df),
    )
    staging = publish.staging_dir(target, report.run_id)
    publish.write_staged(curated, staging)  # the one pass over the data
    observed = _metrics(statuses)
    skipped = total - int(observed[READ]) if total is not None else 0
    report.source["outside_days_skipped"] = skipped
    report.count_readings(observed, int(_metrics(kept)["n"]), skipped)
    row_count = int(_metrics(rows)["n"])

    if report.readings["rejected_total"]:
        report.output["rejected_path"] = _quarantine(
            readings, window.context, target, report.run_id, report.started_at[:10]
        )
    if row_count == 0:
        storage.delete(spark, staging)
        r = report.readings
        raise NoReadingsError(
            f"no rows to write for {config.start_date} .. {config.end_date}: "
            f"{r['read']} readings read from {len(raw_input.files)} files, "
            f"{r['kept']} kept; the table was left unchanged"
        )
    report.top_jam_locations = _top_jam_locations(spark.read.parquet(staging))

    days = publish.day_partitions(config.start_date, config.end_date)
    result = publish.publish(spark, target, report.run_id, days)
    if config.target_table:
        catalog.register_partitions(
            spark, config.target_table, target,
            [p.partition for p in result.written], result.removed,
        )
    report.output.update(
        path=target,
        rows=row_count,
        partitions=len(result.written),
        files=result.files,
        bytes=result.bytes,
        max_files_per_partition=max((p.files for p in result.written), default=0),
        partitions_removed=result.removed,
        per_partition={p.partition: {"files": p.files, "bytes": p.bytes} for p in result.written},
    )


def judged_readings(raw_input: sources.RawInput, context: tuple[int, int]) -> tuple[DataFrame, int | None]:
    """The raw readings the run judges, and how many readings the files hold in all.

    Where the time is an integer column and the footers count every file's readings,
    other days' readings are left out by a filter that Parquet also applies to whole
    row groups, which are then never read (`validation.judged_by_run`); the total, from
    the footers, lets the report count them as read and `outside_days` all the same.
    Otherwise every reading is judged (total None).
    """
    judged = validation.judged_by_run(raw_input.readings, context)
    footer_rows = [f.rows for f in raw_input.files]
    if judged is None or None in footer_rows:
        return raw_input.readings, None
    return raw_input.readings.where(judged), sum(footer_rows)


def _metrics(observation: Observation, timeout_seconds: float = METRICS_TIMEOUT_SECONDS) -> dict:
    """An observation's values; fail loudly rather than wait forever (a hung Glue job bills)."""
    result: dict = {}
    waiter = threading.Thread(target=lambda: result.update(observation.get), daemon=True)
    waiter.start()
    waiter.join(timeout_seconds)
    if waiter.is_alive():
        raise RuntimeError(f"run metrics {observation._name!r} did not arrive after the write")
    return result


def _quarantine(
    raw: DataFrame, context: tuple[int, int], target: str, run_id: str, run_date: str
) -> str:
    """The run's rejected readings beside the curated data, by run date, with their reason."""
    path = f"{target.rstrip('/')}/{publish.REJECTED}"
    (
        validation.rejected_readings(raw, F.input_file_name(), context)
        .withColumn("run_id", F.lit(run_id))
        .withColumn("run_date", F.lit(run_date))
        .coalesce(1)
        .write.mode("append")
        .partitionBy("run_date")
        .parquet(path)
    )
    return path


def _top_jam_locations(output: DataFrame) -> list[dict]:
    ranked = (
        output.where(F.col(S.JAM) == 1)
        .groupBy(S.LOCATION_ID)
        .agg(F.count(F.lit(1)).alias("jam_minutes"))
        .orderBy(F.desc("jam_minutes"), S.LOCATION_ID)
        .limit(TOP_JAM_LOCATIONS)
    )
    return [row.asDict() for row in ranked.collect()]


def _write_report(spark: SparkSession, target: str, report: RunReport) -> str:
    day = report.started_at[:10]
    path = f"{target.rstrip('/')}/{publish.REPORTS}/run_date={day}/{report.run_id}.json"
    report.report_path = path
    storage.write_text(spark, path, report.to_json())
    return path
