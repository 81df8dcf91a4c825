"""The transform job's arguments, declared once (README's first table, `--help`), and its
configuration, `JobConfig`, made from them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from urllib.parse import urlparse

from traffic_glue.compute.modes import CORRECTED, SEMANTICS
from traffic_glue.compute.run_range import RunRange
from traffic_glue.runtime import glue, metrics
from traffic_glue.runtime.arguments import Argument, ArgumentError, Arguments, Config, boolean, choice, whole
from traffic_glue.runtime.config import (
    COMMON, DEFAULT_MAX_DAYS, GLUE_RUN, JOB_NAME, check_range, dates, source, target,
)
from traffic_glue.compute.quality_rules import Ruleset, RulesetError
from traffic_glue.store import rulesets
from traffic_glue.store.sources import PARQUET, SOURCE_FORMATS

CORRUPT_FILE_POLICIES = ("fail", "skip")
# The corrected 20-minute window looks back 1140 s: less context would change values.
MIN_CORRECTED_LOOKBACK_MINUTES = 20


def location_ids(name: str, value: str) -> tuple[int, ...] | None:
    """Comma-separated location ids; a lane the configuration does not hold is
    location -unieke_id."""
    if not value:
        return None
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts or not all(re.fullmatch(r"-?\d+", part) for part in parts):
        raise ArgumentError(f"--{name} must be comma-separated location ids, got {value!r}")
    return tuple(sorted({int(part) for part in parts}))


ARGUMENTS = Arguments(
    JOB_NAME,
    source("raw landing root (`year=/month=/day=/hour=` of arrival time), or a catalog table "
           "`database.table` whose location is read"),
    target("the curated table's folder, or a catalog table `database.table` (created at "
           "`--target_path` if missing)"),
    Argument("replace_semantics", boolean, False,
             "`true` lets a run of one `--semantics` rewrite its days in a table that holds "
             "the other mode's rows"),
    dates("yesterday (UTC)",
          "event-time days, both included; on Glue a workflow run's `start_date`/`end_date` "
          "run properties are used when present"),
    Argument("semantics", choice(SEMANTICS), CORRECTED, "`corrected` or `athena`"),
    Argument("source_format", choice(SOURCE_FORMATS), PARQUET,
             "`parquet`, or `json` (JSON lines as the stream carries them: values may be "
             "strings, times epoch or ISO-8601)"),
    Argument("late_hours", whole(minimum=0), 24,
             "readings arriving up to this many hours after `end_date` are included"),
    Argument("lookback_minutes", whole(minimum=0), 60,
             "context read before `start_date` for the windows (`corrected` needs at least 20)"),
    Argument("configuration_path",
             help="the traffic centre's configuration (`mivconfig`): one `.xml` or `.xml.gz` file, "
                  "in force for every reading, or a folder of dated snapshots "
                  "(`miv-config-YYYY-MM-DD[THHMMSSZ].xml.gz`), each in force from its time; "
                  "`corrected` makes its locations from it (without it every lane is a location "
                  "of its own)"),
    Argument("locations", location_ids, shown="all",
             help="only these location ids (`uniqueid`) are written"),
    Argument("max_days", whole(minimum=1), DEFAULT_MAX_DAYS,
             "refuse longer ranges (a typo in a date should not start a ten-year backfill)"),
    Argument("corrupt_files", choice(CORRUPT_FILE_POLICIES), "fail",
             "`skip` leaves unreadable raw files out and lists them in the report"),
    Argument("quality_rules", shown="the shipped ruleset",
             help="the data quality rules the run's days must meet before it commits "
                  "(`docs/QUALITY.md`): a JSON ruleset file, local or `s3://`; by "
                  f"default `{rulesets.SHIPPED_NAME}`, which the package carries; `off` checks none. "
                  "A blocking rule that fails stops the run with exit status 3, publishing nothing"),
    Argument("dry_run", boolean, False,
             "`true` (or `--dry_run` alone): say what the run would read, replace, leave and "
             "remove, and in which table, then stop; writes nothing and runs no Spark job",
             flag=True),
    Argument("metrics", choice(metrics.MODES), metrics.AUTO,
             "the run's figures as CloudWatch metrics (namespace `TrafficGlue`, dimension "
             "`JobName`) when it ends: `auto` on Glue only, `on` also locally (the AWS "
             "endpoint, region and keys as boto3 takes them: `AWS_ENDPOINT_URL`, ...), `off` never"),
    *COMMON,
    *GLUE_RUN,
)


@ARGUMENTS.config
class JobConfig(Config):
    """The transform job's configuration (glue_jobs/traffic_transform.py): an attribute
    per argument; its dates are resolved before the run (`run_properties.resolve_dates`)."""

    def check(self) -> None:
        if self.semantics == CORRECTED and self.lookback_minutes < MIN_CORRECTED_LOOKBACK_MINUTES:
            raise ArgumentError(
                f"--lookback_minutes must be at least {MIN_CORRECTED_LOOKBACK_MINUTES} with "
                f"--semantics corrected (its 20-minute window needs them), got {self.lookback_minutes}"
            )
        if self.start_date is not None:
            check_range(self.start_date, self.end_date, self.max_days)
        # Last, once every value is known to be well formed: a local source that is not
        # there is known now, before Spark starts (sources.list_raw_files would find it
        # only after the session is up, seconds later). S3 paths are checked by the run.
        for name in ("source_path", "configuration_path"):
            path = getattr(self, name)
            local = _local_path(path)
            if local is not None and not local.exists():
                raise ArgumentError(f"--{name} {path} does not exist")
        if rulesets.is_local(self.quality_rules):
            self.quality_ruleset()  # a bad file is refused now (one on S3: by the run)

    def quality_ruleset(self, spark=None) -> Ruleset | None:
        """The rules `--quality_rules` names (None: `off`); `ArgumentError` names the file
        and the rule and field that cannot be used. One on S3 needs the run's `spark`."""
        try:
            return rulesets.read(self.quality_rules, spark)
        except RulesetError as error:
            raise ArgumentError(f"--quality_rules {error}") from None

    def with_dates(self, start: dt.date, end: dt.date) -> JobConfig:
        check_range(start, end, self.max_days)
        return dataclasses.replace(self, start_date=start, end_date=end)

    def run_range(self) -> RunRange:
        """The run's time ranges, once its dates are resolved."""
        if self.start_date is None or self.end_date is None:
            raise ValueError("the run's dates are not resolved yet (JobConfig.with_dates)")
        return RunRange.for_days(self.start_date, self.end_date, self.lookback_minutes, self.late_hours)


def parse_job_args(argv: list[str]) -> JobConfig:
    """The transform job's `sys.argv` as Glue passes it (`--name value`), read through
    Glue's `getResolvedOptions`; `ArgumentError` names a wrong argument."""
    return ARGUMENTS.parse(argv, glue.resolved_options)


def _local_path(path: str | None) -> Path | None:
    """The local file-system path of `path` (no scheme, or `file:`); None elsewhere."""
    if not path:
        return None
    parsed = urlparse(path)
    if parsed.scheme == "file":
        return Path(parsed.path)
    return Path(path) if not parsed.scheme else None
