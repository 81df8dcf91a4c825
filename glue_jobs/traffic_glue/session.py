"""The local Spark session: the stand-in for Glue's on a laptop and in tests."""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import SparkSession

# Settings both runtimes share; on Glue they are set on the job's session as well.
COMMON_CONF = {
    # Every event-time partition and every timestamp parse is UTC, whatever the host.
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.compression.codec": "snappy",
    # try_cast is used where input may be junk; keep Spark's lenient casts elsewhere too.
    "spark.sql.ansi.enabled": "false",
    # The run report's counts come from DataFrame.observe on the single write pass.
    # When a stage turns out empty, this AQE rule swaps the subtree holding those
    # metrics for an empty relation and the metrics never arrive (Spark 3.5).
    "spark.sql.adaptive.optimizer.excludedRules": (
        "org.apache.spark.sql.execution.adaptive.AQEPropagateEmptyRelation"
    ),
}


# Input splits per core: Spark packs a day's few dozen hour files into about one split
# per core, of unequal sizes, and the last one runs alone; three per core even it out.
SPLITS_PER_CORE = 3
MIN_SPLITS = "spark.sql.files.minPartitionNum"


def apply_job_conf(spark: SparkSession) -> None:
    """This project's settings on a running session (Glue's, or a local one)."""
    for key, value in COMMON_CONF.items():
        spark.conf.set(key, value)
    if spark.conf.get(MIN_SPLITS, None) is None:  # a value the user set wins
        cores = spark.sparkContext.defaultParallelism
        spark.conf.set(MIN_SPLITS, str(SPLITS_PER_CORE * cores))


def local_spark_session(
    app_name: str = "traffic-glue",
    shuffle_partitions: int | None = None,
    catalog_dir: str | None = None,
    master: str | None = None,
) -> SparkSession:
    """A plain PySpark session: `local[*]`, UTC, and optionally Spark's own catalog.

    `catalog_dir` turns on the Hive catalog with an embedded Derby metastore and
    warehouse under that folder: the local stand-in for the Glue Data Catalog.
    """
    active = SparkSession.getActiveSession()
    if active is not None and catalog_dir is None:
        # A job called in-process (tests, the local workflow runner) shares the
        # caller's session as it is; only the time zone is not negotiable.
        active.conf.set("spark.sql.session.timeZone", "UTC")
        return active
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master or os.environ.get("TRAFFIC_GLUE_MASTER", "local[*]"))
        .config("spark.driver.memory", os.environ.get("TRAFFIC_GLUE_DRIVER_MEMORY", "2g"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Plenty for a local run; AQE coalesces what a small input does not need.
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions or 16))
        # Local folders list faster on the driver than a Spark job starts (about a
        # second on every run); on Glue, S3 listings keep Spark's parallel default.
        .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "100000")
    )
    if catalog_dir:
        catalog = Path(catalog_dir).resolve()
        catalog.mkdir(parents=True, exist_ok=True)
        builder = (
            builder.enableHiveSupport()
            .config("spark.sql.catalogImplementation", "hive")
            .config("spark.sql.warehouse.dir", str(catalog / "warehouse"))
            .config(
                "spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={catalog / 'metastore_db'};create=true",
            )
            .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={catalog}")
        )
    session = builder.getOrCreate()
    apply_job_conf(session)
    session.sparkContext.setLogLevel(os.environ.get("TRAFFIC_GLUE_LOG_LEVEL", "WARN"))
    return session
