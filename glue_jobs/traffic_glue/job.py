"""One run of the transform: read, compute, stage, publish, report.

Works on any SparkSession (Glue's or a local one); takes a `JobConfig` whose dates
are already resolved.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
import uuid

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from traffic_glue import (
    catalog, locations, pipeline, publish, sinks, sources, storage, transforms, validation,
)
from traffic_glue.progress import Progress, spark_activity
from traffic_glue import schema as S
from traffic_glue.config import ICEBERG, JobConfig
from traffic_glue.report import DAYS_WITH_READINGS, READ, RunReport, status_metrics

TOP_JAM_LOCATIONS = 10
PENDING = "_pending"  # rejected readings of a run that has not ended yet
# Metrics are published when the write's job ends; this is a guard, not a wait.
METRICS_TIMEOUT_SECONDS = 120


class NoReadingsError(RuntimeError):
    """The run found nothing to write; nothing was changed."""


class SemanticsMismatchError(RuntimeError):
    """The table holds rows of the other `--semantics`; nothing was changed."""


# Errors whose message says all a user needs: the job prints it as one line.
EXPECTED_ERRORS = (
    sources.SourceError,
    catalog.CatalogError,
    publish.TargetLockedError,
    sinks.TableFormatError,
    NoReadingsError,
)
# Errors of the arguments given, found only once the table is known: exit status 2.
ARGUMENT_ERRORS = (SemanticsMismatchError,)


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
    """The Parquet-format target's folder; a catalog table is created there if missing."""
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


def open_sink(spark: SparkSession, config: JobConfig, run_id: str):
    """The curated table's sink for `--table_format`, created if missing."""
    if config.table_format != ICEBERG:
        return sinks.ParquetSink(spark, run_id, resolve_target(spark, config), config.target_table)
    table = config.target_table
    if table and spark.catalog.tableExists(table):
        info = catalog.describe(spark, table)
        if info.provider != ICEBERG:
            raise sinks.TableFormatError(
                f"--target_table {table} is a {info.provider or 'Hive'} table, not Iceberg: give "
                "--table_format parquet, or another table"
            )
        return sinks.IcebergSink(spark, run_id, info.location, table)
    if table and not config.target_path:
        raise catalog.CatalogError(
            f"--target_table {table} does not exist; give --target_path too to create it there"
        )
    return sinks.IcebergSink(spark, run_id, config.target_path, table)


def check_semantics(sink, config: JobConfig) -> str | None:
    """The mode the table holds; `SemanticsMismatchError` if it is the other one and the
    run was not told to replace it."""
    recorded = sink.recorded_semantics()
    if recorded and recorded != config.semantics and not config.replace_semantics:
        raise SemanticsMismatchError(
            f"the table at {sink.location} holds --semantics {recorded} rows and this run "
            f"computes {config.semantics}: run with --semantics {recorded}, or add "
            f"--replace_semantics true to rewrite the run's days as {config.semantics} "
            "(the other days keep their rows)"
        )
    return recorded


def run(spark: SparkSession, config: JobConfig, progress: Progress | None = None) -> RunReport:
    """Process `config`'s days; the report says what happened, also when it fails.
    `progress` hears of each phase (by default: lines on standard output)."""
    progress = progress or Progress(where=spark_activity(spark))
    started = time.monotonic()
    run_id = config.run_id or new_run_id()
    report = RunReport(run_id, config.job_name, config.as_report(), _now().isoformat())
    target, refused = None, False
    try:
        source_root, source_format = resolve_source(spark, config)
        sink = open_sink(spark, config, run_id)
        target = sink.location
        report.output["table_format"] = sink.table_format
        parquet = sink.table_format != ICEBERG
        # An Iceberg commit detects a concurrent writer itself; Parquet folders need a lock.
        lock = publish.TargetLock(
            spark, target, run_id, config.lock_expiry_minutes, config.job_name,
            config.glue_job_run_id,
        )
        with lock if parquet else contextlib.nullcontext():
            if parquet:
                report.lock_taken_over = lock.taken_over
                report.recovered_runs = publish.recover(spark, target)
            _process(spark, config, report, source_root, source_format, sink, progress)
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
            progress.say(f"report: {report.report_path}")
    return report


