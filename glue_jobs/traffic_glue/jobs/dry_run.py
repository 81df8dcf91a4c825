"""`--dry_run`: what a run would read, replace, leave and remove, found without running it.

Everything comes from listings and metadata, read on the driver: the processing-hour
folders and their files, the Parquet footers (reading counts, and the range of
`tijd_waarneming` from each row group's statistics), the table's current snapshot or
folders. No Spark job runs and nothing is written: no report, no quarantine, no table.

What is known exactly and what is an estimate:
- a run day whose readings could be in no folder that has readings is left unchanged
  (exact: the run would find no reading of it);
- the other run days are replaced, unless every reading of theirs is rejected;
- the hours of a replaced day that the run would write are those that a file's time
  range overlaps (an upper bound: a range says where readings may be, not that they
  are), and a published hour outside every range is removed (exact, for a Parquet
  landing with an integer time column; with JSON lines or text times the hours are not known
  without reading the files, and none is named as removed).
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from traffic_glue.compute import schema as S
from traffic_glue.compute.modes import CORRECTED
from traffic_glue.compute.run_range import RunRange
from traffic_glue.compute.validation import MAX_EPOCH_SECONDS, MIN_EPOCH_SECONDS
from traffic_glue.jobs import job
from traffic_glue.jobs.transform_args import JobConfig
from traffic_glue.store import configuration_files, curated, locations, sources
from traffic_glue.store.sources import PARQUET

SECONDS_PER_HOUR = 3600
FOLDERS_SHOWN = 12  # the folder list beyond this is summarised


@dataclass(frozen=True)
class DayPlan:
    day: dt.date
    replaced: bool
    hours_written: tuple[int, ...] | None  # None: not known without reading the files
    published_hours: tuple[int, ...]
    removed_hours: tuple[int, ...]


@dataclass
class RunPlan:
    config: JobConfig
    source_root: str
    source_format: str
    processing_hours: tuple[dt.datetime, dt.datetime]
    files: list[sources.RawFile]
    table: str
    table_exists: bool
    snapshot: str | None = None
    recorded_semantics: str | None = None
    refusal: str | None = None  # why the run would stop before writing
    days: list[DayPlan] = field(default_factory=list)
    other_partitions: str = ""
    locations_table: str = ""
    configuration: list[str] = field(default_factory=list)  # corrected: the snapshots, as text

    def text(self) -> str:
        c = self.config
        first, after = self.processing_hours
        lines = [
            "dry run: nothing is read beyond listings and footers, nothing is written",
            f"  days {c.start_date} .. {c.end_date} (UTC), --semantics {c.semantics}",
            f"  source: {self.source_root} ({self.source_format}), processing hours "
            f"{first:%Y-%m-%d %H}:00 .. {after:%Y-%m-%d %H}:00 UTC",
            f"    {sources.describe_files(self.files)}",
        ]
        lines += _folder_lines(self.files)
        if c.semantics == CORRECTED:
            if not c.configuration_path:
                lines.append("  configuration: none given: every lane would be a location of its own")
            else:
                lines.append(f"  configuration: {c.configuration_path}")
                lines += [f"    {snapshot}" for snapshot in self.configuration]
        state = "exists" if self.table_exists else "does not exist yet" + (
            "" if self.refusal else ": the run creates it"
        )
        lines.append(f"  table: {self.table} (iceberg), {state}")
        if self.snapshot:
            lines.append(f"    current snapshot {self.snapshot}")
        if self.recorded_semantics:
            lines.append(f"    holds --semantics {self.recorded_semantics} rows")
        if self.refusal:
            lines.append(f"  the run would stop here: {self.refusal}")
            return "\n".join(lines)
        if c.locations:
            lines.append(
                "  only the rows of locations " + ", ".join(map(str, c.locations))
                + " are replaced; other locations' rows of these hours stay as they are"
            )
        lines.append("  event-time partitions (UTC hours) of the run's days:")
        for plan in self.days:
            lines.append(_day_line(plan))
        lines.append(f"  every other partition is left unchanged{self.other_partitions}")
        if c.semantics == CORRECTED:
            lines.append(f"  locations table: {self.locations_table} (the configuration's locations are recorded)")
        else:
            lines.append("  locations table: not touched (--semantics athena names no location)")
        return "\n".join(lines)


def _snapshot_line(snapshot, span: RunRange, first: bool) -> str:
    """`miv-config-...xml.gz: 4,254 lanes, in force from ...` (docs/SEMANTICS.md, "The
    configuration": the earliest snapshot also covers older readings)."""
    text = f"{snapshot.name}: {len(snapshot.lanes):,} lanes, "
    if snapshot.valid_from is None:
        return text + "in force for every reading"
    text += f"dated {snapshot.valid_from:%Y-%m-%d %H:%M:%S} UTC"
    if first and snapshot.valid_from.timestamp() > span.context_start:
        text += ": the earliest snapshot, so in force for the run's older readings too"
    return text


def _hours_text(hours: tuple[int, ...]) -> str:
    """`hours 0-5, 7, 9-23`, `hour 7`."""
    spans, start = [], None
    for index, hour in enumerate(hours):
        start = hour if start is None else start
        if index + 1 == len(hours) or hours[index + 1] != hour + 1:
            spans.append(f"{start}" if start == hour else f"{start}-{hour}")
            start = None
    return ("hour " if len(hours) == 1 else "hours ") + (", ".join(spans) or "none")


def _day_line(plan: DayPlan) -> str:
    published = f"{len(plan.published_hours)} published"
    if not plan.replaced:
        return f"    {plan.day}: left unchanged, no raw readings ({published})"
    written = (
        "hours as the readings give them" if plan.hours_written is None
        else f"{_hours_text(plan.hours_written)} written"
    )
    line = f"    {plan.day}: replaced, {written} ({published})"
    if plan.removed_hours:
        line += f"; removed: {_hours_text(plan.removed_hours)}"
    return line


def _folder_lines(files: list[sources.RawFile]) -> list[str]:
    folders: dict[str, list[sources.RawFile]] = {}
    for raw_file in files:
        folders.setdefault(raw_file.path.rsplit("/", 1)[0], []).append(raw_file)
    lines = []
    for index, (folder, inside) in enumerate(sorted(folders.items())):
        if index == FOLDERS_SHOWN and len(folders) > FOLDERS_SHOWN + 1:
            lines.append(f"    ... {len(folders) - FOLDERS_SHOWN - 1} more folders ...")
            continue
        if FOLDERS_SHOWN < index < len(folders) - 1:
            continue
        counts = [f.rows for f in inside]
        readings = f", {sum(counts):>10,} readings" if None not in counts else ""
        name = "/".join(folder.rsplit("/", 4)[-4:])
        lines.append(f"    {name}  {len(inside):>4} files{readings}")
    return lines


def observed_range(spark: SparkSession, raw_file: sources.RawFile) -> tuple[int, int] | None:
    """The lowest and highest `tijd_waarneming` of a Parquet file, from its row groups'
    statistics; None where the column is not an integer or has no statistics."""
    reader = sources.open_parquet(spark, raw_file)
    low = high = None
    try:
        for block in reader.getFooter().getBlocks():
            for column in block.getColumns():
                if column.getPath().toDotString() != S.OBSERVED_AT:
                    continue
                if column.getPrimitiveType().getPrimitiveTypeName().name() not in ("INT64", "INT32"):
                    return None
                stats = column.getStatistics()
                if stats is None or stats.isEmpty():
                    return None
                if not stats.hasNonNullValue():
                    continue
                lo, hi = int(stats.genericGetMin()), int(stats.genericGetMax())
                low = lo if low is None else min(low, lo)
                high = hi if high is None else max(high, hi)
    finally:
        reader.close()
    if low is None:
        return None
    return max(low, MIN_EPOCH_SECONDS), min(high, MAX_EPOCH_SECONDS - 1)


def _hours_with_readings(spark, files, source_format: str, span: RunRange) -> set[int] | None:
    """Epoch hours of the run's days that some file may hold readings of; None if unknown."""
    if source_format != PARQUET:
        return None
    with ThreadPoolExecutor(max_workers=sources.METADATA_THREADS) as pool:
        ranges = list(pool.map(lambda f: observed_range(spark, f) if f.rows else (0, -1), files))
    if any(r is None for r in ranges):
        return None
    hours = set()
    for low, high in ranges:
        low, high = max(low, span.output_start), min(high, span.output_end - 1)
        hours.update(range(low // SECONDS_PER_HOUR, high // SECONDS_PER_HOUR + 1) if low <= high else ())
    return hours


def _epoch_hour(day: dt.date, hour: int) -> int:
    moment = dt.datetime.combine(day, dt.time(hour), tzinfo=dt.timezone.utc)
    return int(moment.timestamp()) // SECONDS_PER_HOUR


def _could_hold(day: dt.date, folders: set[dt.datetime], late_hours: int) -> bool:
    """A day's readings arrive from its first hour until `late_hours` after it ends."""
    first = dt.datetime.combine(day, dt.time())
    after = first + dt.timedelta(days=1, hours=late_hours)
    return any(first <= hour < after for hour in folders)


def plan(spark: SparkSession, config: JobConfig) -> RunPlan:
    """What the run of `config` would do; nothing is changed."""
    source_root, source_format = job.resolve_source(spark, config)
    table = job.open_target(spark, config)
    span = config.run_range()
    files = sources.list_raw_files(spark, source_root, *span.folder_hours)
    if source_format == PARQUET:
        files = sources.inspect_parquet(
            spark, files, config.semantics, config.corrupt_files == "skip"
        ).files
    days = span.days
    exists = table.exists()
    result = RunPlan(
        config, source_root, source_format, span.folder_hours, files,
        table=f"{table.name} at {table.location}" if table.in_catalog else table.name,
        table_exists=exists,
    )
    try:
        result.recorded_semantics = job.check_semantics(table, config) if exists else None
    except job.SemanticsMismatchError as error:
        result.refusal = str(error)
        return result
    result.locations_table = locations.open_store(spark, "dry_run", table).name
    if config.semantics == CORRECTED and config.configuration_path:
        result.configuration = [
            _snapshot_line(snapshot, span, first=index == 0) for index, snapshot in
            enumerate(configuration_files.read_configuration(spark, config.configuration_path, span))
        ]
    published: dict = {}
    if exists:
        published, snapshot, summary = curated.published_hours(table, days)
        if snapshot is not None:
            result.snapshot = str(snapshot)
            result.other_partitions = (
                f" (the table holds {int(summary.get('total-records', 0)):,} rows in "
                f"{int(summary.get('total-data-files', 0)):,} files)"
            )
    folders = {sources.folder_hour(f.path) for f in files if f.rows != 0} - {None}
    with_readings = _hours_with_readings(spark, files, source_format, span)
    for day in days:
        on_day = tuple(sorted(published.get(day, ())))
        hours = None if with_readings is None else tuple(
            h for h in range(24) if _epoch_hour(day, h) in with_readings
        )
        if not _could_hold(day, folders, config.late_hours) or hours == ():
            result.days.append(DayPlan(day, False, None, on_day, ()))
            continue
        # With --locations, an hour stays while another location has rows in it.
        removed = () if hours is None or config.locations else tuple(h for h in on_day if h not in hours)
        result.days.append(DayPlan(day, True, hours, on_day, removed))
    return result
