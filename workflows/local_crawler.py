"""The local stand-in for the raw crawler: registers the partition folders that are new.

The template's crawler has an S3 target equal to the raw table's location,
`CRAWL_NEW_FOLDERS_ONLY`, `SchemaChangePolicy` LOG/LOG and partitions that inherit the
table's schema. So on Glue it only ever adds partitions of folders that appeared since
the last crawl, and never touches the table's columns. `crawl` does the same on the
catalog Spark is connected to: it lists the Hive-style folders of the table's
partition keys (`year=/month=/day=/hour=`) under the location, compares them with
`SHOW PARTITIONS` and adds the missing ones with `ALTER TABLE ... ADD IF NOT EXISTS`.
A partition added that way takes the table's columns and SerDe (Hive copies the
table's storage descriptor), which is `InheritFromTable`.

Listing goes through Hadoop's FileSystem (`traffic_glue.store.storage`), so an `s3://`
location would be crawled the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from pyspark.sql import SparkSession

from traffic_glue.store import storage
from traffic_glue.store.catalog import PARTITIONS_PER_STATEMENT

# Partition values of these types compare as numbers: folder `month=04` is partition 4.
_INTEGRAL_TYPES = ("tinyint", "smallint", "int", "bigint")


@dataclass(frozen=True)
class CrawlResult:
    added: list[str]  # partition names as the folders spell them, e.g. year=2020/month=04/day=06/hour=00
    seen: int  # partition folders with data under the location, new or not


@dataclass(frozen=True)
class PartitionFolder:
    name: str  # relative path: key=value/key=value/...
    values: tuple[str, ...]
    path: str  # qualified (file:/..., s3://...)


def partition_keys(spark: SparkSession, table: str) -> list[tuple[str, str]]:
    """(name, type) of the table's partition columns, in order."""
    return [(c.name, c.dataType) for c in spark.catalog.listColumns(table) if c.isPartition]


def partition_folders(spark: SparkSession, location: str, keys: list[str]) -> list[PartitionFolder]:
    """Folders `key1=v1/.../keyN=vN` under `location` that hold at least one data file."""
    if not keys:
        return []
    pattern = "/".join([location.rstrip("/"), *(f"{key}=*" for key in keys)])
    found = []
    for entry in storage.glob(spark, pattern):
        if not entry.is_dir:
            continue
        parts = entry.path.rstrip("/").split("/")[-len(keys):]
        values = tuple(unquote(part.partition("=")[2]) for part in parts)
        if not all(values):
            continue  # `year=` with nothing after it names no partition
        # An S3 prefix exists only while it holds objects; a local folder may be empty
        # (being written): like the crawler, wait until it has data.
        if not storage.list_files(spark, entry.path, recursive=True):
            continue
        found.append(PartitionFolder("/".join(parts), values, entry.path))
    return sorted(found, key=lambda folder: folder.name)


def _comparable(values: tuple[str, ...], types: list[str]) -> tuple:
    return tuple(
        int(value) if kind.lower() in _INTEGRAL_TYPES and value.lstrip("-").isdigit() else value
        for value, kind in zip(values, types)
    )


def _literal(value: str, kind: str) -> str:
    if kind.lower() in _INTEGRAL_TYPES and value.lstrip("-").isdigit():
        return str(int(value))
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def registered_partitions(spark: SparkSession, table: str, types: list[str]) -> set[tuple]:
    names = [row[0] for row in spark.sql(f"SHOW PARTITIONS {table}").collect()]
    return {
        _comparable(tuple(unquote(kv.partition("=")[2]) for kv in name.split("/")), types)
        for name in names
    }


def crawl(spark: SparkSession, table: str, location: str) -> CrawlResult:
    """Add the partitions of `table` whose folders under `location` it does not list yet."""
    keys = partition_keys(spark, table)
    if not keys:
        raise ValueError(f"table {table} has no partition keys: nothing for the crawler to add")
    names, types = [name for name, _ in keys], [kind for _, kind in keys]
    folders = partition_folders(spark, location, names)
    known = registered_partitions(spark, table, types)
    new = [f for f in folders if _comparable(f.values, types) not in known]
    for offset in range(0, len(new), PARTITIONS_PER_STATEMENT):
        specs = " ".join(
            "PARTITION ("
            + ", ".join(f"`{k}`={_literal(v, t)}" for k, t, v in zip(names, types, f.values))
            + f") LOCATION '{_quoted_path(f.path)}'"
            for f in new[offset : offset + PARTITIONS_PER_STATEMENT]
        )
        spark.sql(f"ALTER TABLE {table} ADD IF NOT EXISTS {specs}")
    return CrawlResult(added=[f.name for f in new], seen=len(folders))


def _quoted_path(path: str) -> str:
    return path.replace("\\", "\\\\").replace("'", "\\'")
