"""AWS Glue job: raw traffic readings to the curated per-location minute table.

Runs unchanged as a Glue 5.1 job and locally on plain PySpark:

    python glue_jobs/traffic_transform.py --JOB_NAME local --source_path data/raw \
        --target_path data/curated --start_date 2020-04-07 --end_date 2020-04-07

See README.md for every argument. All logic lives in the `traffic_glue` package.
"""

import sys

from traffic_glue.runtime import glue
from traffic_glue.jobs import dry_run, job
from traffic_glue.runtime.arguments import TRANSFORM_ARGUMENTS, help_text
from traffic_glue.runtime.config import ArgumentError, parse_job_args

PROGRAM = "traffic_transform"


USAGE = (
    "--JOB_NAME NAME (--source_path P | --source_table DB.T) (--target_path P | --target_table DB.T) "
    "[--start_date YYYY-MM-DD --end_date YYYY-MM-DD] [--name value ...]"
)


def main(argv: list[str]) -> int:
    if {"--help", "-h"} & set(argv[1:]):
        print(help_text(PROGRAM, USAGE, TRANSFORM_ARGUMENTS))
        return 0
    try:
        config = glue.resolve_dates(parse_job_args(argv))
    except ArgumentError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    runtime = glue.start(config, argv)
    try:
        if config.dry_run:
            plan = dry_run.plan(runtime.spark, config)
            print(plan.text())
            return 1 if plan.refusal else 0
        report = job.run(runtime.spark, config)
    except job.ARGUMENT_ERRORS as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    except job.EXPECTED_ERRORS as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    # The summary job that follows in the workflow summarises exactly these days.
    unchanged = set(report.output.get("days_left_unchanged") or ())
    glue.record_curated_days(config, [
        day for day in config.run_range().days if day.isoformat() not in unchanged
    ])
    runtime.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
