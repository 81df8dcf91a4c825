"""One run of the transform: read, compute, write, report.

Works on any SparkSession (Glue's or a local one); takes a `JobConfig` whose dates
are already resolved.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from traffic_glue.compute import pipeline, transforms, validation
from traffic_glue.store import catalog, configuration_files, locations, publish, quarantine, sinks, sources, storage
from traffic_glue.compute import schema as S
from traffic_glue.runtime.config import CORRECTED, ICEBERG, JobConfig
from traffic_glue.compute.configuration import ConfigurationError, Snapshot
from traffic_glue.runtime.progress import Progress, spark_activity
from traffic_glue.runtime.report import RunReport
from traffic_glue.compute.run_range import RunRange

TOP_JAM_LOCATIONS = 10


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
    ConfigurationError,
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
        span = config.run_range()
        source_root, source_format = resolve_source(spark, config)
        sink = open_sink(spark, config, run_id)
        target = sink.location
        report.output["table_format"] = sink.table_format
        with _target_lock(spark, config, sink, report):
            snapshots = read_configuration(spark, config, span, report, progress)
            raw_input = read(spark, config, span, source_root, source_format, report, progress)
            readings = sources.readings_to_validate(raw_input, span)
            recorded, created = prepare_table(spark, config, sink, report)
            curated = compute(spark, readings, config, span, snapshots)
            written = write(spark, config, span, sink, raw_input, readings, curated, report, progress)
            finish(spark, config, sink, recorded, created, written, snapshots, report, progress)
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


def _target_lock(spark: SparkSession, config: JobConfig, sink, report: RunReport):
    """An Iceberg commit detects a concurrent writer itself; Parquet folders need a lock,
    and a dead run's half-published partitions recovered under it."""
    if sink.table_format == ICEBERG:
        return contextlib.nullcontext()
    lock = publish.TargetLock(
        spark, sink.location, report.run_id, config.lock_expiry_minutes, config.job_name,
        config.glue_job_run_id,
    )

    @contextlib.contextmanager
    def locked():
        with lock:
            report.lock_taken_over = lock.taken_over
            report.recovered_runs = publish.recover(spark, sink.location)
            yield

    return locked()


# --- read ---------------------------------------------------------------------------------


def read_configuration(spark: SparkSession, config: JobConfig, span: RunRange, report: RunReport,
                       progress: Progress) -> list[Snapshot]:
    """The configuration snapshots `corrected` makes its locations from (none: every lane
    is a location of its own, and the run says so); `athena` needs none."""
    if config.semantics != CORRECTED:
        return []
    if not config.configuration_path:
        progress.say(
            "no --configuration_path: every lane is a location of its own (uniqueid -unieke_id); "
            "give the traffic centre's configuration to make locations of carriageways"
        )
        report.source["configuration"] = None
        return []
    with progress.phase("reading the configuration", config.configuration_path) as reading:
        snapshots = configuration_files.read_configuration(spark, config.configuration_path, span)
        lanes = sum(len(s.lanes) for s in snapshots)
        reading.text = (f"{len(snapshots)} snapshot{'s' if len(snapshots) > 1 else ''}, "
                        f"{lanes:,} lane{'s' if lanes != 1 else ''} in all")
    report.source["configuration"] = {
        "path": config.configuration_path,
        "snapshots": [
            {"name": s.name, "valid_from": s.valid_from.isoformat() if s.valid_from else None,
             "lanes": len(s.lanes)}
            for s in snapshots
        ],
    }
    return snapshots


def read(spark: SparkSession, config: JobConfig, span: RunRange, source_root: str,
         source_format: str, report: RunReport, progress: Progress) -> sources.RawInput:
    """The run's raw files and readings (`sources`)."""
    first, after = span.folder_hours
    with progress.phase(
        "reading", f"raw files under {source_root}, processing hours "
        f"{first:%Y-%m-%d %H}:00 .. {after:%Y-%m-%d %H}:00 UTC ({source_format})"
    ) as reading:
        raw_input = sources.read_raw(
            spark, source_root, source_format, span, config.semantics,
            skip_corrupt=config.corrupt_files == "skip",
        )
        reading.text = f"read {sources.describe_files(raw_input.files)}"
    report.source.update({
        "root": source_root,
        "format": source_format,
        "processing_hours": [first.isoformat(), after.isoformat()],
        "files": len(raw_input.files),
        "readings_per_file": {f.path: f.rows for f in raw_input.files if f.rows is not None},
        "skipped": raw_input.skipped,
    })
    return raw_input


def prepare_table(spark: SparkSession, config: JobConfig, sink, report: RunReport) -> tuple[str | None, bool]:
    """The mode the table holds (refusing the other one), whether the run created the
    table, and stale quarantines dropped."""
    recorded = check_semantics(sink, config)
    # A new table records the run's mode as it is made; an old one once the run is in.
    created = sink.create_if_missing(config.semantics)
    # A run still going after its lock would have expired is not one to wait for.
    stale = _now() - dt.timedelta(minutes=config.lock_expiry_minutes)
    report.quarantines_dropped = quarantine.drop_stale(spark, sink.location, stale)
    return recorded, created


# --- compute ------------------------------------------------------------------------------


def compute(spark: SparkSession, readings: DataFrame, config: JobConfig, span: RunRange,
            snapshots: list[Snapshot]) -> pipeline.Curated:
    """The curated rows and their counters (`pipeline`) from the raw readings the run
    validates (`sources.readings_to_validate`), as a plan: nothing runs yet."""
    lane_map = configuration_files.configuration_lane_map(spark, snapshots) if snapshots else None
    return pipeline.curated_minutes(
        validation.typed_readings(readings, span.context), config.semantics, span, config.locations,
        lane_map=lane_map,
    )


