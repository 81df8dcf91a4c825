"""Job arguments: defaults, every bad value named, and where the days come from."""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from traffic_glue.runtime.config import ArgumentError, parse_job_args
from traffic_glue.runtime.glue import resolve_dates

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "glue_jobs" / "traffic_transform.py"
# A source folder that exists: a local one that does not is refused before Spark starts.
BASE = ["script.py", "--JOB_NAME", "t", "--source_path", str(ROOT / "tests"), "--target_path", "out"]
DAYS = ["--start_date", "2020-04-07", "--end_date", "2020-04-08"]


def test_defaults():
    config = parse_job_args(BASE + DAYS)
    assert (config.semantics, config.source_format, config.late_hours, config.lookback_minutes) == (
        "corrected", "parquet", 24, 60)
    assert (config.start_date, config.end_date) == (dt.date(2020, 4, 7), dt.date(2020, 4, 8))
    assert config.locations is None and config.corrupt_files == "fail"


def test_every_option():
    config = parse_job_args(BASE + DAYS + [
        "--semantics", "athena", "--source_format", "json", "--late_hours", "6",
        "--lookback_minutes", "10", "--locations", "3159, 957,957", "--corrupt_files", "skip",
        # Glue's own arguments pass through untouched.
        "--TempDir", "s3://tmp/", "--enable-metrics", "true",
    ])
    assert (config.semantics, config.source_format, config.late_hours) == ("athena", "json", 6)
    assert config.lookback_minutes == 10 and config.locations == (957, 3159)
    assert config.corrupt_files == "skip"


def test_catalog_tables_in_place_of_paths():
    config = parse_job_args(["s", "--JOB_NAME", "t", "--source_table", "traffic.raw_measurements",
                             "--target_table", "traffic.traffic_minutes"] + DAYS)
    assert (config.source_table, config.target_table, config.source_path) == (
        "traffic.raw_measurements", "traffic.traffic_minutes", None)


@pytest.mark.parametrize("extra, named", [
    (["--semantics", "exact"], "--semantics"),
    (["--source_format", "csv"], "--source_format"),
    (["--late_hours", "-1"], "--late_hours"),
    (["--late_hours", "two"], "--late_hours"),
    (["--lookback_minutes", "19"], "--lookback_minutes"),   # corrected needs 20
    (["--locations", "957,abc"], "--locations"),
    (["--corrupt_files", "ignore"], "--corrupt_files"),
    (["--max_days", "1"], "--max_days"),                     # the range spans 2 days
])
def test_bad_values_are_named(extra, named):
    with pytest.raises(ArgumentError, match=named):
        parse_job_args(BASE + DAYS + extra)


@pytest.mark.parametrize("dates, named", [
    (["--start_date", "2020-04-08", "--end_date", "2020-04-07"], "--end_date 2020-04-07 is before"),
    (["--start_date", "2020-4-7", "--end_date", "2020-04-08"], "--start_date must be a date"),
    (["--start_date", "2020-02-30", "--end_date", "2020-03-01"], "--start_date is not a calendar date"),
    (["--start_date", "2020-04-07"], "--end_date is required"),
])
def test_bad_dates_are_named(dates, named):
    with pytest.raises(ArgumentError, match=named):
        parse_job_args(BASE + dates)


@pytest.mark.parametrize("argv, named", [
    (["s", "--source_path", "r", "--target_path", "o"], "JOB_NAME"),
    (["s", "--JOB_NAME", "t", "--target_path", "o"], "--source_path and --source_table"),
    (["s", "--JOB_NAME", "t", "--source_path", "r", "--source_table", "a.b", "--target_path", "o"],
     "--source_path and --source_table"),
    (["s", "--JOB_NAME", "t", "--source_path", "r"], "--target_path or --target_table"),
    (["s", "--JOB_NAME", "t", "--source_table", "raw", "--target_path", "o"], "--source_table must be database.table"),
])
def test_missing_or_conflicting_arguments_are_named(argv, named):
    with pytest.raises(ArgumentError, match=named):
        parse_job_args(argv + DAYS)


@pytest.mark.parametrize("extra, named", [
    (["--semantics", "exact"], "--semantics"),
    (["--start_date", "2020-04-08", "--end_date", "2020-04-07"], "--end_date"),
    (["--start_date", "2020-13-01", "--end_date", "2020-04-07"], "--start_date"),
])
def test_the_script_exits_non_zero_with_one_line_before_spark_starts(extra, named):
    argv = [sys.executable, str(SCRIPT), "--JOB_NAME", "t", "--source_path", "raw",
            "--target_path", "out"] + (extra if "--start_date" in extra else DAYS + extra)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("traffic_transform: error: ") and named in lines[0]
    assert done.stdout == ""


