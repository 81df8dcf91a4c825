"""The one place that knows about AWS Glue's runtime.

On Glue (and in the Glue docker image) the script runs under spark-submit with Glue's
JARs: it gets a `GlueContext` and a `Job` to commit. Anywhere else it gets a plain local
SparkSession. Every other module works on a SparkSession only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from traffic_glue.runtime.config import ArgumentError, JobConfig, SummaryConfig, parse_date, yesterday_utc
from traffic_glue.store import iceberg
from traffic_glue.compute.run_range import days_between
from traffic_glue.runtime.session import apply_job_conf, local_spark_session

# Spark's own catalog for local runs: an embedded Derby metastore in the project.
DEFAULT_LOCAL_CATALOG = Path(__file__).resolve().parents[3] / ".local" / "catalog"


@dataclass
class Runtime:
    spark: SparkSession
    job: object | None = None  # awsglue.job.Job on Glue

    @property
    def on_glue(self) -> bool:
        return self.job is not None

    def commit(self) -> None:
        if self.job is not None:
            self.job.commit()


# The arguments `getResolvedOptions` declares itself, besides those it is asked for.
_DECLARED_BY_GLUE = frozenset({
    "job-bookmark-option", "continuation-option", "job-bookmark-from", "job-bookmark-to",
    "JOB_ID", "JOB_RUN_ID", "encryption-type", "enable-data-lineage", "RedshiftTempDir", "TempDir",
})


def _declared_only(argv: list[str], names: set[str]) -> list[str]:
    """`argv` with only the `--name [value]` pairs of `names`, each as `--name=value`.
    `getResolvedOptions` parses with argparse, which takes an unknown option for any
    declared one it begins (Glue's `--conf` would be read as `--configuration_path`),
    and a value starting with `-` (`--locations -31,-957`) for an option."""
    kept, name = argv[:1], None
    for token in argv[1:]:
        if token.startswith("--"):
            name = token[2:].split("=", 1)[0]
            if name in names:
                kept.append(token)
            if "=" in token or name not in names:
                name = None
        elif name is not None:
            kept[-1] = f"--{name}={token}"
            name = None
    return kept


def resolved_options(argv: list[str], names: list[str]) -> dict:
    """Glue's `getResolvedOptions` (plain Python, also on PyPI) of `names`; other
    arguments are not its to see. `ArgumentError` names what it refuses."""
    from awsglue.utils import GlueArgumentError, getResolvedOptions

    try:
        return getResolvedOptions(_declared_only(argv, {*names, *_DECLARED_BY_GLUE}), names)
    except GlueArgumentError as error:
        raise ArgumentError(str(error)) from None


def _launched_by_spark_submit() -> bool:
    # spark-submit starts the JVM first and hands the Python process its gateway.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def glue_jars_present(spark_context) -> bool:
    """True on Glue and in the Glue docker image, where Glue's JVM classes exist."""
    from py4j.java_gateway import JavaClass

    return isinstance(spark_context._jvm.com.amazonaws.services.glue.GlueContext, JavaClass)


def glue_job_runtime(spark_context, job_name: str, argv: list[str]) -> Runtime:
    """GlueContext, its session with this project's settings, and an initialised Job."""
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions

    glue_context = GlueContext(spark_context)
    spark = glue_context.spark_session
    apply_job_conf(spark)
    job = Job(glue_context)
    job.init(job_name, getResolvedOptions(argv, ["JOB_NAME"]))
    return Runtime(spark, job)


def start_job(
    job_name: str,
    argv: list[str],
    *,
    catalog_dir: str | None = None,
    uses_catalog: bool = True,
    glue_warehouse: str | None = None,
    log_level: str = "WARN",
) -> Runtime:
    """Glue's session and Job where Glue's JARs are, a local session elsewhere.

    Locally, a job that names catalog tables gets Spark's Hive catalog in `catalog_dir`,
    else in `$TRAFFIC_GLUE_CATALOG_DIR`, else in `DEFAULT_LOCAL_CATALOG`; with
    `glue_warehouse` it gets the Glue Data Catalog instead, set up as on Glue.
    """
    if _launched_by_spark_submit():
        from pyspark import SparkContext

        spark_context = SparkContext.getOrCreate()
        if glue_jars_present(spark_context):
            runtime = glue_job_runtime(spark_context, job_name, argv)
            runtime.spark.sparkContext.setLogLevel(log_level)
            return runtime
    if glue_warehouse:
        return Runtime(local_spark_session(
            app_name=job_name, extra_conf=iceberg.local_glue_catalog_conf(glue_warehouse),
            log_level=log_level,
        ))
    catalog_dir = catalog_dir or os.environ.get("TRAFFIC_GLUE_CATALOG_DIR")
    return Runtime(
        local_spark_session(
            app_name=job_name,
            catalog_dir=(catalog_dir or str(DEFAULT_LOCAL_CATALOG)) if uses_catalog else None,
            log_level=log_level,
        )
    )


def start(config: JobConfig | SummaryConfig, argv: list[str]) -> Runtime:
    """`start_job` for a job's config: the catalog only when it names a table; Spark's
    logging at `--log_level` (on Glue too: its log4j settings are its own otherwise)."""
    return start_job(
        config.job_name,
        argv,
        catalog_dir=config.catalog_dir,
        uses_catalog=bool(config.source_table or config.target_table),
        glue_warehouse=config.glue_warehouse,
        log_level=config.log_level,
    )


# The run property in which the transform job names the days it replaced; the summary
# job, started after it in the same workflow run, summarises exactly those days.
CURATED_DAYS = "curated_days"


class GlueRunProperties:
    """A Glue workflow run's properties (glue:GetWorkflowRunProperties/PutWorkflowRunProperties)."""

    def __init__(self, glue_client_factory, workflow_name: str, run_id: str):
        self._client = glue_client_factory
        self.workflow_name, self.run_id = workflow_name, run_id

    def get(self) -> dict[str, str]:
        return self._client().get_workflow_run_properties(
            Name=self.workflow_name, RunId=self.run_id
        )["RunProperties"]

    def put(self, properties: dict[str, str]) -> None:
        self._client().put_workflow_run_properties(
            Name=self.workflow_name, RunId=self.run_id, RunProperties=properties
        )


class FileRunProperties:
    """The local stand-in: a JSON object in a file (`--run_properties_file`), as the local
    workflow runner keeps one per workflow run."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.run_id = self.path.stem

    def get(self) -> dict[str, str]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def put(self, properties: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({**self.get(), **properties}, indent=2, sort_keys=True))


def run_properties(config, glue_client_factory=None):
    """The properties of the workflow run a job belongs to, or None outside a workflow."""
    if config.run_properties_file:
        return FileRunProperties(config.run_properties_file)
    if config.workflow_name and config.workflow_run_id:
        if glue_client_factory is None:
            import boto3

            glue_client_factory = lambda: boto3.client("glue")  # noqa: E731
        return GlueRunProperties(glue_client_factory, config.workflow_name, config.workflow_run_id)
    return None


def workflow_run_dates(properties: dict[str, str], run_id: str) -> tuple | None:
    """`start_date`/`end_date` from a workflow run's properties, if it carries them."""
    if not properties.get("start_date") and not properties.get("end_date"):
        return None
    if not properties.get("start_date") or not properties.get("end_date"):
        raise ArgumentError(
            f"workflow run {run_id} sets only one of the run properties start_date/end_date"
        )
    return parse_date("start_date", properties["start_date"]), parse_date(
        "end_date", properties["end_date"]
    )


def resolve_dates(config: JobConfig, glue_client_factory=None, now: dt.datetime | None = None) -> JobConfig:
    """Dates given as arguments win; else the workflow run's properties; else yesterday."""
    if config.start_date is not None:
        return config
    properties = run_properties(config, glue_client_factory)
    if properties is not None:
        dates = workflow_run_dates(properties.get(), properties.run_id)
        if dates:
            return config.with_dates(*dates)
    day = yesterday_utc(now)
    return config.with_dates(day, day)


def resolve_days(config: SummaryConfig, glue_client_factory=None, now: dt.datetime | None = None) -> SummaryConfig:
    """The summary's days: the dates given; else, in a workflow run, the days the
    transform replaced (`curated_days`), else the run's `start_date`/`end_date`; else
    yesterday (UTC)."""
    if config.start_date is not None:
        return config.with_days(days_between(config.start_date, config.end_date))
    properties = run_properties(config, glue_client_factory)
    if properties is not None:
        values = properties.get()
        if values.get(CURATED_DAYS) is not None:
            days = [parse_date(CURATED_DAYS, d) for d in values[CURATED_DAYS].split(",") if d]
            return config.with_days(days)
        dates = workflow_run_dates(values, properties.run_id)
        if dates:
            return config.with_days(days_between(*dates))
    return config.with_days([yesterday_utc(now)])


def record_curated_days(config: JobConfig, days: list[dt.date], glue_client_factory=None) -> None:
    """Tell the workflow run which days the transform replaced (none: an empty list)."""
    properties = run_properties(config, glue_client_factory)
    if properties is not None:
        properties.put({CURATED_DAYS: ",".join(day.isoformat() for day in sorted(days))})
