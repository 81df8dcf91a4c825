"""The daily summary job's arguments, declared once (README's table, `--help`), its
configuration, `SummaryConfig`, made from them, and the command that runs it for some
days (`refresh_command`), which the transform names when it leaves days out of date.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex

from traffic_glue.runtime import glue
from traffic_glue.runtime.arguments import Arguments, Config
from traffic_glue.runtime.config import (
    COMMON, DEFAULT_MAX_DAYS, GLUE_RUN, JOB_NAME, check_range, dates, source, target,
)

ARGUMENTS = Arguments(
    JOB_NAME,
    source("the curated table (`traffic_minutes`): its folder, or its catalog name "
           "`database.table`"),
    target("the summary table: its folder, or a catalog table `database.table` (an Iceberg "
           "table partitioned by `day`, created at `--target_path` if missing)"),
    dates("the days the transform replaced, else yesterday (UTC)",
          "UTC days to summarise, both included; in a workflow run the transform's "
          "`curated_days` run property is used when these are not given"),
    *COMMON,
    *GLUE_RUN,
)


@ARGUMENTS.config
class SummaryConfig(Config):
    """The daily summary job's configuration (glue_jobs/traffic_daily_summary.py): an
    attribute per argument, and the days to summarise once they are resolved
    (`run_properties.resolve_days`)."""

    days: tuple[dt.date, ...] | None = None

    def check(self) -> None:
        if self.start_date is not None:
            check_range(self.start_date, self.end_date, DEFAULT_MAX_DAYS)

    def with_days(self, days: list[dt.date]) -> SummaryConfig:
        return dataclasses.replace(self, days=tuple(sorted(set(days))))


# The job as README.md spells its commands: run locally, and on AWS (`tools.deploy`).
LOCAL_COMMAND = ".venv/bin/python glue_jobs/traffic_daily_summary.py --JOB_NAME local"
GLUE_COMMAND = ".venv/bin/python -m tools.deploy run-job --summary"
# Where the workflow keeps the summary: beside the curated table, `<database>.daily_summary`
# (the template's), or a folder `daily_summary` beside the curated folder (the local runner's).
SUMMARY_TABLE = "daily_summary"


def refresh_command(days: list[dt.date], *, curated_table: str | None = None, curated_path: str | None = None,
                    catalog_dir: str | None = None, glue_warehouse: str | None = None,
                    on_glue: bool = False) -> str:
    """The command that summarises `days` of the curated table (`curated_table` and/or
    `curated_path`, the transform's target) into the summary table the workflow keeps
    beside it. One range, the first day to the last: a day between them that the
    transform left unchanged is summarised again from the table as it is, which does no
    harm. On Glue: the deployed summary job."""
    first, last = min(days).isoformat(), max(days).isoformat()
    if on_glue:
        return f"{GLUE_COMMAND} --start-date {first} --end-date {last}"
    if curated_table:
        database = curated_table.rsplit(".", 1)[0]
        words = ["--source_table", curated_table, "--target_table", f"{database}.{SUMMARY_TABLE}",
                 *(["--catalog_dir", catalog_dir] if catalog_dir else []),
                 *(["--glue_warehouse", glue_warehouse] if glue_warehouse else [])]
    else:
        folder = curated_path.rstrip("/")
        beside = folder.rsplit("/", 1)[0] + "/" if "/" in folder else ""
        words = ["--source_path", curated_path, "--target_path", beside + SUMMARY_TABLE]
    words += ["--start_date", first, "--end_date", last]
    return " ".join([LOCAL_COMMAND, *(shlex.quote(word) for word in words)])


def parse_summary_args(argv: list[str]) -> SummaryConfig:
    """The summary job's `sys.argv`, read through Glue's `getResolvedOptions`;
    `ArgumentError` names a wrong argument."""
    return ARGUMENTS.parse(argv, glue.resolved_options)
