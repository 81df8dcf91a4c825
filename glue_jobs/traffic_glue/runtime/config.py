"""The job's arguments: parsed once, around Glue's `getResolvedOptions`, and checked.

Importing this module does not import `awsglue` (only `glue` does, when arguments are
parsed): the transforms that take its constants run where Glue's libraries are not.

Every bad value raises `ArgumentError` whose message names the argument, before any
Spark session exists.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from traffic_glue.runtime.arguments import (
    SUMMARY_ARGUMENTS, TRANSFORM_ARGUMENTS, documented_names, given_arguments, given_names,
    unknown_argument,
)
from traffic_glue.compute.run_range import RunRange
from traffic_glue.compute.modes import ATHENA, CORRECTED, SEMANTICS  # noqa: F401 (the jobs' names for them)
from traffic_glue.store.sources import JSON, PARQUET, SOURCE_FORMATS  # noqa: F401
ICEBERG = "iceberg"
TABLE_FORMATS = (ICEBERG, PARQUET)
BOOLEANS = ("true", "false")
CORRUPT_FILE_POLICIES = ("fail", "skip")
LOG_LEVELS = ("ERROR", "WARN", "INFO", "DEBUG")
# Arguments that may be given alone (`--dry_run`), meaning `true`: Glue always passes a value.
FLAGS = ("dry_run",)

# The corrected 20-minute window looks back 1140 s: less context would change values.
MIN_CORRECTED_LOOKBACK_MINUTES = 20

DEFAULTS = {
    "semantics": CORRECTED,
    "source_format": PARQUET,
    "late_hours": "24",
    "lookback_minutes": "60",
    "max_days": "400",
    "corrupt_files": "fail",
    "table_format": ICEBERG,
    "replace_semantics": "false",
    "lock_expiry_minutes": "60",
    "dry_run": "false",
    "log_level": "WARN",
}
# The job's own arguments (arguments.TRANSFORM_ARGUMENTS documents them), and the
# names Glue passes that the job reads. getResolvedOptions returns JOB_ID and JOB_RUN_ID
# by itself: asking for them too makes its parser fail on Glue, which always passes them.
OPTIONAL = (
    *(name for name in documented_names(TRANSFORM_ARGUMENTS) if name not in DEFAULTS),
    "WORKFLOW_NAME",
    "WORKFLOW_RUN_ID",
    *DEFAULTS,
)
REQUIRED = ("JOB_NAME",)
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


class ArgumentError(ValueError):
    """A job argument is missing or wrong; the message names it."""


@dataclass(frozen=True)
class JobConfig:
    job_name: str
    start_date: dt.date | None
    end_date: dt.date | None
    source_path: str | None = None
    source_table: str | None = None
    target_path: str | None = None
    target_table: str | None = None
    semantics: str = CORRECTED
    source_format: str = PARQUET
    late_hours: int = 24
    lookback_minutes: int = 60
    max_days: int = 400
    locations: tuple[int, ...] | None = None
    configuration_path: str | None = None
    corrupt_files: str = "fail"
    table_format: str = ICEBERG
    replace_semantics: bool = False
    lock_expiry_minutes: int = 60
    dry_run: bool = False
    log_level: str = "WARN"
    glue_job_run_id: str | None = None
    run_id: str | None = None
    catalog_dir: str | None = None
    glue_warehouse: str | None = None
    workflow_name: str | None = None
    workflow_run_id: str | None = None
    run_properties_file: str | None = None
    given: dict = field(default_factory=dict)  # every argument as given, Glue's too

    def with_dates(self, start: dt.date, end: dt.date) -> "JobConfig":
        checked = _check_range(start, end, self.max_days)
        values = asdict(self)
        values.update(start_date=checked[0], end_date=checked[1])
        return JobConfig(**values)

    def run_range(self) -> RunRange:
        """The run's time ranges, once its dates are resolved."""
        if self.start_date is None or self.end_date is None:
            raise ValueError("the run's dates are not resolved yet (JobConfig.with_dates)")
        return RunRange.for_days(self.start_date, self.end_date, self.lookback_minutes, self.late_hours)

    def as_report(self) -> dict:
        values = asdict(self)
        for key in ("start_date", "end_date"):
            values[key] = values[key].isoformat() if values[key] else None
        values["locations"] = list(self.locations) if self.locations else None
        return values


