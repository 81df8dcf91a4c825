"""One run of the transform: read, compute, write, report.

Works on any SparkSession (Glue's or a local one); takes a `JobConfig` whose dates
are already resolved. `write` returns what the run did as a typed `Outcome`; the report
is built from it once (`report_outcome`), and nothing decides by reading the report.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
from dataclasses import dataclass, field, replace

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from traffic_glue.compute import pipeline, plan, quality, transforms, validation
from traffic_glue.compute import schema as S
from traffic_glue.compute.configuration import ConfigurationError, Snapshot
from traffic_glue.compute.counting import ReadingCounts
from traffic_glue.compute.modes import CORRECTED
from traffic_glue.compute.quality_rules import Ruleset
from traffic_glue.compute.run_range import RunRange
from traffic_glue.jobs import summary_args
from traffic_glue.jobs.transform_args import JobConfig
from traffic_glue.runtime import metrics
from traffic_glue.runtime.progress import Progress, spark_activity
from traffic_glue.runtime.report import SUCCEEDED, RunReport, new_run_id, now  # noqa: F401 (job.new_run_id)
from traffic_glue.runtime.run_properties import run_properties
from traffic_glue.store import (
    catalog, configuration_files, curated, locations, quarantine, rulesets, sources, storage, tables,
)

TOP_JAM_LOCATIONS = 10
# The curated columns of whole numbers: an `in_set` rule is proven from their bounds.
INTEGRAL_COLUMNS = frozenset(
    f.name for f in S.CURATED_TABLE_SCHEMA.fields
    if isinstance(f.dataType, (T.ByteType, T.ShortType, T.IntegerType, T.LongType))
)
# A run's pending quarantine older than this was left by a run that was killed: no
# job runs longer (Glue's longest job timeout is 48 hours).
STALE_QUARANTINE_AFTER = dt.timedelta(hours=49)


class NoReadingsError(RuntimeError):
    """The run found nothing to write; nothing was changed."""

    def __init__(self, message: str, outcome: "Outcome"):
        super().__init__(message)
        self.outcome = outcome


class SemanticsMismatchError(RuntimeError):
    """The table holds rows of the other `--semantics`; nothing was changed."""


class QualityError(RuntimeError):
    """A blocking data quality rule failed on the staged rows: nothing was published."""

    def __init__(self, message: str, outcome: "Outcome"):
        super().__init__(message)
        self.outcome = outcome


# Errors whose message says all a user needs: the job prints it as one line.
EXPECTED_ERRORS = (
    sources.SourceError,
    catalog.CatalogError,
    tables.TableError,
    ConfigurationError,
    NoReadingsError,
)
# Errors of the arguments given, found only once the table is known: exit status 2.
ARGUMENT_ERRORS = (SemanticsMismatchError,)
# The run's rows failed a check made before the commit: exit status 3 (frame.CHECK_FAILED).
CHECK_ERRORS = (QualityError,)


def resolve_source(spark: SparkSession, config: JobConfig) -> tuple[str, str]:
    if config.source_table:
        info = catalog.describe(spark, config.source_table)
        return info.location, info.source_format
    return config.source_path, config.source_format


def open_target(spark: SparkSession, config: JobConfig) -> tables.IcebergTable:
    """The curated table the run writes (not created yet: `prepare_table`)."""
    return curated.open_table(spark, config.target_table, config.target_path)


def check_semantics(table: tables.Table, config: JobConfig) -> str | None:
    """The mode the table holds; `SemanticsMismatchError` if it is the other one and the
    run was not told to replace it."""
    recorded = table.recorded_mode()
    if recorded and recorded != config.semantics and not config.replace_semantics:
        raise SemanticsMismatchError(
            f"the table {table.name} holds --semantics {recorded} rows and this run "
            f"computes {config.semantics}: run with --semantics {recorded}, or add "
            f"--replace_semantics true to rewrite the run's days as {config.semantics} "
            "(the other days keep their rows)"
        )
    return recorded


def run(spark: SparkSession, config: JobConfig, progress: Progress | None = None) -> RunReport:
    """Process `config`'s days; the report says what happened, also when it fails.
    `progress` hears of each phase (by default: lines on standard output)."""
    progress = progress or Progress(where=spark_activity(spark))
    report = RunReport.for_config(config)
    table = None
    outcome: Outcome | None = None

    def report_the_run() -> None:
        """The report beside the table, and the run's figures in CloudWatch (`--metrics`)."""
        if outcome is not None and outcome.published:
            # Only now is it known whether the run succeeded: that says who refreshes it.
            report.output["daily_summary_stale"] = stale_summary(
                config, outcome.days_replaced, succeeded=report.status == SUCCEEDED
            )
        if table is not None and table.location:
            report.report_path = _write_report(spark, table.location, report, config.run_range().days)
            progress.say(f"report: {report.report_path}")
        if metrics.wanted(config.metrics, on_glue=config.glue_job_run_id is not None):
            metrics.put_report(report, progress.say)

    with report.running(then=report_the_run):
        ruleset = config.quality_ruleset(spark)  # a local file was read before Spark started
        span = config.run_range()
        source_root, source_format = resolve_source(spark, config)
        table = open_target(spark, config)
        snapshots = read_configuration(spark, config, span, report, progress)
        # The driver's share of the plan (nothing runs yet) is built in a thread while
        # the main one waits on other steps: the lane map's frame while the raw files
        # are listed and their footers read; the rest while the table is prepared and
        # the run's branch made (a commit of metadata, 0.3-0.6 s of a daily run, once
        # inside the computing phase). Errors still come in the order of the steps: the
        # files', the table's, the plan's; a plan that fails drops the branch.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            lane_map = pool.submit(configuration_files.configuration_lane_map, spark, snapshots) if snapshots else None
            raw_input = read(spark, config, span, source_root, source_format, report, progress)
            readings = sources.readings_to_validate(raw_input, span)
            with planned(spark, raw_input, span, report) as work:
                planning = pool.submit(compute, readings, config, span, lane_map)
                recorded, created = prepare_table(spark, config, table, report)
                writing = curated.CuratedWrite(table, report.run_id, span.days, span.days_text, config.semantics)
                try:
                    writing.branch_off()
                    rows = planning.result()
                except BaseException:
                    writing.abandon()
                    raise
                try:
                    outcome = write(spark, config, span, writing, raw_input, readings, rows, report.run_id,
                                    report.started_at[:10], progress, ruleset, work.write_tasks)
                except (NoReadingsError, QualityError) as error:
                    report_outcome(report, config, error.outcome, snapshots)
                    raise
        report_outcome(report, config, outcome, snapshots)
        finish(spark, config, table, recorded, created, outcome, snapshots, report, progress)
    return report


