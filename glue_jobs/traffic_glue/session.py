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
    )
    for key, value in COMMON_CONF.items():
        builder = builder.config(key, value)
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
    session.sparkContext.setLogLevel(os.environ.get("TRAFFIC_GLUE_LOG_LEVEL", "WARN"))
    return session
