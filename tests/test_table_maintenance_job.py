"""glue_jobs/traffic_table_maintenance.py (traffic_glue.jobs.maintenance): its
arguments, as typed and as the template passes them, --help, and its flow around
traffic_glue.jobs.maintenance with the Spark side faked (expire itself runs against real
Iceberg tables in tests/test_maintenance.py)."""

import json
from pathlib import Path

import pytest

import traffic_table_maintenance as script
from traffic_glue.jobs import maintenance
from traffic_glue.jobs.maintenance import MaintenanceConfig, parse_maintenance_args
from traffic_glue.runtime import glue
from traffic_glue.runtime.arguments import markdown_table
from traffic_glue.store import tables
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
    assert args == MaintenanceConfig("j", (TABLE,), 7, None)
    assert maintenance.DEFAULT_RETENTION_DAYS == 7


def test_every_argument():
    args = parse_maintenance_args(argv("--JOB_NAME", "j", "--target_table", "db_1.t_2, db.t3",
                                  "--retention_days", "30", "--catalog_dir", "/tmp/catalog"))
    assert args == MaintenanceConfig("j", ("db_1.t_2", "db.t3"), 30, "/tmp/catalog")


@pytest.mark.parametrize("args, message", [
    (["--JOB_NAME", "j"], "--target_table is required"),
    (["--target_table", TABLE], "--JOB_NAME is required"),
    (["--JOB_NAME", "j", "--target_table", " , "], "--target_table must be database.table, got ' , '"),
    (["--JOB_NAME", "j", "--target_table", TABLE, "--retention", "3"],
     "unknown argument --retention; did you mean --retention_days?"),
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
    assert err.startswith("traffic_table_maintenance: error: ") and err.count("\n") == 1, err


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
        "traffic-glue-table-maintenance", (TABLE, "traffic.locations", "traffic.daily_summary"), 7, None,
    )


def test_help_lists_its_arguments_and_the_readme_holds_them(capsys):
    assert script.main(argv("--help")) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: traffic_table_maintenance --JOB_NAME NAME --target_table DB.T[,DB.T...] ")
    for line in ("  --target_table  (default: required)", "  --retention_days  (default: 7)",
                 "  --catalog_dir  (default: .local/catalog)"):
        assert line in out.splitlines()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert markdown_table(maintenance.ARGUMENTS) in readme


# --- the run, Spark faked ---------------------------------------------------------------


class FakeJob:
    def __init__(self):
        self.committed = False

    def commit(self):
        self.committed = True


class FakeTable:
    def __init__(self, name):
        self.name, self.location = name, f"{LOCATION}/{name}"


@pytest.fixture
def fake_run(monkeypatch):
    """start_job gives a runtime with a stand-in session; the tables are opened and
    expired by fakes."""
    run = {"job": FakeJob(), "spark": object(), "expired": [], "missing": set(), "started": []}

    def start_job(job_name, argv_, *, catalog_dir=None, uses_catalog=True):
        run["started"].append((job_name, catalog_dir, uses_catalog))
        return glue.Runtime(run["spark"], run["job"])

    def open_tables(spark, names):
        assert spark is run["spark"]
        for name in names:
            if name in run["missing"]:
                raise tables.TableError(f"table {name} does not exist in the catalog: nothing to expire")
        return [FakeTable(name) for name in names]

    def expire(table, retention_days):
        run["expired"].append((table.name, retention_days))
        return {"older_than": "2024-03-01 05:00:00", "branches_dropped": ["run_x"],
                "data_files_deleted": 3, "manifest_files_deleted": 2, "orphan_files_deleted": 1}

    monkeypatch.setattr(glue, "start_job", start_job)
    monkeypatch.setattr(maintenance, "open_tables", open_tables)
    monkeypatch.setattr(maintenance, "expire", expire)
    return run


def test_expires_the_table_prints_one_json_line_and_commits(fake_run, capsys):
    code = script.main(argv("--JOB_NAME", "j", "--target_table", TABLE, "--retention_days", "3",
                            "--catalog_dir", "/tmp/c"))
    assert code == 0
    assert fake_run["started"] == [("j", "/tmp/c", True)]
    assert fake_run["expired"] == [(TABLE, 3)]
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {"table": TABLE, "older_than": "2024-03-01 05:00:00",
                                "branches_dropped": ["run_x"], "data_files_deleted": 3,
                                "manifest_files_deleted": 2, "orphan_files_deleted": 1}
    assert fake_run["job"].committed


def test_several_tables_are_expired_in_order(fake_run, capsys):
    tables_given = f"{TABLE},traffic.locations, traffic.daily_summary"
    assert script.main(argv("--JOB_NAME", "j", "--target_table", tables_given)) == 0
    expired = [name for name, _ in fake_run["expired"]]
    assert expired == [TABLE, "traffic.locations", "traffic.daily_summary"]
    assert [days for _, days in fake_run["expired"]] == [7, 7, 7]
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["table"] for line in lines] == expired


def test_one_missing_table_of_several_changes_none_and_exits_1(fake_run, capsys):
    fake_run["missing"].add("traffic.daily_summary")
    assert script.main(argv("--JOB_NAME", "j", "--target_table", f"{TABLE},traffic.daily_summary")) == 1
    captured = capsys.readouterr()
    assert captured.err == ("traffic_table_maintenance: error: table traffic.daily_summary does not exist "
                            "in the catalog: nothing to expire\n")
    assert captured.out == ""
    assert fake_run["expired"] == [] and not fake_run["job"].committed
