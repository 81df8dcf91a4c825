"""The transform job as `frame.main` runs it (glue_jobs/traffic_transform.py): its
arguments, its days from the workflow run, the run or its dry run, and the days it
replaced told to the workflow run for the summary job that follows.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession

from traffic_glue.jobs import dry_run, job
from traffic_glue.jobs.transform_args import ARGUMENTS, JobConfig
from traffic_glue.runtime.frame import JobSpec, Outcome
from traffic_glue.runtime.run_properties import record_curated_days, resolve_dates
from traffic_glue.runtime.report import RunReport

USAGE = (
    "--JOB_NAME NAME (--source_path P | --source_table DB.T) (--target_path P | --target_table DB.T) "
    "[--start_date YYYY-MM-DD --end_date YYYY-MM-DD] [--name value ...]"
)


@dataclass(frozen=True)
class DryRun:
    """`--dry_run`'s outcome: the plan printed; exit status 1 when the run would stop."""

    plan: dry_run.RunPlan
    error_log = False

    @property
    def exit_status(self) -> int:
        return 1 if self.plan.refusal else 0

    def summary(self) -> str:
        return self.plan.text()


def run(spark: SparkSession, config: JobConfig) -> RunReport | DryRun:
    if config.dry_run:
        return DryRun(dry_run.plan(spark, config))
    return job.run(spark, config)


def tell_the_workflow_run(config: JobConfig, outcome: Outcome) -> None:
    """The summary job that follows in the workflow summarises exactly these days."""
    if isinstance(outcome, RunReport):
        record_curated_days(config, outcome.days_replaced)


SPEC = JobSpec(
    program="traffic_transform",
    usage=USAGE,
    arguments=ARGUMENTS,
    run=run,
    resolve=resolve_dates,
    expected_errors=job.EXPECTED_ERRORS,
    argument_errors=job.ARGUMENT_ERRORS,
    check_errors=job.CHECK_ERRORS,
    after_success=tell_the_workflow_run,
)