def _resolved(argv: list[str], required: tuple, optional: tuple, defaults: dict) -> dict:
    """`sys.argv` as Glue passes it (`--name value`), through `getResolvedOptions`,
    with the defaults of the optional arguments not given."""
    unknown = unknown_argument(argv, [*required, *optional])
    if unknown:
        raise ArgumentError(unknown)
    given = set(given_names(argv))  # `--name value` or `--name=value`
    present = [name for name in optional if name in given]
    from traffic_glue.runtime.glue import resolved_options  # the one module that imports awsglue

    args = resolved_options(argv, list(required) + present)
    return {**defaults, **{k: v for k, v in args.items() if v is not None}}


def with_flag_values(argv: list[str], flags: tuple[str, ...]) -> list[str]:
    """`argv` with `true` after each of `flags` given without a value."""
    result = []
    for index, token in enumerate(argv):
        result.append(token)
        following = argv[index + 1] if index + 1 < len(argv) else None
        if token[2:] in flags and token.startswith("--") and (following is None or following.startswith("--")):
            result.append("true")
    return result


def _table_name(values: dict, name: str) -> str | None:
    table = values.get(name)
    if table and not _TABLE_NAME.match(table):
        raise ArgumentError(f"--{name} must be database.table, got {table!r}")
    return table


def parse_job_args(argv: list[str]) -> JobConfig:
    """Parse the transform job's `sys.argv` the way Glue passes it (`--name value`)."""
    argv = with_flag_values(argv, FLAGS)
    values = _resolved(argv, REQUIRED, OPTIONAL, DEFAULTS)

    semantics = _choice(values, "semantics", SEMANTICS)
    lookback = _int(values, "lookback_minutes", minimum=0)
    if semantics == CORRECTED and lookback < MIN_CORRECTED_LOOKBACK_MINUTES:
        raise ArgumentError(
            f"--lookback_minutes must be at least {MIN_CORRECTED_LOOKBACK_MINUTES} with "
            f"--semantics corrected (its 20-minute window needs them), got {lookback}"
        )
    max_days = _int(values, "max_days", minimum=1)
    start = _date(values, "start_date")
    end = _date(values, "end_date")
    if (start is None) != (end is None):
        missing = "end_date" if end is None else "start_date"
        raise ArgumentError(f"--{missing} is required when the other date is given")
    if start is not None:
        start, end = _check_range(start, end, max_days)

    source_path, source_table = _one_of(values, "source_path", "source_table")
    target_path, target_table = values.get("target_path"), values.get("target_table")
    if not target_path and not target_table:
        raise ArgumentError("--target_path or --target_table is required")
    for name in ("source_table", "target_table"):
        _table_name(values, name)

    config = JobConfig(
        job_name=values["JOB_NAME"],
        start_date=start,
        end_date=end,
        source_path=source_path,
        source_table=source_table,
        target_path=target_path,
        target_table=target_table,
        semantics=semantics,
        source_format=_choice(values, "source_format", SOURCE_FORMATS),
        late_hours=_int(values, "late_hours", minimum=0),
        lookback_minutes=lookback,
        max_days=max_days,
        locations=_locations(values.get("locations")),
        configuration_path=values.get("configuration_path"),
        corrupt_files=_choice(values, "corrupt_files", CORRUPT_FILE_POLICIES),
        table_format=_choice(values, "table_format", TABLE_FORMATS),
        replace_semantics=_choice(values, "replace_semantics", BOOLEANS) == "true",
        lock_expiry_minutes=_int(values, "lock_expiry_minutes", minimum=1),
        dry_run=_choice(values, "dry_run", BOOLEANS) == "true",
        log_level=_log_level(values),
        glue_job_run_id=values.get("JOB_RUN_ID"),
        given=given_arguments(argv),
        run_id=values.get("run_id") or values.get("JOB_RUN_ID"),
        catalog_dir=values.get("catalog_dir"),
        glue_warehouse=values.get("glue_warehouse"),
        workflow_name=values.get("WORKFLOW_NAME"),
        workflow_run_id=values.get("WORKFLOW_RUN_ID"),
        run_properties_file=values.get("run_properties_file"),
    )
    # Checked last, once every value is known to be well formed: a local source that is
    # not there is known now, before Spark starts (sources.list_raw_files would find it
    # only after the session is up, seconds later). S3 paths are checked by the run.
    local_source = _local_path(source_path)
    if local_source is not None and not local_source.exists():
        raise ArgumentError(f"--source_path {source_path} does not exist")
    local_configuration = _local_path(config.configuration_path)
    if local_configuration is not None and not local_configuration.exists():
        raise ArgumentError(f"--configuration_path {config.configuration_path} does not exist")
    return config