@contextlib.contextmanager
def planned(spark: SparkSession, raw_input: sources.RawInput, span: RunRange, report: RunReport):
    """The run's work per task (`compute.plan`) from its readings, as the session's shuffle
    partitions while the run computes and writes (the session's own setting back after:
    a workflow's or the tests' session runs other jobs too); the report records it."""
    key = "spark.sql.shuffle.partitions"
    before = spark.conf.get(key)
    per_task = int(spark.conf.get(plan.READINGS_PER_TASK_CONF, None) or plan.READINGS_PER_TASK)
    readings = plan.estimated_readings([f.rows for f in raw_input.files], [f.size for f in raw_input.files])
    work = plan.plan_for(readings, hours=24 * len(span.days), floor=int(before), readings_per_task=per_task)
    report.source["plan"] = work.as_dict()
    with tables.session_settings(spark, {key: str(work.shuffle_partitions)}):
        yield work


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


def prepare_table(spark: SparkSession, config: JobConfig, table: tables.IcebergTable,
                  report: RunReport) -> tuple[str | None, bool]:
    """The mode the table holds (refusing the other one), whether the run created the
    table, and stale quarantines dropped."""
    recorded = check_semantics(table, config)
    # A new table records the run's mode as it is made; an old one once the run is in.
    created = table.create_if_missing(config.semantics)
    report.quarantines_dropped = quarantine.drop_stale(spark, table.location, now() - STALE_QUARANTINE_AFTER)
    return recorded, created


# --- compute ------------------------------------------------------------------------------


