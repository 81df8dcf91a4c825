"""glue_jobs/traffic_table_maintenance.py: its arguments, as typed and as the template
passes them, and its flow around traffic_glue.jobs.maintenance.expire with the Spark side
faked (expire itself runs against real Iceberg tables in tests/test_maintenance.py)."""

import json

import pytest

import traffic_table_maintenance as script
from traffic_glue.store import catalog
from traffic_glue.runtime import glue
from traffic_glue.jobs import maintenance
from traffic_glue.runtime.config import MaintenanceConfig, parse_maintenance_args
from workflows.graph import Resolver, local_parameters
from workflows.template import load_template

from tests.workflow_helpers import WORKFLOW

TABLE = "traffic.traffic_minutes"
LOCATION = "s3://curated/curated"


def argv(*args: str) -> list[str]:
    return ["traffic_table_maintenance.py", *args]


# --- arguments ---------------------------------------------------------------------------


def test_defaults():
    args = parse_maintenance_args(argv("--JOB_NAME", "j", "--target_table", TABLE))
    assert args == MaintenanceConfig("j", TABLE, maintenance.DEFAULT_RETENTION_DAYS, None, (TABLE,))


def test_every_argument():
    args = parse_maintenance_args(argv("--JOB_NAME", "j", "--target_table", "db_1.t_2",
                                  "--retention_days", "30", "--catalog_dir", "/tmp/catalog"))
    assert args == MaintenanceConfig("j", "db_1.t_2", 30, "/tmp/catalog", ("db_1.t_2",))


@pytest.mark.parametrize("args, message", [
    (["--JOB_NAME", "j"], "--target_table"),
    (["--target_table", TABLE], "--JOB_NAME"),
    (["--JOB_NAME", "j", "--target_table", "traffic_minutes"],
     "--target_table must be database.table, got 'traffic_minutes'"),
    (["--JOB_NAME", "j", "--target_table", "traffic.traffic-minutes"], "--target_table must be database.table"),
    (["--JOB_NAME", "j", "--target_table", f"{TABLE},daily_summary"],
     "--target_table must be database.table, got 'daily_summary'"),
    (["--JOB_NAME", "j", "--target_table", TABLE, "--retention_days", "0"],
     "--retention_days must be >= 1, got 0"),
    (["--JOB_NAME", "j", "--target_table", TABLE, "--retention_days", "-3"], "--retention_days"),
    (["--JOB_NAME", "j", "--target_table", TABLE, "--retention_days", "1.5"], "--retention_days"),
    (["--JOB_NAME", "j", "--target_table", TABLE, "--retention_days", "week"], "--retention_days"),
    (["--JOB_NAME", "j", "--target_table", TABLE, "--retention_days"], "--retention_days"),
])
def test_a_bad_argument_exits_2_naming_it_before_spark_starts(args, message, monkeypatch, capsys):
    def no_spark(*_, **__):
        raise AssertionError("Spark started for a bad argument")

    monkeypatch.setattr(glue, "start_job", no_spark)
    assert script.main(argv(*args)) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith(f"{script.PROGRAM}: error: ") and err.count("\n") == 1, err


def test_the_templates_arguments_are_accepted():
    """What Glue passes the job deployed from the template: its DefaultArguments (the
    template's defaults resolved as the local runner does), Glue's own arguments, and
    --JOB_NAME."""
    template = load_template(WORKFLOW)
    resolve = Resolver(template, local_parameters(template))
    properties = template["Resources"]["TableMaintenanceJob"]["Properties"]
    arguments = resolve(properties["DefaultArguments"], "DefaultArguments")
    name = resolve(properties["Name"], "Name")
    glue_own = ["--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1", "--job-bookmark-option",
                "job-bookmark-disable", "--TempDir", "s3://temp/"]
    passed = [item for pair in arguments.items() for item in pair]
    args = parse_maintenance_args(argv(*passed, *glue_own, "--JOB_NAME", name))
    assert args == MaintenanceConfig(
        "traffic-glue-table-maintenance", TABLE, maintenance.DEFAULT_RETENTION_DAYS, None,
        (TABLE, "traffic.locations", "traffic.daily_summary"),
    )