def test_the_script_names_a_missing_required_argument():
    argv = [sys.executable, str(SCRIPT), "--source_path", "raw", "--target_path", "out"] + DAYS
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "JOB_NAME" in done.stderr and len(done.stderr.splitlines()) == 1


# --- strict arguments, --help -------------------------------------------------------------


@pytest.mark.parametrize("extra, message", [
    (["--semantic", "athena"], "unknown argument --semantic; did you mean --semantics?"),
    (["--late-hours", "6"], "unknown argument --late-hours; did you mean --late_hours?"),
    (["--tabel_format", "parquet"], "unknown argument --tabel_format; did you mean --table_format?"),
    (["--colour", "blue"], "unknown argument --colour; see --help"),
])
def test_a_misspelled_argument_is_refused_naming_it_and_its_closest_match(extra, message):
    with pytest.raises(ArgumentError) as refused:
        parse_job_args(BASE + DAYS + extra)
    assert str(refused.value) == message


def test_the_script_refuses_an_unknown_argument_before_spark_starts():
    argv = [sys.executable, str(SCRIPT), *BASE[1:], *DAYS, "--semantic", "athena"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        "traffic_transform: error: unknown argument --semantic; did you mean --semantics?")


def test_every_argument_glue_passes_is_accepted_and_recorded():
    from workflows.template import load_template
    from tests.workflow_helpers import WORKFLOW, graph_of, transform_job

    template_arguments = [t for pair in transform_job(graph_of(load_template(WORKFLOW))).arguments
                          for t in pair]
    # What Glue adds to every run's sys.argv, and what tools.deploy run-job may send.
    glue_own = ["--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1", "--job-bookmark-option",
                "job-bookmark-disable", "--WORKFLOW_NAME", "wf", "--WORKFLOW_RUN_ID", "wr_1"]
    run_job_arguments = ["--start_date", "2020-04-07", "--end_date", "2020-04-08",
                         "--lock_expiry_minutes", "60", "--table_format", "parquet"]
    argv = ["script.py", *template_arguments, *glue_own, "--JOB_NAME", "t",
            "--target_path", "out", *run_job_arguments]
    config = parse_job_args(argv)
    assert config.given["datalake-formats"] == "iceberg" and config.given["JOB_ID"] == "j_1"
    assert config.given["conf"].startswith("spark.sql.session.timeZone=UTC --conf ")
    assert config.as_report()["given"]["table_format"] == "parquet"
    # On Glue the run id is Glue's job run id (getResolvedOptions hands it over itself).
    assert config.run_id == config.glue_job_run_id == "jr_1"
    assert config.configuration_path.startswith("s3://") and config.configuration_path.endswith("/configuration/")


def test_glues_conf_is_not_taken_for_the_configuration_path():
    """argparse, which getResolvedOptions uses, reads an unknown option that begins a
    known one as that one: `--conf` as `--configuration_path`."""
    conf = ["--conf", "spark.sql.session.timeZone=UTC --conf spark.x=y"]
    assert parse_job_args(BASE + DAYS + conf).configuration_path is None
    given = parse_job_args(BASE + DAYS + conf + ["--configuration_path", "s3://raw/configuration/"])
    assert given.configuration_path == "s3://raw/configuration/"
    assert given.given["conf"] == "spark.sql.session.timeZone=UTC --conf spark.x=y"


def test_help_prints_every_argument_and_starts_no_spark():
    from traffic_glue.runtime.arguments import TRANSFORM_ARGUMENTS, documented_names

    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "glue_jobs"),
                                           "JAVA_HOME": "/nonexistent"})
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("usage: traffic_transform --JOB_NAME NAME")
    for name in documented_names(TRANSFORM_ARGUMENTS):
        assert f"--{name}" in done.stdout, name
    assert "(default: corrected)" in done.stdout and "(default: 400)" in done.stdout


def test_the_readme_table_is_the_one_help_prints():
    from traffic_glue.runtime.arguments import TRANSFORM_ARGUMENTS, markdown_table
    from traffic_glue.runtime.config import DEFAULTS, OPTIONAL

    assert markdown_table(TRANSFORM_ARGUMENTS) in (ROOT / "README.md").read_text()
    documented = {n for entry in TRANSFORM_ARGUMENTS for n in entry.names}
    assert documented == set(OPTIONAL) - {"WORKFLOW_NAME", "WORKFLOW_RUN_ID"}
    for entry in TRANSFORM_ARGUMENTS:  # the documented default is the real one
        for name in entry.names:
            if name in DEFAULTS:
                assert DEFAULTS[name] in entry.default, name


# --- where the days come from ------------------------------------------------------