def compute(readings: DataFrame, config: JobConfig, span: RunRange,
            lane_map: concurrent.futures.Future[DataFrame] | None) -> pipeline.Curated:
    """The curated rows and their counters (`pipeline`) from the raw readings the run
    validates (`sources.readings_to_validate`), as a plan: nothing runs yet. `lane_map`:
    the configuration's (`configuration_files.configuration_lane_map`), once made; None:
    no configuration."""
    return pipeline.curated_minutes(
        validation.typed_readings(readings, validation.left_to_judge(readings, span.context)),
        config.semantics, span, config.locations,
        lane_map=lane_map.result() if lane_map is not None else None,
    )


# --- write --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a run wrote (or, stopped for want of rows, found): the report is made of it."""

    counts: ReadingCounts
    days: list[dt.date]  # the run's days
    days_replaced: list[dt.date]  # those with raw readings: the others are left unchanged
    published: curated.Published | None = None  # None: nothing was committed
    rejected_path: str | None = None  # where the rejected readings are shown
    unconfigured_lanes: tuple[int, ...] = field(default=())  # lanes no snapshot holds
    verdict: quality.Verdict | None = None  # the data quality rules' (None: not checked)

    @property
    def days_left_unchanged(self) -> list[dt.date]:
        return [day for day in self.days if day not in self.days_replaced]


def write(spark: SparkSession, config: JobConfig, span: RunRange, writing: curated.CuratedWrite,
          raw_input: sources.RawInput, readings: DataFrame, rows: pipeline.Curated, run_id: str,
          run_date: str, progress: Progress, ruleset: Ruleset | None = None,
          write_tasks: int | None = None) -> Outcome:
    """Stage the curated rows (the one pass over the data) by `writing`, quarantine the
    rejected `readings`, check the staged days against `ruleset` (None: no check), and
    publish the days that hold readings; nothing is published unless all of it succeeded
    and no blocking rule failed (the run's branch is dropped)."""
    table = writing.table
    days, target = span.days, table.location
    try:
        staged = rows.rows
        if config.locations:
            # Only the chosen locations' rows are replaced: the others' rows of the run's
            # days go through the same write unchanged, counted on the way.
            carried = table.read(curated.days_filter(span.days)).where(~curated.of_locations(config.locations))
            staged = staged.unionByName(rows.counters.count_carried_over(carried))
        with progress.phase(
            "computing and writing",
            f"{len(days)} day{'s' if len(days) > 1 else ''}, {span.days_text} "
            f"(--semantics {config.semantics}) into {table.name}",
        ) as computing:
            writing.stage(staged, write_tasks)
            counts = rows.counters.collect(raw_input.readings_in_files)
            computing.text = f"computed and staged {counts.output_rows:,} rows"
        with_readings = [span.day_at(n) for n in counts.days_with_readings]
        rejected = sum(counts.rejected.values())
        if rejected:
            with progress.phase("quarantining", f"{rejected:,} rejected readings"):
                quarantine.write_pending(readings, F.input_file_name(), span.context, target, run_id)
        if counts.output_rows == 0:
            shown = quarantine.show(spark, target, run_id, run_date) if rejected else None
            raise NoReadingsError(
                f"no rows to write for {span.start_date} .. {span.end_date}: "
                f"{counts.read} readings read from {len(raw_input.files)} files, "
                f"{counts.kept} kept; the table was left unchanged",
                Outcome(counts, days, with_readings, None, shown, counts.unconfigured_lanes),
            )
        verdict = check_quality(writing, config, with_readings, ruleset, progress) if ruleset else None
        if verdict is not None and verdict.blocked:
            raise QualityError(verdict.failure_line(), Outcome(
                counts, days, with_readings, None, None, counts.unconfigured_lanes, verdict))
        with progress.phase(
            "committing", f"{len(with_readings)} day{'s' if len(with_readings) > 1 else ''} with raw readings"
        ) as commit:
            published = writing.publish(with_readings)
            if counts.chosen is not None and len(with_readings) < len(days):
                # The other locations' rows of the days left unchanged went back as they
                # were (`publish`): what was carried over is those of the days replaced.
                rows_over, locations_over = writing.carried_over(with_readings, config.locations)
                counts = replace(counts, chosen=replace(
                    counts.chosen, rows_carried_over=rows_over, locations_carried_over=locations_over))
            commit.text = (
                f"committed {len(published.written)} hour partitions"
                + (f", removed {len(published.removed)}" if published.removed else "")
                + f": snapshot {published.snapshot_id}"
            )
    except BaseException as error:
        writing.abandon()
        if not isinstance(error, NoReadingsError):  # that one's quarantine is shown already
            quarantine.discard(spark, target, run_id)
        raise
    # Committed: the run's rejected readings belong to its rows now, whatever follows.
    shown = quarantine.show(spark, target, run_id, run_date) if rejected else None
    return Outcome(counts, days, with_readings, published, shown, counts.unconfigured_lanes, verdict)


