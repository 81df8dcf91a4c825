"""The Spark session's Iceberg catalog settings, locally and on Glue.

One catalog name resolves everywhere: Spark's own `spark_catalog`, wrapped by Iceberg's
`SparkSessionCatalog`, so `traffic.traffic_minutes` is the same name on Glue (backed by
the Glue Data Catalog through `GlueCatalog`) and locally (backed by the embedded Derby
metastore), and plain Hive tables (the raw table) still read through it.

A table given only as a folder gets a file-based catalog of its own, registered on the
session when the table is opened (`tables.path_table`).
"""

from __future__ import annotations

import os



SESSION_CATALOG = "spark_catalog"
EXTENSIONS_CONF = {
    "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
}
_SESSION_CATALOG_CLASS = "org.apache.iceberg.spark.SparkSessionCatalog"


def local_session_catalog_conf() -> dict[str, str]:
    """Iceberg's session catalog over Spark's embedded Hive metastore (Derby)."""
    return {
        f"spark.sql.catalog.{SESSION_CATALOG}": _SESSION_CATALOG_CLASS,
        f"spark.sql.catalog.{SESSION_CATALOG}.type": "hive",
        f"spark.sql.catalog.{SESSION_CATALOG}.cache-enabled": "false",
        # Iceberg's Hive commit lock, in the lock tables runtime.metastore makes: two
        # processes committing to one table must not lose a commit (without the lock,
        # two writers of 8 commits each kept 11 of 16, every commit reported done).
        "spark.hadoop.iceberg.engine.hive.lock-enabled": "true",
    }


def glue_session_catalog_conf(warehouse: str) -> dict[str, str]:
    """Iceberg's session catalog over the Glue Data Catalog, as the Glue job sets it
    (`--conf` in workflows/traffic_workflow.yaml and tools.deploy)."""
    prefix = f"spark.sql.catalog.{SESSION_CATALOG}"
    return {
        **EXTENSIONS_CONF,
        prefix: _SESSION_CATALOG_CLASS,
        f"{prefix}.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{prefix}.warehouse": warehouse,
        # Glue keeps every table version otherwise; Iceberg's own snapshots are the history.
        f"{prefix}.glue.skip-archive": "true",
    }


def local_glue_catalog_conf(warehouse: str, environ=os.environ) -> dict[str, str]:
    """`glue_session_catalog_conf` for a session outside Glue (a laptop, a test against
    moto's Glue): the region and, where set, the endpoints as boto3 takes them. The AWS
    SDK inside Iceberg reads `AWS_REGION` but not `AWS_DEFAULT_REGION`."""
    prefix = f"spark.sql.catalog.{SESSION_CATALOG}"
    conf = glue_session_catalog_conf(warehouse)
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        conf[f"{prefix}.client.region"] = region
    s3 = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    if s3:
        conf.update({f"{prefix}.s3.endpoint": s3, f"{prefix}.s3.path-style-access": "true"})
    glue = environ.get("AWS_ENDPOINT_URL_GLUE") or environ.get("AWS_ENDPOINT_URL")
    if glue:
        conf[f"{prefix}.glue.endpoint"] = glue
    return conf