SUMMARY_DEFAULTS = {"log_level": "WARN"}
SUMMARY_OPTIONAL = (
    *(name for name in documented_names(SUMMARY_ARGUMENTS) if name not in SUMMARY_DEFAULTS),
    "WORKFLOW_NAME",
    "WORKFLOW_RUN_ID",
    *SUMMARY_DEFAULTS,
)


@dataclass(frozen=True)
class SummaryConfig:
    """The daily summary job's arguments (glue_jobs/traffic_daily_summary.py)."""

    job_name: str
    start_date: dt.date | None
    end_date: dt.date | None
    source_path: str | None = None
    source_table: str | None = None
    target_path: str | None = None
    target_table: str | None = None
    days: tuple[dt.date, ...] | None = None  # exactly these, once resolved (glue.resolve_days)
    log_level: str = "WARN"
    glue_job_run_id: str | None = None
    run_id: str | None = None
    catalog_dir: str | None = None
    glue_warehouse: str | None = None
    workflow_name: str | None = None
    workflow_run_id: str | None = None
    run_properties_file: str | None = None
    given: dict = field(default_factory=dict)

    def with_days(self, days: list[dt.date]) -> "SummaryConfig":
        values = asdict(self)
        values.update(days=tuple(sorted(set(days))))
        return SummaryConfig(**values)

    def as_report(self) -> dict:
        values = asdict(self)
        for key in ("start_date", "end_date"):
            values[key] = values[key].isoformat() if values[key] else None
        values["days"] = [d.isoformat() for d in self.days] if self.days else None
        return values


def parse_summary_args(argv: list[str]) -> SummaryConfig:
    """Parse the summary job's `sys.argv`; `ArgumentError` names a wrong argument."""
    values = _resolved(argv, REQUIRED, SUMMARY_OPTIONAL, SUMMARY_DEFAULTS)
    start, end = _date(values, "start_date"), _date(values, "end_date")
    if (start is None) != (end is None):
        missing = "end_date" if end is None else "start_date"
        raise ArgumentError(f"--{missing} is required when the other date is given")
    if start is not None:
        start, end = _check_range(start, end, int(DEFAULTS["max_days"]))
    source_path, source_table = _one_of(values, "source_path", "source_table")
    target_path, target_table = values.get("target_path"), values.get("target_table")
    if not target_path and not target_table:
        raise ArgumentError("--target_path or --target_table is required")
    return SummaryConfig(
        job_name=values["JOB_NAME"],
        start_date=start,
        end_date=end,
        source_path=source_path,
        source_table=_table_name(values, "source_table"),
        target_path=target_path,
        target_table=_table_name(values, "target_table"),
        log_level=_log_level(values),
        glue_job_run_id=values.get("JOB_RUN_ID"),
        run_id=values.get("run_id") or values.get("JOB_RUN_ID"),
        catalog_dir=values.get("catalog_dir"),
        glue_warehouse=values.get("glue_warehouse"),
        workflow_name=values.get("WORKFLOW_NAME"),
        workflow_run_id=values.get("WORKFLOW_RUN_ID"),
        run_properties_file=values.get("run_properties_file"),
        given=given_arguments(argv),
    )