@pytest.fixture
def glue_client(monkeypatch):
    """moto's Glue, in process: a workflow and a run started with properties."""
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("glue", region_name="eu-west-1")
        client.create_workflow(Name="traffic-glue-workflow")
        yield client


def _started(client, properties: dict) -> list[str]:
    run_id = client.start_workflow_run(Name="traffic-glue-workflow",
                                       RunProperties=properties)["RunId"]
    return BASE + ["--WORKFLOW_NAME", "traffic-glue-workflow", "--WORKFLOW_RUN_ID", run_id]


def test_dates_given_as_arguments_win():
    config = parse_job_args(BASE + DAYS + ["--WORKFLOW_NAME", "w", "--WORKFLOW_RUN_ID", "wr_1"])
    # No client is asked: a factory that fails proves it.
    resolved = resolve_dates(config, glue_client_factory=lambda: 1 / 0)
    assert resolved.start_date == dt.date(2020, 4, 7)


def test_dates_from_the_workflow_run_properties(glue_client):
    argv = _started(glue_client, {"start_date": "2024-02-01", "end_date": "2024-02-29"})
    resolved = resolve_dates(parse_job_args(argv), glue_client_factory=lambda: glue_client)
    assert (resolved.start_date, resolved.end_date) == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))


def test_the_run_properties_are_asked_of_the_right_run():
    """botocore's Stubber: the exact GetWorkflowRunProperties call the job makes."""
    client = boto3.client("glue", region_name="eu-west-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    with Stubber(client) as stub:
        stub.add_response("get_workflow_run_properties",
                          {"RunProperties": {"start_date": "2024-02-01", "end_date": "2024-02-02"}},
                          {"Name": "traffic-glue-workflow", "RunId": "wr_42"})
        config = parse_job_args(BASE + ["--WORKFLOW_NAME", "traffic-glue-workflow",
                                        "--WORKFLOW_RUN_ID", "wr_42"])
        resolve_dates(config, glue_client_factory=lambda: client)
        stub.assert_no_pending_responses()


def test_a_workflow_run_without_dates_processes_yesterday(glue_client):
    argv = _started(glue_client, {"note": "scheduled"})
    now = dt.datetime(2026, 11, 25, 0, 30, tzinfo=dt.timezone.utc)
    resolved = resolve_dates(parse_job_args(argv), glue_client_factory=lambda: glue_client, now=now)
    assert (resolved.start_date, resolved.end_date) == (dt.date(2026, 11, 24),) * 2


@pytest.mark.parametrize("properties, named", [
    ({"start_date": "2024-02-31", "end_date": "2024-03-01"}, "--start_date is not a calendar date"),
    ({"start_date": "2024-02-01"}, "sets only one of the run properties"),
    ({"start_date": "2024-03-02", "end_date": "2024-03-01"}, "--end_date 2024-03-01 is before"),
])
def test_bad_workflow_dates_are_named(glue_client, properties, named):
    argv = _started(glue_client, properties)
    with pytest.raises(ArgumentError, match=named):
        resolve_dates(parse_job_args(argv), glue_client_factory=lambda: glue_client)


def test_no_dates_and_no_workflow_means_yesterday_utc():
    now = dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.timezone.utc)
    resolved = resolve_dates(parse_job_args(BASE), now=now)
    assert (resolved.start_date, resolved.end_date) == (dt.date(2025, 12, 31),) * 2


# --- --dry_run, --log_level ------------------------------------------------------------------


@pytest.mark.parametrize("extra, dry_run", [
    ([], False),
    (["--dry_run"], True),  # alone, at the end
    (["--dry_run", "--semantics", "athena"], True),  # alone, before another argument
    (["--dry_run", "true"], True),  # as Glue passes it
    (["--dry_run", "false"], False),
])
def test_dry_run_may_be_given_alone_or_with_a_value(extra, dry_run):
    config = parse_job_args(BASE + DAYS + extra)
    assert config.dry_run is dry_run
    assert config.given.get("dry_run") == (None if not extra else ("false" if not dry_run else "true"))


def test_dry_run_takes_only_true_or_false():
    with pytest.raises(ArgumentError, match=r"--dry_run must be one of true, false, got 'yes'"):
        parse_job_args(BASE + DAYS + ["--dry_run", "yes"])


@pytest.mark.parametrize("given, level", [(None, "WARN"), ("info", "INFO"), ("DEBUG", "DEBUG"),
                                          ("ERROR", "ERROR")])
def test_log_level(given, level):
    extra = ["--log_level", given] if given else []
    assert parse_job_args(BASE + DAYS + extra).log_level == level


def test_a_log_level_spark_does_not_know_is_refused():
    with pytest.raises(ArgumentError, match=r"--log_level must be one of ERROR, WARN, INFO, DEBUG, got 'LOUD'"):
        parse_job_args(BASE + DAYS + ["--log_level", "loud"])


