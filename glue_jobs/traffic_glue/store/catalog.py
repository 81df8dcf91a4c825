"""Tables and partitions in the catalog Spark is connected to.

On Glue (`--enable-glue-datacatalog`) that is the Glue Data Catalog; locally it is
Spark's own Hive catalog in an embedded Derby metastore. The same SQL serves both.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession

from traffic_glue.compute import schema as S
from traffic_glue.store.publish import Partition

_HIVE_TYPES = {"int": "INT", "bigint": "BIGINT", "double": "DOUBLE", "string": "STRING"}
# Glue's SerDe names tell the raw table's format.
_JSON_SERDES = ("JsonSerDe", "json")
# A year's backfill registers 8,760 partitions: batch them (one catalog call each).
PARTITIONS_PER_STATEMENT = 100


class CatalogError(RuntimeError):
    """A table named by an argument is missing or unusable."""


@dataclass(frozen=True)
class TableInfo:
    name: str
    location: str
    source_format: str
    provider: str = ""  # "iceberg" for an Iceberg table, "hive" for a Hive one


def describe(spark: SparkSession, table: str) -> TableInfo:
    if not spark.catalog.tableExists(table):
        raise CatalogError(f"table {table} does not exist in the catalog")
    details = {
        row["col_name"].strip(): (row["data_type"] or "").strip()
        for row in spark.sql(f"DESCRIBE TABLE EXTENDED {table}").collect()
    }
    serde = " ".join(details.get(key, "") for key in ("Serde Library", "InputFormat", "Provider"))
    source_format = "json" if any(word in serde for word in _JSON_SERDES) else "parquet"
    if not details.get("Location"):
        raise CatalogError(f"table {table} has no location")
    return TableInfo(
        table, details["Location"], source_format, details.get("Provider", "").lower()
    )


def _columns(fields) -> str:
    return ", ".join(f"`{f.name}` {_HIVE_TYPES[f.dataType.simpleString()]}" for f in fields)


def create_curated_table(spark: SparkSession, table: str, location: str) -> None:
    database = table.split(".")[0]
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    spark.sql(
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {table} ({_columns(S.CURATED_SCHEMA.fields)}) "
        f"PARTITIONED BY ({_columns(S.EVENT_PARTITION_SCHEMA.fields)}) "
        f"STORED AS PARQUET LOCATION '{location}' "
        "TBLPROPERTIES ('classification'='parquet', 'parquet.compression'='SNAPPY')"
    )


def _spec(part: Partition) -> str:
    return ", ".join(f"{key}={value}" for key, value in zip(S.EVENT_PARTITIONS, part))


def _parse(name: str) -> Partition:
    return tuple(int(kv.split("=")[1]) for kv in name.split("/"))  # type: ignore[return-value]


def register_partitions(
    spark: SparkSession, table: str, location: str, written: list[str], removed: list[str]
) -> None:
    """Make the catalog list exactly the partitions the run published and removed."""
    for chunk in _chunks(written):
        specs = " ".join(
            f"PARTITION ({_spec(_parse(name))}) LOCATION '{location.rstrip('/')}/{name}'"
            for name in chunk
        )
        spark.sql(f"ALTER TABLE {table} ADD IF NOT EXISTS {specs}")
    for chunk in _chunks(removed):
        specs = ", ".join(f"PARTITION ({_spec(_parse(name))})" for name in chunk)
        spark.sql(f"ALTER TABLE {table} DROP IF EXISTS {specs}")


def _chunks(names: list[str], size: int = PARTITIONS_PER_STATEMENT):
    for offset in range(0, len(names), size):
        yield names[offset : offset + size]
