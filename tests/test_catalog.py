"""traffic_glue.store.catalog: the raw table's location and format, from the catalog.

The suite's session has Spark's in-memory catalog (no Hive support: a Hive-enabled session
cannot share its JVM, tests/test_local_sql.py). It holds data source tables (`USING
parquet` / `USING json`), which `describe` reads as on Glue; a Hive SerDe table (what a
Glue crawler registers) cannot be made in it, so the SerDe rows of such a table are given
to `describe` as Spark's Hive catalog prints them, through a stand-in for the session.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pyspark.sql import Row

from traffic_glue.store import catalog
from traffic_glue.store.catalog import CatalogError, TableInfo

# The test tables' names: unique to this module, dropped after each test.
PREFIX = "test_catalog_"


@pytest.fixture
def table(spark, tmp_path):
    """A function making an external data source table `default.test_catalog_<name>`."""
    made = []

    def make(name: str, provider: str) -> tuple[str, str]:
        identifier, location = f"default.{PREFIX}{name}", tmp_path / name
        spark.sql(f"CREATE TABLE {identifier} (unieke_id INT, lve_nr INT) USING {provider} "
                  f"LOCATION '{location}'")
        made.append(identifier)
        return identifier, f"file:{location}"

    yield make
    for identifier in made:
        spark.sql(f"DROP TABLE IF EXISTS {identifier}")


def test_the_suites_session_has_the_in_memory_catalog(spark):
    assert spark.conf.get("spark.sql.catalogImplementation") == "in-memory"


def test_a_parquet_table_gives_its_location_and_format(spark, table):
    name, location = table("parquet_raw", "parquet")
    assert catalog.describe(spark, name) == TableInfo(name, location, "parquet", "parquet")


def test_a_json_table_is_read_as_json_lines(spark, table):
    name, location = table("json_raw", "json")
    assert catalog.describe(spark, name) == TableInfo(name, location, "json", "json")


def test_a_json_table_declared_in_capitals_is_read_as_json_lines(spark, table):
    name, location = table("json_upper_raw", "JSON")
    assert catalog.describe(spark, name) == TableInfo(name, location, "json", "json")


def test_a_missing_table_or_database_is_a_catalog_error_naming_it(spark):
    with pytest.raises(CatalogError, match=f"^table default.{PREFIX}missing does not exist in the catalog$"):
        catalog.describe(spark, f"default.{PREFIX}missing")
    with pytest.raises(CatalogError, match=f"^table {PREFIX}no_database.raw does not exist in the catalog$"):
        catalog.describe(spark, f"{PREFIX}no_database.raw")


def test_a_view_has_no_location_and_is_a_catalog_error(spark):
    view = f"{PREFIX}view"
    spark.range(1).createOrReplaceTempView(view)
    try:
        with pytest.raises(CatalogError, match=f"^table {view} has no location$"):
            catalog.describe(spark, view)
    finally:
        spark.catalog.dropTempView(view)


def _hive_table(serde: str, input_format: str) -> SimpleNamespace:
    """A stand-in session whose one table is a Hive table of `serde`: its DESCRIBE TABLE
    EXTENDED rows as Spark 3.5's Hive catalog prints them (columns, a blank row, a
    partition section, then the details)."""
    rows = [("unieke_id", "int"), ("tijd_waarneming", "bigint"), ("year", "string"), ("", ""),
            ("# Partition Information", ""), ("# col_name", "data_type"), ("year", "string"), ("", ""),
            ("# Detailed Table Information", ""), ("Catalog", "spark_catalog"), ("Database", "traffic"),
            ("Table", "raw_measurements"), ("Type", "EXTERNAL"), ("Provider", "hive"),
            ("Location", "s3://traffic-raw/landing"), ("Serde Library", serde),
            ("InputFormat", input_format),
            ("OutputFormat", "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"),
            ("Partition Provider", "Catalog")]
    described = [Row(col_name=name, data_type=kind, comment=None) for name, kind in rows]
    return SimpleNamespace(
        catalog=SimpleNamespace(tableExists=lambda name: name == "traffic.raw_measurements"),
        sql=lambda text: SimpleNamespace(collect=lambda: described)
        if text == "DESCRIBE TABLE EXTENDED traffic.raw_measurements" else None,
    )


@pytest.mark.parametrize("serde, input_format, source_format", [
    ("org.openx.data.jsonserde.JsonSerDe", "org.apache.hadoop.mapred.TextInputFormat", "json"),
    ("org.apache.hive.hcatalog.data.JsonSerDe", "org.apache.hadoop.mapred.TextInputFormat", "json"),
    ("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
     "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat", "parquet"),
])
def test_a_crawled_hive_tables_format_is_told_by_its_serde(serde, input_format, source_format):
    session = _hive_table(serde, input_format)
    assert catalog.describe(session, "traffic.raw_measurements") == TableInfo(
        "traffic.raw_measurements", "s3://traffic-raw/landing", source_format, "hive")