def check_quality(writing: curated.CuratedWrite, config: JobConfig, days: list[dt.date], ruleset: Ruleset,
                  progress: Progress) -> quality.Verdict:
    """`ruleset`'s verdict on the staged rows of `days`, as the commit would publish them
    (the run's branch), before `main` moves (docs/QUALITY.md)."""
    with progress.phase("checking data quality",
                        f"{len(ruleset.rules)} rules of {ruleset.source} on the staged rows") as checking:
        published = writing.rows_per_day_before() if ruleset.needs_published_days else {}
        # Checks of values that the staged files' own column metrics show pass are not
        # read again: the one pass reads the keys (and the columns left in doubt).
        # Where no minute lies outside its hour partition, the keys are counted per hour
        # first (a mask of the hour's minutes per location).
        files = writing.staged_file_metrics(days)
        rules = ruleset.for_semantics(config.semantics)
        proven = quality.proven_columns(rules, [metrics for _, metrics in files], INTEGRAL_COLUMNS)
        times = [(hour, metrics.get(S.RECORD_TIMESTAMP)) for hour, metrics in files]
        by_hour = quality.times_in_their_hours(times)
        verdict = quality.evaluate(writing.staged_rows(days), ruleset, config.semantics, days, published,
                                   proven, by_hour)
        checking.text = verdict.counts_text()
    return verdict


# --- report -------------------------------------------------------------------------------


def report_outcome(report: RunReport, config: JobConfig, outcome: Outcome,
                   snapshots: list[Snapshot]) -> None:
    """The report's figures of what the run read and wrote, from its outcome (once);
    `snapshots`: the configuration it used."""
    counts = outcome.counts
    report.count_readings(counts)
    without_rows = locations_without_rows(config, counts, snapshots)
    if without_rows is not None:
        report.output["locations_without_rows"] = without_rows
    report.source["outside_days_skipped"] = counts.unread
    if config.semantics == CORRECTED:
        report.readings["unconfigured"] = {
            "readings": counts.unconfigured_readings, "lanes": len(counts.unconfigured_lanes),
        }
    report.days_replaced = list(outcome.days_replaced) if outcome.published else []
    report.record_quality(outcome.verdict, off=config.quality_rules == rulesets.OFF)
    report.output["days_left_unchanged"] = [d.isoformat() for d in outcome.days_left_unchanged]
    if outcome.rejected_path:
        report.output["rejected_path"] = outcome.rejected_path
    published = outcome.published
    if published is None:
        return
    chosen = counts.chosen
    if chosen is not None:
        report.output.update(
            locations_written=list(chosen.with_rows),
            rows_carried_over=chosen.rows_carried_over,
            locations_carried_over=chosen.locations_carried_over,
        )
    report.output.update(
        rows=counts.output_rows,
        partitions=len(published.written),
        files=published.files,
        bytes=published.bytes,
        max_files_per_partition=max((p.files for p in published.written), default=0),
        partitions_removed=published.removed,
        snapshot_id=published.snapshot_id,
        per_partition={p.partition: {"files": p.files, "bytes": p.bytes} for p in published.written},
    )


