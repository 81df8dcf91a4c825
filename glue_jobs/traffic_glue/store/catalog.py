"""Tables in the catalog Spark is connected to (the raw table's location and format).

On Glue (`--enable-glue-datacatalog`) that is the Glue Data Catalog; locally it is
Spark's own Hive catalog in an embedded Derby metastore. The same SQL serves both.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession


# A crawl of a year's landing registers 8,760 partitions: batch them (one catalog call each).
PARTITIONS_PER_STATEMENT = 100
# Glue's SerDe names tell the raw table's format.
_JSON_SERDES = ("JsonSerDe", "json")


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
    source_format = "json" if any(word.lower() in serde.lower() for word in _JSON_SERDES) else "parquet"
    if not details.get("Location"):
        raise CatalogError(f"table {table} has no location")
    return TableInfo(
        table, details["Location"], source_format, details.get("Provider", "").lower()
    )