def _process(
    spark: SparkSession,
    config: JobConfig,
    report: RunReport,
    source_root: str,
    source_format: str,
    sink,
    progress: Progress,
) -> None:
    first, after = sources.processing_hours(
        config.start_date, config.end_date, config.lookback_minutes, config.late_hours
    )
    with progress.phase(
        "reading", f"raw files under {source_root}, processing hours "
        f"{first:%Y-%m-%d %H}:00 .. {after:%Y-%m-%d %H}:00 UTC ({source_format})"
    ) as reading:
        raw_input = sources.read_raw(
            spark, source_root, source_format, first, after, config.semantics,
            skip_corrupt=config.corrupt_files == "skip",
        )
        reading.text = f"read {sources.describe_files(raw_input.files)}"
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
    window = pipeline.RunWindow.for_days(
        config.start_date, config.end_date, config.lookback_minutes
    )
    recorded = check_semantics(sink, config)
    # A new table records the run's mode as it is made; an old one once the run is in.
    created = sink.create_if_missing(config.semantics)
    # A run still going after its lock would have expired is not one to wait for.
    stale = _now() - dt.timedelta(minutes=config.lock_expiry_minutes)
    report.quarantines_dropped = drop_stale_quarantines(spark, sink.location, stale)
    observers = {
        pipeline.STATUSES: lambda df: df.observe(
            statuses, *status_metrics(window.output_start, window.output_end)
        ),
        pipeline.KEPT_READINGS: lambda df: df.observe(
            kept, F.count_if(transforms.has_status(transforms.KEPT)).alias("n")
        ),
        pipeline.OUTPUT_ROWS: lambda df: df.observe(rows, F.count(F.lit(1)).alias("n")),
    }
    readings, total = sources.readings_to_validate(raw_input, window.context)
    curated = pipeline.curated_minutes(
        validation.typed_readings(readings, window.context),
        config.semantics,
        window,
        config.locations,
        observe=lambda stage, df: observers[stage](df),
    )
    run_days = sinks.days_between(config.start_date, config.end_date)
    days_text = f"{config.start_date}..{config.end_date}"
    if config.locations:
        # Only the chosen locations' rows are replaced: the others' rows of the run's
        # days go through the same write unchanged.
        published = sink.published_rows(run_days)
        if published is not None:
            others = published.where(~F.col(S.LOCATION_ID).isin(list(config.locations)))
            curated = curated.unionByName(others)
    try:
        with progress.phase(
            "computing and writing",
            f"{len(run_days)} day{'s' if len(run_days) > 1 else ''}, {days_text} "
            f"(--semantics {config.semantics}) into {sink.location}",
        ) as computing:
            sink.stage(curated, days_text, config.semantics)  # the one pass over the data
            row_count = int(_metrics(rows)["n"])
            computing.text = f"computed and staged {row_count:,} rows"
        observed = _metrics(statuses)
        skipped = total - int(observed[READ]) if total is not None else 0
        report.source["outside_days_skipped"] = skipped
        report.count_readings(observed, int(_metrics(kept)["n"]), skipped)
        offsets = (observed[DAYS_WITH_READINGS] or "").split(",")
        with_readings = [run_days[int(n)] for n in offsets if n]
        unchanged = [day.isoformat() for day in run_days if day not in with_readings]

        target = sink.location
        quarantined = report.readings["rejected_total"] > 0
        if quarantined:
            with progress.phase(
                "quarantining", f"{report.readings['rejected_total']:,} rejected readings"
            ):
                _quarantine(readings, window.context, target, report.run_id)
        run_date = report.started_at[:10]
        if row_count == 0:
            r = report.readings
            if quarantined:
                report.output["rejected_path"] = _show_quarantine(spark, target, report.run_id, run_date)
            raise NoReadingsError(
                f"no rows to write for {config.start_date} .. {config.end_date}: "
                f"{r['read']} readings read from {len(raw_input.files)} files, "
                f"{r['kept']} kept; the table was left unchanged"
            )
        # The sections and lanes of the run's days, for the locations table: a second,
        # narrow pass over the raw readings (four columns), made before the commit so
        # that its failure changes nothing.
        lanes = locations.of_locations(
            locations.seen_lanes(readings, window.output_start, window.output_end),
            config.locations, config.semantics,
        ).localCheckpoint()
        committing = time.monotonic()
        with progress.phase(
            "committing", f"{len(with_readings)} day{'s' if len(with_readings) > 1 else ''} "
            f"with raw readings ({sink.table_format})"
        ) as commit:
            result = sink.publish(with_readings, days_text, config.semantics)
            commit.text = (
                f"committed {len(result.written)} hour partitions"
                + (f", removed {len(result.removed)}" if result.removed else "")
                + (f": snapshot {result.snapshot_id}" if result.snapshot_id else "")
            )
        report.output["publish_seconds"] = round(time.monotonic() - committing, 3)
        if quarantined:
            report.output["rejected_path"] = _show_quarantine(spark, target, report.run_id, run_date)
    except BaseException as error:
        sink.abandon()
        if not isinstance(error, NoReadingsError):  # that one's quarantine is shown already
            storage.delete(spark, _pending_quarantine(sink.location, report.run_id))
        raise
    if not created and recorded != config.semantics:
        sink.record_semantics(config.semantics)
    if config.target_table and sink.table_format != ICEBERG:
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
        days_left_unchanged=unchanged,
        semantics_replaced=recorded if recorded and recorded != config.semantics else None,
        snapshot_id=result.snapshot_id,
        per_partition={p.partition: {"files": p.files, "bytes": p.bytes} for p in result.written},
    )
    # Right after the curated table's commit: two tables cannot commit as one
    # (docs/SEMANTICS.md, "The locations table", says what a crash in between leaves).
    store = locations.open_store(spark, run_id=report.run_id, table_format=sink.table_format,
                                 curated_location=target, curated_table=config.target_table)
    report.output["locations"] = locations.record(store, lanes)
    with progress.phase("summarising", "the locations with the most jam minutes"):
        report.top_jam_locations = _top_jam_locations(sink.published_rows(with_readings))


