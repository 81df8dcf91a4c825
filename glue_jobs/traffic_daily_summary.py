"""AWS Glue job: the curated minutes of some days to the daily summary table.

Runs as a Glue 5.1 job after the transform job in the workflow (a CONDITIONAL trigger
on its success), and locally on plain PySpark:

    python glue_jobs/traffic_daily_summary.py --JOB_NAME local --source_path data/curated \
        --target_path data/daily_summary --start_date 2020-04-06 --end_date 2020-04-07

In a workflow run it summarises exactly the days the transform replaced (the run
property `curated_days`). See README.md for every argument; the logic lives in
`traffic_glue.compute.summary` (the computation) and `traffic_glue.jobs.summary_job` (the run).
"""

import sys

from traffic_glue.runtime import glue
from traffic_glue.jobs import summary_job
from traffic_glue.runtime.arguments import SUMMARY_ARGUMENTS, help_text
from traffic_glue.runtime.config import ArgumentError, parse_summary_args

PROGRAM = "traffic_daily_summary"
USAGE = (
    "--JOB_NAME NAME (--source_path P | --source_table DB.T) (--target_path P | --target_table DB.T) "
    "[--start_date YYYY-MM-DD --end_date YYYY-MM-DD] [--name value ...]"
)


def main(argv: list[str]) -> int:
    if {"--help", "-h"} & set(argv[1:]):
        print(help_text(PROGRAM, USAGE, SUMMARY_ARGUMENTS))
        return 0
    try:
        config = glue.resolve_days(parse_summary_args(argv))
    except ArgumentError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    runtime = glue.start(config, argv)
    try:
        report = summary_job.run(runtime.spark, config)
    except summary_job.EXPECTED_ERRORS as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    runtime.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