# --- the summary job's days ------------------------------------------------------------------

SUMMARY_BASE = ["s.py", "--JOB_NAME", "s", "--source_path", "c", "--target_path", "s"]


def test_summary_dates_given_win_over_the_run_properties(tmp_path):
    from traffic_glue.runtime.config import parse_summary_args
    from traffic_glue.runtime.glue import resolve_days

    properties = tmp_path / "wr.json"
    properties.write_text('{"curated_days": "2020-04-09"}')
    config = resolve_days(parse_summary_args(SUMMARY_BASE + DAYS + [
        "--run_properties_file", str(properties)]))
    assert config.days == (dt.date(2020, 4, 7), dt.date(2020, 4, 8))


@pytest.mark.parametrize("properties, days", [
    ({"curated_days": "2020-04-09,2020-04-07", "start_date": "2020-04-01", "end_date": "2020-04-09"},
     (dt.date(2020, 4, 7), dt.date(2020, 4, 9))),  # the transform's days, not the run's range
    ({"curated_days": ""}, ()),  # the transform replaced none
    ({"start_date": "2020-04-01", "end_date": "2020-04-02"}, (dt.date(2020, 4, 1), dt.date(2020, 4, 2))),
    ({}, (dt.date(2026, 11, 30),)),  # yesterday
])
def test_summary_days_from_the_workflow_run(tmp_path, properties, days):
    from traffic_glue.runtime.config import parse_summary_args
    from traffic_glue.runtime.glue import resolve_days

    path = tmp_path / "wr.json"
    path.write_text(json.dumps(properties))
    now = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.timezone.utc)
    config = resolve_days(parse_summary_args(SUMMARY_BASE + ["--run_properties_file", str(path)]), now=now)
    assert config.days == days


def test_summary_days_from_glue_workflow_run_properties(glue_client):
    from traffic_glue.runtime.config import parse_summary_args
    from traffic_glue.runtime.glue import record_curated_days, resolve_days

    run_id = glue_client.start_workflow_run(Name="traffic-glue-workflow",
                                            RunProperties={"start_date": "2024-02-01"})["RunId"]
    on_glue = ["--WORKFLOW_NAME", "traffic-glue-workflow", "--WORKFLOW_RUN_ID", run_id]
    record_curated_days(parse_job_args(BASE + on_glue), [dt.date(2024, 2, 2), dt.date(2024, 2, 1)],
                        glue_client_factory=lambda: glue_client)
    properties = glue_client.get_workflow_run_properties(Name="traffic-glue-workflow", RunId=run_id)
    assert properties["RunProperties"]["curated_days"] == "2024-02-01,2024-02-02"
    config = resolve_days(parse_summary_args(SUMMARY_BASE + on_glue), glue_client_factory=lambda: glue_client)
    assert config.days == (dt.date(2024, 2, 1), dt.date(2024, 2, 2))


def test_every_argument_glue_passes_the_summary_job_is_accepted():
    from workflows.template import load_template
    from tests.workflow_helpers import WORKFLOW, graph_of, summary_job
    from traffic_glue.runtime.config import parse_summary_args

    template_arguments = [t for pair in summary_job(graph_of(load_template(WORKFLOW))).arguments
                          for t in pair]
    glue_own = ["--JOB_ID", "j_2", "--JOB_RUN_ID", "jr_2", "--WORKFLOW_NAME", "wf",
                "--WORKFLOW_RUN_ID", "wr_1", "--JOB_NAME", "s"]
    config = parse_summary_args(["script.py", *template_arguments, *glue_own])
    assert config.source_table.endswith(".traffic_minutes")
    assert config.target_table.endswith(".daily_summary") and config.target_path.startswith("s3://")
    assert config.given["datalake-formats"] == "iceberg" and config.run_id == "jr_2"
    assert (config.workflow_name, config.workflow_run_id) == ("wf", "wr_1")


def test_the_readme_holds_the_summary_jobs_arguments_as_its_help_does():
    from traffic_glue.runtime.arguments import SUMMARY_ARGUMENTS, markdown_table

    assert markdown_table(SUMMARY_ARGUMENTS) in (ROOT / "README.md").read_text()


def test_locations_may_name_unconfigured_lanes_by_their_negative_ids():
    """`-unieke_id` is the location of a lane the configuration does not hold; argparse
    would take a value starting with `-` for an option."""
    assert parse_job_args(BASE + DAYS + ["--locations", "-31,-957,5"]).locations == (-957, -31, 5)
    assert parse_job_args(BASE + DAYS + ["--locations", "-31"]).locations == (-31,)
    assert parse_job_args(BASE + DAYS + ["--locations=-31,7"]).locations == (-31, 7)
