"""The daily summary job as `frame.main` runs it (glue_jobs/traffic_daily_summary.py):
its arguments, its days (those the transform replaced, in a workflow run) and its run.
"""

from __future__ import annotations

from traffic_glue.jobs import summary_job
from traffic_glue.jobs.summary_args import ARGUMENTS
from traffic_glue.runtime.frame import JobSpec
from traffic_glue.runtime.run_properties import resolve_days

USAGE = (
    "--JOB_NAME NAME (--source_path P | --source_table DB.T) (--target_path P | --target_table DB.T) "
    "[--start_date YYYY-MM-DD --end_date YYYY-MM-DD] [--name value ...]"
)

SPEC = JobSpec(
    program="traffic_daily_summary",
    usage=USAGE,
    arguments=ARGUMENTS,
    run=lambda spark, config: summary_job.run(spark, config),
    resolve=resolve_days,
    expected_errors=summary_job.EXPECTED_ERRORS,
)
