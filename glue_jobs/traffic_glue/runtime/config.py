"""What the Spark jobs' configurations share: the arguments of Glue's that they read, the
arguments every one of them takes the same way, and the check of a range of days.

Each job declares its own arguments in the jobs layer (`jobs/transform_args.py`,
`jobs/summary_args.py`, ...), with these among them.
"""

from __future__ import annotations

import datetime as dt

from traffic_glue.runtime.arguments import (
    Argument, ArgumentError, Group, at_least_one, both_or_neither, choice, date, exactly_one, table_name,
)

LOG_LEVELS = ("ERROR", "WARN", "INFO", "DEBUG")
# Longer ranges are refused: a typo in a date should not start a ten-year backfill.
DEFAULT_MAX_DAYS = 400

# What Glue passes that a job reads (not listed in --help: Glue's own).
JOB_NAME = Argument("JOB_NAME", attribute="job_name", required=True)
GLUE_RUN = (
    # getResolvedOptions returns JOB_RUN_ID by itself: asking for it too fails on Glue.
    Argument("JOB_RUN_ID", attribute="glue_job_run_id", by_glue=True),
    Argument("WORKFLOW_NAME", attribute="workflow_name"),
    Argument("WORKFLOW_RUN_ID", attribute="workflow_run_id"),
)

CATALOG_DIR = Argument("catalog_dir", shown="`.local/catalog`",
                       help="local only: the local catalog's folder (Spark's Hive metastore, served to "
                            "every process on it, and warehouse)")
# Arguments every Spark job that reads and writes tables takes the same way (the last
# rows of each one's table).
COMMON = (
    Argument("log_level", choice(LOG_LEVELS, str.upper), "WARN",
             "Spark's, Hive's and Hadoop's logging: `ERROR`, `WARN`, `INFO` or `DEBUG` (the "
             "job's own progress lines are printed at every level)"),
    Argument("run_id", fallback="JOB_RUN_ID", shown="time and a random suffix",
             help="the run's id in the report, the quarantine and the table's history (on Glue: "
                  "the job run's id)"),
    CATALOG_DIR,
    Argument("glue_warehouse",
             help="local only: use the Glue Data Catalog for `--target_table` as the Glue job does "
                  "(GlueCatalog, S3FileIO), warehouse `s3://...`; the AWS endpoints, region and "
                  "keys as boto3 takes them"),
    Argument("run_properties_file",
             help="local only: a JSON file standing in for the Glue workflow run's properties "
                  "(the local workflow runner passes it)"),
)


def source(help: str) -> Group:
    """`--source_path` or `--source_table`, exactly one."""
    return Group((Argument("source_path"), Argument("source_table", table_name)), exactly_one,
                 "one is required", help)


def target(help: str) -> Group:
    """`--target_path`, `--target_table` or both (the table is created at the path)."""
    return Group((Argument("target_path"), Argument("target_table", table_name)), at_least_one,
                 "one is required", help)


def dates(shown: str, help: str) -> Group:
    """`--start_date` and `--end_date`, both or neither."""
    return Group((Argument("start_date", date), Argument("end_date", date)), both_or_neither,
                 shown, help, noun="date")


def check_range(start: dt.date, end: dt.date, max_days: int) -> tuple[dt.date, dt.date]:
    """`start` .. `end`, both included: in order, and at most `max_days` days."""
    if end < start:
        raise ArgumentError(f"--end_date {end} is before --start_date {start}")
    days = (end - start).days + 1
    if days > max_days:
        raise ArgumentError(
            f"--start_date/--end_date span {days} days, more than --max_days {max_days}"
        )
    return start, end
DEFAULT_RETENTION_DAYS = 7
