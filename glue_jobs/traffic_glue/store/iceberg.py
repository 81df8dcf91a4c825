"""Where the curated Iceberg table lives: the catalog settings and the table's identity.

One catalog name resolves everywhere: Spark's own `spark_catalog`, wrapped by Iceberg's
`SparkSessionCatalog`, so `traffic.traffic_minutes` is the same name on Glue (backed by
the Glue Data Catalog through `GlueCatalog`) and locally (backed by the embedded Derby
metastore), and plain Hive tables (the raw table) still read through it.

A target given only as a path gets a file-based (`hadoop`) Iceberg catalog of its own,
registered on the running session, whose warehouse is the path's parent: the table's
`metadata/` and `data/` are then under the path itself. Such a catalog commits by
renaming a file, atomic on a local disk but not on S3, so on AWS the job writes through
the Glue catalog (`--target_table`).
"""

from __future__ import annotations

import hashlib
import os

from pyspark.sql import SparkSession

from traffic_glue.store import storage

SESSION_CATALOG = "spark_catalog"
EXTENSIONS_CONF = {
    "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
}
_SESSION_CATALOG_CLASS = "org.apache.iceberg.spark.SparkSessionCatalog"
_CATALOG_CLASS = "org.apache.iceberg.spark.SparkCatalog"
PATH_CATALOG_PREFIX = "traffic_path_"


def local_session_catalog_conf() -> dict[str, str]:
    """Iceberg's session catalog over Spark's embedded Hive metastore (Derby)."""
    return {
        f"spark.sql.catalog.{SESSION_CATALOG}": _SESSION_CATALOG_CLASS,
        f"spark.sql.catalog.{SESSION_CATALOG}.type": "hive",
        f"spark.sql.catalog.{SESSION_CATALOG}.cache-enabled": "false",
        # Iceberg's Hive commit lock needs metastore lock tables Derby does not have;
        # one process holds an embedded Derby metastore anyway.
        "spark.hadoop.iceberg.engine.hive.lock-enabled": "false",
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


def _parent_and_name(path: str) -> tuple[str, str]:
    trimmed = path.rstrip("/")
    parent, _, name = trimmed.rpartition("/")
    if not parent or not name:
        raise ValueError(f"an Iceberg table path needs a parent folder and a name: {path!r}")
    return parent, name


def path_table(spark: SparkSession, path: str) -> str:
    """The identifier of the Iceberg table at `path`, through a file-based catalog
    registered on this session for the path's parent folder."""
    parent, name = _parent_and_name(path)
    catalog = PATH_CATALOG_PREFIX + hashlib.sha1(parent.encode()).hexdigest()[:12]
    key = f"spark.sql.catalog.{catalog}"
    if spark.conf.get(key, None) is None:
        spark.conf.set(key, _CATALOG_CLASS)
        spark.conf.set(f"{key}.type", "hadoop")
        spark.conf.set(f"{key}.warehouse", parent)
        # Read the table's current version at every use: another process (a rerun, a
        # rollback) may have committed since this long-lived session last looked.
        spark.conf.set(f"{key}.cache-enabled", "false")
    return f"{catalog}.`{name}`"


def catalog_of(identifier: str) -> str:
    """The catalog that runs procedures for `identifier` (`system.rollback_to_snapshot`)."""
    first = identifier.split(".", 1)[0]
    return first if first.startswith(PATH_CATALOG_PREFIX) else SESSION_CATALOG


def table_in_catalog(identifier: str) -> str:
    """`identifier` as a procedure's `table` argument: without its catalog (a path's
    table name stays quoted: `traffic-minutes` is no identifier otherwise)."""
    first, _, rest = identifier.partition(".")
    return rest if first.startswith(PATH_CATALOG_PREFIX) else identifier


def made_by_a_catalog(spark: SparkSession, location: str) -> bool:
    """True if `location` holds an Iceberg table that a catalog made (Glue, the local
    metastore): its metadata files are `00000-<uuid>.metadata.json` and it has no
    `version-hint.text`. A path's file-based catalog cannot see such a table, and would
    start a second table in the same folder."""
    metadata = f"{location.rstrip('/')}/metadata"
    return bool(storage.glob(spark, f"{metadata}/*.metadata.json")) and not storage.exists(
        spark, f"{metadata}/version-hint.text"
    )


def create_table(
    spark: SparkSession,
    identifier: str,
    schema,
    location: str | None,
    partitioned_by: tuple[str, ...] = (),
    properties: dict[str, str] | None = None,
) -> None:
    """`CREATE TABLE IF NOT EXISTS` an Iceberg table (format version 2, snappy Parquet as
    the Parquet format writes it: Iceberg's default is zstd) of `schema`, with
    `properties` besides. A catalog's table is made at `location` (its database too, if
    missing); a path's table is where its file-based catalog puts it: at the path."""
    in_catalog = not identifier.startswith(PATH_CATALOG_PREFIX)
    if in_catalog:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {identifier.rsplit('.', 1)[0]}")
    columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in schema.fields)
    partitions = f"PARTITIONED BY ({', '.join(partitioned_by)}) " if partitioned_by else ""
    where = f"LOCATION '{location}' " if in_catalog and location else ""
    settings = {"format-version": "2", "write.parquet.compression-codec": "snappy", **(properties or {})}
    listed = ", ".join(f"'{key}'='{value}'" for key, value in settings.items())
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {identifier} ({columns}) USING iceberg "
        f"{partitions}{where}TBLPROPERTIES ({listed})"
    )