def _metrics(observation: Observation, timeout_seconds: float = METRICS_TIMEOUT_SECONDS) -> dict:
    """An observation's values; fail loudly rather than wait forever (a hung Glue job bills)."""
    result: dict = {}
    waiter = threading.Thread(target=lambda: result.update(observation.get), daemon=True)
    waiter.start()
    waiter.join(timeout_seconds)
    if waiter.is_alive():
        raise RuntimeError(f"run metrics {observation._name!r} did not arrive after the write")
    return result


def _quarantine(raw: DataFrame, context: tuple[int, int], target: str, run_id: str) -> str:
    """The run's rejected readings with their reason, written where no reader looks yet
    (`_rejected/_pending/<run_id>/`): `_show_quarantine` moves them into view when the
    run ends, so a run killed before that and its rerun never show them twice."""
    pending = _pending_quarantine(target, run_id)
    (
        validation.rejected_readings(raw, F.input_file_name(), context)
        .withColumn("run_id", F.lit(run_id))
        .coalesce(1)
        .write.mode("overwrite")
        .parquet(pending)
    )
    return pending


def _pending_quarantine(target: str, run_id: str = "") -> str:
    return "/".join(p for p in (target.rstrip("/"), publish.REJECTED, PENDING, run_id) if p)


def _show_quarantine(spark: SparkSession, target: str, run_id: str, run_date: str) -> str:
    """Move the run's pending rejected readings to `_rejected/run_date=<day>/`."""
    shown = f"{target.rstrip('/')}/{publish.REJECTED}"
    pending = _pending_quarantine(target, run_id)
    for entry in storage.list_files(spark, pending):
        name = entry.path.rstrip("/").rsplit("/", 1)[-1]
        storage.rename(spark, entry.path, f"{shown}/run_date={run_date}/{name}")
    storage.delete(spark, pending)
    return shown


def drop_stale_quarantines(spark: SparkSession, target: str, older_than: dt.datetime) -> list[str]:
    """Pending quarantines of runs started before `older_than` (ended without showing
    them: killed, or failed); their readings are found again by a rerun."""
    dropped = []
    for entry in storage.list_dirs(spark, _pending_quarantine(target)):
        run_id = entry.path.rstrip("/").rsplit("/", 1)[-1]
        try:
            started = dt.datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            continue  # a run id given by hand: not known to be old
        if started < older_than:
            storage.delete(spark, entry.path)
            dropped.append(run_id)
    return dropped


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
