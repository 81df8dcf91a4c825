"""traffic_glue.store.iceberg: the session catalog's settings, locally and on Glue.

Pure dictionaries, written out here key by key. That the Glue jobs' `--conf` says the
same is tests/test_workflow_template.py's; that a session runs on them, test_s3.py's.
"""

from __future__ import annotations

import pytest

from traffic_glue.store import iceberg

WAREHOUSE = "s3://traffic-curated/warehouse/"
CATALOG = "spark.sql.catalog.spark_catalog"
GLUE_CONF = {
    "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    CATALOG: "org.apache.iceberg.spark.SparkSessionCatalog",
    f"{CATALOG}.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
    f"{CATALOG}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
    f"{CATALOG}.warehouse": WAREHOUSE,
    f"{CATALOG}.glue.skip-archive": "true",
}
MOTO = "http://127.0.0.1:5000"


def test_the_local_session_catalog_is_icebergs_over_the_hive_metastore_with_its_commit_lock():
    # The lock keeps two processes' commits to one table (tests/test_shared_catalog.py).
    assert iceberg.local_session_catalog_conf() == {
        CATALOG: "org.apache.iceberg.spark.SparkSessionCatalog",
        f"{CATALOG}.type": "hive",
        f"{CATALOG}.cache-enabled": "false",
        "spark.hadoop.iceberg.engine.hive.lock-enabled": "true",
    }


def test_the_glue_session_catalog_names_the_glue_catalog_s3_io_and_the_warehouse_as_given():
    assert iceberg.glue_session_catalog_conf(WAREHOUSE) == GLUE_CONF
    # The warehouse is passed on as it is: no slash added or taken away.
    assert iceberg.glue_session_catalog_conf("s3://b/w")[f"{CATALOG}.warehouse"] == "s3://b/w"


def test_each_call_gives_a_dictionary_of_its_own():
    first = iceberg.glue_session_catalog_conf(WAREHOUSE)
    first[f"{CATALOG}.warehouse"] = "changed"
    iceberg.local_session_catalog_conf()[CATALOG] = "changed"
    assert iceberg.glue_session_catalog_conf(WAREHOUSE) == GLUE_CONF
    assert iceberg.local_session_catalog_conf()[CATALOG] == "org.apache.iceberg.spark.SparkSessionCatalog"
    assert iceberg.EXTENSIONS_CONF == {"spark.sql.extensions": GLUE_CONF["spark.sql.extensions"]}


def test_outside_glue_without_region_or_endpoints_it_is_the_glue_conf():
    assert iceberg.local_glue_catalog_conf(WAREHOUSE, environ={}) == GLUE_CONF


@pytest.mark.parametrize("environ, region", [
    ({"AWS_DEFAULT_REGION": "eu-west-1"}, "eu-west-1"),  # what boto3 reads, and Iceberg's SDK not
    ({"AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-west-1"}, "eu-central-1"),
    ({"AWS_REGION": "", "AWS_DEFAULT_REGION": "eu-west-1"}, "eu-west-1"),  # set but empty
])
def test_the_region_is_aws_region_else_aws_default_region(environ, region):
    conf = iceberg.local_glue_catalog_conf(WAREHOUSE, environ=environ)
    assert conf == {**GLUE_CONF, f"{CATALOG}.client.region": region}


def test_one_endpoint_serves_s3_path_style_and_glue():
    conf = iceberg.local_glue_catalog_conf(WAREHOUSE, environ={"AWS_ENDPOINT_URL": MOTO})
    assert conf == {
        **GLUE_CONF,
        f"{CATALOG}.s3.endpoint": MOTO,
        f"{CATALOG}.s3.path-style-access": "true",
        f"{CATALOG}.glue.endpoint": MOTO,
    }


def test_a_services_own_endpoint_wins_over_the_common_one():
    environ = {"AWS_ENDPOINT_URL": MOTO, "AWS_ENDPOINT_URL_S3": "http://s3.local:9000",
               "AWS_ENDPOINT_URL_GLUE": "http://glue.local:9001", "AWS_REGION": "eu-west-1"}
    conf = iceberg.local_glue_catalog_conf(WAREHOUSE, environ=environ)
    assert conf == {
        **GLUE_CONF,
        f"{CATALOG}.client.region": "eu-west-1",
        f"{CATALOG}.s3.endpoint": "http://s3.local:9000",
        f"{CATALOG}.s3.path-style-access": "true",
        f"{CATALOG}.glue.endpoint": "http://glue.local:9001",
    }


def test_an_endpoint_for_s3_alone_leaves_glue_on_aws():
    conf = iceberg.local_glue_catalog_conf(WAREHOUSE, environ={"AWS_ENDPOINT_URL_S3": MOTO})
    assert conf == {**GLUE_CONF, f"{CATALOG}.s3.endpoint": MOTO, f"{CATALOG}.s3.path-style-access": "true"}
    conf = iceberg.local_glue_catalog_conf(WAREHOUSE, environ={"AWS_ENDPOINT_URL_GLUE": MOTO})
    assert conf == {**GLUE_CONF, f"{CATALOG}.glue.endpoint": MOTO}


def test_by_default_it_reads_the_processs_environment(monkeypatch):
    # conftest's `fake_aws` sets AWS_DEFAULT_REGION and removes AWS_REGION and AWS_ENDPOINT_URL.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_GLUE", raising=False)
    assert iceberg.local_glue_catalog_conf(WAREHOUSE) == {**GLUE_CONF, f"{CATALOG}.client.region": "eu-west-3"}
    monkeypatch.setenv("AWS_ENDPOINT_URL", MOTO)
    assert iceberg.local_glue_catalog_conf(WAREHOUSE)[f"{CATALOG}.glue.endpoint"] == MOTO
