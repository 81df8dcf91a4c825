"""The daily summary job's arguments, declared once (README's table, `--help`), and its
configuration, `SummaryConfig`, made from them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

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


def parse_summary_args(argv: list[str]) -> SummaryConfig:
    """The summary job's `sys.argv`, read through Glue's `getResolvedOptions`;
    `ArgumentError` names a wrong argument."""
    return ARGUMENTS.parse(argv, glue.resolved_options)
