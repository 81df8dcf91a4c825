"""The one place that knows about AWS Glue's runtime.

On Glue (and in the Glue docker image) the script runs under spark-submit with Glue's
JARs: it gets a `GlueContext` and a `Job` to commit. Anywhere else it gets a plain local
SparkSession. Every other module works on a SparkSession only. The workflow run's
properties live in `run_properties`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from traffic_glue.runtime.arguments import ArgumentError
from traffic_glue.runtime.session import apply_job_conf, local_spark_session
from traffic_glue.store import iceberg

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


def start(config, argv: list[str]) -> Runtime:
    """`start_job` for a job's configuration with the common arguments
    (`runtime.config.COMMON`), a source and a target: the catalog only when it names a
    table; Spark's logging at `--log_level` (on Glue too: its log4j settings are its own
    otherwise)."""
    return start_job(
        config.job_name,
        argv,
        catalog_dir=config.catalog_dir,
        uses_catalog=bool(config.source_table or config.target_table),
        glue_warehouse=config.glue_warehouse,
        log_level=config.log_level,
    )