# --- the run, Spark faked ---------------------------------------------------------------


class FakeJob:
    def __init__(self):
        self.committed = False

    def commit(self):
        self.committed = True


@pytest.fixture
def fake_run(monkeypatch):
    """start_job gives a runtime with a stand-in session; describe and expire are faked."""
    run = {"job": FakeJob(), "spark": object(), "expired": [], "provider": "iceberg", "started": []}

    def start_job(job_name, argv_, *, catalog_dir=None, uses_catalog=True):
        run["started"].append((job_name, catalog_dir, uses_catalog))
        return glue.Runtime(run["spark"], run["job"])

    def describe(spark, table):
        assert spark is run["spark"]
        if run["provider"] is None:
            raise catalog.CatalogError(f"table {table} does not exist in the catalog")
        return catalog.TableInfo(table, LOCATION, "parquet", run["provider"])

    def expire(spark, identifier, location, retention_days):
        run["expired"].append((spark, identifier, location, retention_days))
        return {"older_than": "2024-03-01 05:00:00", "branches_dropped": ["run_x"],
                "data_files_deleted": 3, "manifest_files_deleted": 2, "orphan_files_deleted": 1}

    monkeypatch.setattr(glue, "start_job", start_job)
    monkeypatch.setattr(catalog, "describe", describe)
    monkeypatch.setattr(maintenance, "expire", expire)
    return run


def test_expires_the_table_at_its_location_prints_one_json_line_and_commits(fake_run, capsys):
    code = script.main(argv("--JOB_NAME", "j", "--target_table", TABLE, "--retention_days", "3",
                            "--catalog_dir", "/tmp/c"))
    assert code == 0
    assert fake_run["started"] == [("j", "/tmp/c", True)]
    assert fake_run["expired"] == [(fake_run["spark"], TABLE, LOCATION, 3)]
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {"table": TABLE, "older_than": "2024-03-01 05:00:00",
                                "branches_dropped": ["run_x"], "data_files_deleted": 3,
                                "manifest_files_deleted": 2, "orphan_files_deleted": 1}
    assert fake_run["job"].committed


def test_several_tables_are_checked_first_then_expired_in_order(fake_run, capsys):
    tables = f"{TABLE},traffic.locations, traffic.daily_summary"
    assert script.main(argv("--JOB_NAME", "j", "--target_table", tables)) == 0
    expired = [identifier for _, identifier, _, _ in fake_run["expired"]]
    assert expired == [TABLE, "traffic.locations", "traffic.daily_summary"]
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["table"] for line in lines] == expired


def test_one_missing_table_of_several_changes_none(fake_run, monkeypatch, capsys):
    describe = catalog.describe

    def missing_summary(spark, table):
        if table == "traffic.daily_summary":
            raise catalog.CatalogError(f"table {table} does not exist in the catalog")
        return describe(spark, table)

    monkeypatch.setattr(catalog, "describe", missing_summary)
    assert script.main(argv("--JOB_NAME", "j", "--target_table", f"{TABLE},traffic.daily_summary")) == 1
    assert "table traffic.daily_summary does not exist" in capsys.readouterr().err
    assert fake_run["expired"] == [] and not fake_run["job"].committed


@pytest.mark.parametrize("provider, message", [
    ("hive", f"table {TABLE} is not an Iceberg table (provider hive)"),
    (None, f"table {TABLE} does not exist in the catalog"),
])
def test_a_missing_or_non_iceberg_table_exits_1_naming_it(fake_run, provider, message, capsys):
    fake_run["provider"] = provider
    assert script.main(argv("--JOB_NAME", "j", "--target_table", TABLE)) == 1
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert fake_run["expired"] == [] and not fake_run["job"].committed