def locations_without_rows(config: JobConfig, counts: ReadingCounts,
                           snapshots: list[Snapshot]) -> int | None:
    """Of the locations the run writes (its chosen ones, else every location of the
    configuration `snapshots`), how many got no row: none of their readings in the run's
    days was kept. None where that set is not known: `athena` without `--locations`
    (its ids are a minute's largest lane), or no configuration."""
    if counts.chosen is not None:
        return len(config.locations) - len(counts.chosen.with_rows)
    if not snapshots or counts.configured_locations_with_rows is None:
        return None
    configured = {location for s in snapshots for location in s.locations}
    return len(configured) - counts.configured_locations_with_rows


def finish(spark: SparkSession, config: JobConfig, table: tables.IcebergTable, recorded: str | None,
           created: bool, outcome: Outcome, snapshots: list[Snapshot], report: RunReport,
           progress: Progress) -> None:
    """After the commit: the table's mode, the locations table (`corrected`: the
    locations of the configuration `snapshots` and the unconfigured lanes), and the top
    jam locations of the rows the run wrote (of its chosen locations, if any). The last
    two are Spark jobs of their own, independent of each other: they run side by side,
    the top jam locations on a thread of their own."""
    if not created and recorded != config.semantics:
        table.record_mode(config.semantics)
    report.output.update(
        path=table.location,
        table=table.name,
        semantics_replaced=recorded if recorded and recorded != config.semantics else None,
    )
    chosen = "chosen " if config.locations else ""
    with progress.phase("summarising", f"the {chosen}locations with the most jam minutes"), \
            concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        top = pool.submit(top_jam_rows, table, config.locations, outcome.days_replaced)
        labels: dict[int, str] = {}
        if config.semantics == CORRECTED:
            # Right after the curated table's commit: two tables cannot commit as one
            # (docs/SEMANTICS.md, "The locations table", says what a crash in between leaves).
            store = locations.open_store(spark, report.run_id, table)
            rows = locations.rows_of(snapshots, outcome.unconfigured_lanes)
            report.output["locations"] = locations.record(store, rows)
            labels = locations.label_of(rows)
        report.top_jam_locations = [
            {**row.asDict(), "name": labels.get(row[S.LOCATION_ID])} for row in top.result()
        ]


def top_jam_rows(table: tables.IcebergTable, chosen: tuple[int, ...] | None, days: list[dt.date]) -> list:
    """The `TOP_JAM_LOCATIONS` locations (of `chosen` ones, if any) with the most jam
    minutes in `table`'s rows of `days` (`transforms.top_jam_locations`)."""
    written = table.read(curated.days_filter(days), options=tables.COUNTING_READ)
    if chosen:
        written = written.where(curated.of_locations(chosen))
    return transforms.top_jam_locations(written, TOP_JAM_LOCATIONS).collect()


def stale_summary(config: JobConfig, days: list[dt.date], succeeded: bool) -> dict:
    """The days of the daily summary that a run which replaced `days` of the curated
    table left out of date, and who refreshes them: the workflow's summary job, which runs
    next after a transform of a workflow run that succeeded (`curated_days`), else the
    command it names (`summary_args.refresh_command`)."""
    next_in_workflow = succeeded and run_properties(config) is not None
    command = None if next_in_workflow else summary_args.refresh_command(
        days, curated_table=config.target_table, curated_path=config.target_path,
        catalog_dir=config.catalog_dir, glue_warehouse=config.glue_warehouse,
        on_glue=config.glue_job_run_id is not None,
    )
    return {"days": [day.isoformat() for day in days], "refreshed_next_in_workflow": next_in_workflow,
            "refresh_command": command}


def _write_report(spark: SparkSession, target: str, report: RunReport, days: list[dt.date]) -> str:
    """The report filed by the day the run ran (`_reports/run_date=`, its path), and its
    share of each day it processed filed by that day (`_reports_by_day/day=`,
    `RunReport.day_jsons`): the runs that touched a day are one folder's files."""
    root, day = target.rstrip("/"), report.started_at[:10]
    path = f"{root}/{curated.REPORTS}/run_date={day}/{report.run_id}.json"
    report.report_path = path
    storage.write_text(spark, path, report.to_json())
    # A year's run files 365: written a few at a time (one by one: 12 s locally).
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda filed: storage.write_text(
            spark, f"{root}/{curated.REPORTS_BY_DAY}/day={filed[0]}/{report.run_id}.json", filed[1]),
            report.day_jsons(days)))
    return path