def _log_level(values: dict) -> str:
    return _choice({"log_level": values["log_level"].upper()}, "log_level", LOG_LEVELS)


DEFAULT_RETENTION_DAYS = 7  # of the curated table's snapshots
MAINTENANCE_DEFAULTS = {"retention_days": str(DEFAULT_RETENTION_DAYS)}


@dataclass(frozen=True)
class MaintenanceConfig:
    """The table maintenance job's arguments (glue_jobs/traffic_table_maintenance.py)."""

    job_name: str
    target_table: str  # the first of `target_tables`
    retention_days: int = DEFAULT_RETENTION_DAYS
    catalog_dir: str | None = None  # local runs only: the embedded catalog's folder
    target_tables: tuple[str, ...] = ()  # every table to expire, in order


def parse_maintenance_args(argv: list[str]) -> MaintenanceConfig:
    """Parse the maintenance job's `sys.argv`; `ArgumentError` names a wrong argument."""
    values = _resolved(
        argv, ("JOB_NAME", "target_table"), ("catalog_dir", *MAINTENANCE_DEFAULTS),
        MAINTENANCE_DEFAULTS,
    )
    # Several tables, comma-separated: the curated table and those kept beside it.
    tables = tuple(
        _table_name({"target_table": name.strip()}, "target_table")
        for name in values["target_table"].split(",") if name.strip()
    )
    if not tables:
        raise ArgumentError("--target_table must be database.table, got ''")
    return MaintenanceConfig(
        job_name=values["JOB_NAME"],
        target_table=tables[0],
        retention_days=_int(values, "retention_days", minimum=1),
        catalog_dir=values.get("catalog_dir"),
        target_tables=tables,
    )


def _local_path(path: str | None) -> Path | None:
    """The local file-system path of `path` (no scheme, or `file:`); None elsewhere."""
    if not path:
        return None
    parsed = urlparse(path)
    if parsed.scheme == "file":
        return Path(parsed.path)
    return Path(path) if not parsed.scheme else None


def yesterday_utc(now: dt.datetime | None = None) -> dt.date:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.date() - dt.timedelta(days=1)


def parse_date(name: str, text: str) -> dt.date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text or ""):
        raise ArgumentError(f"--{name} must be a date YYYY-MM-DD, got {text!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ArgumentError(f"--{name} is not a calendar date: {text!r}") from None


def _check_range(start: dt.date, end: dt.date, max_days: int) -> tuple[dt.date, dt.date]:
    if end < start:
        raise ArgumentError(f"--end_date {end} is before --start_date {start}")
    days = (end - start).days + 1
    if days > max_days:
        raise ArgumentError(
            f"--start_date/--end_date span {days} days, more than --max_days {max_days}"
        )
    return start, end


def _date(values: dict, name: str) -> dt.date | None:
    return parse_date(name, values[name]) if values.get(name) else None


def _choice(values: dict, name: str, allowed: tuple[str, ...]) -> str:
    value = values[name]
    if value not in allowed:
        raise ArgumentError(f"--{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _int(values: dict, name: str, minimum: int) -> int:
    text = values[name]
    if not re.fullmatch(r"\d+", str(text).strip()):
        raise ArgumentError(f"--{name} must be a whole number >= {minimum}, got {text!r}")
    number = int(text)
    if number < minimum:
        raise ArgumentError(f"--{name} must be >= {minimum}, got {number}")
    return number


def _one_of(values: dict, first: str, second: str) -> tuple[str | None, str | None]:
    a, b = values.get(first), values.get(second)
    if bool(a) == bool(b):
        raise ArgumentError(f"exactly one of --{first} and --{second} is required")
    return a, b


def _locations(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    parts = [part.strip() for part in text.split(",") if part.strip()]
    # A lane the configuration does not hold is location -unieke_id.
    if not parts or not all(re.fullmatch(r"-?\d+", part) for part in parts):
        raise ArgumentError(f"--locations must be comma-separated location ids, got {text!r}")
    return tuple(sorted({int(part) for part in parts}))