# --- write --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    result: publish.PublishResult
    days: list[dt.date]  # the days replaced: those with readings
    unconfigured_lanes: tuple[int, ...]  # lanes of kept readings no snapshot holds


def write(spark: SparkSession, config: JobConfig, span: RunRange, sink, raw_input: sources.RawInput,
          readings: DataFrame, curated: pipeline.Curated, report: RunReport,
          progress: Progress) -> Written:
    """Stage the curated rows (the one pass over the data), quarantine the rejected
    `readings`, and publish the days that hold readings; nothing is published unless all
    of it succeeded."""
    rows = curated.rows
    if config.locations:
        # Only the chosen locations' rows are replaced: the others' rows of the run's
        # days go through the same write unchanged.
        published = sink.published_rows(span.days)
        if published is not None:
            rows = rows.unionByName(published.where(~F.col(S.LOCATION_ID).isin(list(config.locations))))
    days = span.days
    target, run_id = sink.location, report.run_id
    try:
        with progress.phase(
            "computing and writing",
            f"{len(days)} day{'s' if len(days) > 1 else ''}, {span.days_text} "
            f"(--semantics {config.semantics}) into {target}",
        ) as computing:
            sink.stage(rows, span.days_text, config.semantics)
            counts = curated.counters.collect(raw_input.readings_in_files)
            computing.text = f"computed and staged {counts.output_rows:,} rows"
        report.count_readings(counts)
        report.source["outside_days_skipped"] = counts.unread
        with_readings = [span.day_at(n) for n in counts.days_with_readings]
        report.output["days_left_unchanged"] = [d.isoformat() for d in days if d not in with_readings]
        rejected = report.readings["rejected_total"]
        if rejected:
            with progress.phase("quarantining", f"{rejected:,} rejected readings"):
                quarantine.write_pending(readings, F.input_file_name(), span.context, target, run_id)
        run_date = report.started_at[:10]
        if counts.output_rows == 0:
            r = report.readings
            if rejected:
                report.output["rejected_path"] = quarantine.show(spark, target, run_id, run_date)
            raise NoReadingsError(
                f"no rows to write for {span.start_date} .. {span.end_date}: "
                f"{r['read']} readings read from {len(raw_input.files)} files, "
                f"{r['kept']} kept; the table was left unchanged"
            )
        report.output["rows"] = counts.output_rows
        if config.semantics == CORRECTED:
            report.readings["unconfigured"] = {
                "readings": counts.unconfigured_readings, "lanes": len(counts.unconfigured_lanes),
            }
        committing = time.monotonic()
        with progress.phase(
            "committing", f"{len(with_readings)} day{'s' if len(with_readings) > 1 else ''} "
            f"with raw readings ({sink.table_format})"
        ) as commit:
            result = sink.publish(with_readings, span.days_text, config.semantics)
            commit.text = (
                f"committed {len(result.written)} hour partitions"
                + (f", removed {len(result.removed)}" if result.removed else "")
                + (f": snapshot {result.snapshot_id}" if result.snapshot_id else "")
            )
        report.output["publish_seconds"] = round(time.monotonic() - committing, 3)
        if rejected:
            report.output["rejected_path"] = quarantine.show(spark, target, run_id, run_date)
    except BaseException as error:
        sink.abandon()
        if not isinstance(error, NoReadingsError):  # that one's quarantine is shown already
            quarantine.discard(spark, target, run_id)
        raise
    return Written(result, with_readings, counts.unconfigured_lanes)


# --- report -------------------------------------------------------------------------------


def finish(spark: SparkSession, config: JobConfig, sink, recorded: str | None, created: bool,
           written: Written, snapshots: list[Snapshot], report: RunReport, progress: Progress) -> None:
    """After the commit: the table's mode and catalog partitions, the locations table
    (`corrected`: the locations of the configuration `snapshots` and the unconfigured
    lanes), and what the report says of the output."""
    target, result = sink.location, written.result
    if not created and recorded != config.semantics:
        sink.record_semantics(config.semantics)
    if config.target_table and sink.table_format != ICEBERG:
        catalog.register_partitions(
            spark, config.target_table, target,
            [p.partition for p in result.written], result.removed,
        )
    report.output.update(
        path=target,
        partitions=len(result.written),
        files=result.files,
        bytes=result.bytes,
        max_files_per_partition=max((p.files for p in result.written), default=0),
        partitions_removed=result.removed,
        semantics_replaced=recorded if recorded and recorded != config.semantics else None,
        snapshot_id=result.snapshot_id,
        per_partition={p.partition: {"files": p.files, "bytes": p.bytes} for p in result.written},
    )
    labels: dict[int, str] = {}
    if config.semantics == CORRECTED:
        # Right after the curated table's commit: two tables cannot commit as one
        # (docs/SEMANTICS.md, "The locations table", says what a crash in between leaves).
        store = locations.open_store(spark, run_id=report.run_id, table_format=sink.table_format,
                                     curated_location=target, curated_table=config.target_table)
        rows = locations.rows_of(snapshots, written.unconfigured_lanes)
        report.output["locations"] = locations.record(store, rows)
        labels = locations.label_of(rows)
    with progress.phase("summarising", "the locations with the most jam minutes"):
        published = sink.published_rows(written.days)
        report.top_jam_locations = [
            {**row.asDict(), "name": labels.get(row[S.LOCATION_ID])}
            for row in transforms.top_jam_locations(published, TOP_JAM_LOCATIONS).collect()
        ]


def _write_report(spark: SparkSession, target: str, report: RunReport) -> str:
    day = report.started_at[:10]
    path = f"{target.rstrip('/')}/{publish.REPORTS}/run_date={day}/{report.run_id}.json"
    report.report_path = path
    storage.write_text(spark, path, report.to_json())
    return path
