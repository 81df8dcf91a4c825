"""The workflow run's properties (runtime/run_properties.py): where the transform and the
summary find their days, and how the transform tells the summary which days it replaced.
On Glue through moto's Glue and botocore's Stubber; locally through a JSON file."""

import datetime as dt
import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from traffic_glue.jobs.summary_args import parse_summary_args
from traffic_glue.jobs.transform_args import parse_job_args
from traffic_glue.runtime.arguments import ArgumentError
from traffic_glue.runtime.run_properties import (
    CURATED_DAYS, FileRunProperties, GlueRunProperties, record_curated_days, resolve_dates, resolve_days,
    run_properties, workflow_run_dates, yesterday_utc,
)

ROOT = Path(__file__).resolve().parents[1]
# A source folder that exists: a local one that does not is refused before Spark starts.
BASE = ["script.py", "--JOB_NAME", "t", "--source_path", str(ROOT / "tests"), "--target_path", "out"]
DAYS = ["--start_date", "2020-04-07", "--end_date", "2020-04-08"]
SUMMARY_BASE = ["s.py", "--JOB_NAME", "s", "--source_path", "c", "--target_path", "s"]


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


# --- which properties ------------------------------------------------------------------------


def test_a_job_outside_a_workflow_has_no_run_properties():
    assert run_properties(parse_job_args(BASE)) is None
    # A workflow name alone (a run id is needed to ask for its properties) is none either.
    assert run_properties(parse_job_args(BASE + ["--WORKFLOW_NAME", "w"])) is None


def test_on_glue_they_are_the_workflow_runs_and_a_file_wins_locally(tmp_path):
    on_glue = parse_job_args(BASE + ["--WORKFLOW_NAME", "w", "--WORKFLOW_RUN_ID", "wr_1"])
    properties = run_properties(on_glue, glue_client_factory=lambda: 1 / 0)  # not asked yet
    assert isinstance(properties, GlueRunProperties)
    assert (properties.workflow_name, properties.run_id) == ("w", "wr_1")
    local = parse_job_args(BASE + ["--WORKFLOW_NAME", "w", "--WORKFLOW_RUN_ID", "wr_1",
                                   "--run_properties_file", str(tmp_path / "wr_7.json")])
    properties = run_properties(local)
    assert isinstance(properties, FileRunProperties) and properties.run_id == "wr_7"


def test_the_local_file_keeps_what_it_holds_and_adds_what_is_put(tmp_path):
    path = tmp_path / "runs" / "wr_1.json"
    properties = FileRunProperties(str(path))
    assert properties.get() == {}  # no file yet
    properties.put({"start_date": "2020-04-06"})
    properties.put({CURATED_DAYS: "2020-04-06"})
    assert json.loads(path.read_text()) == {"start_date": "2020-04-06", "curated_days": "2020-04-06"}


@pytest.mark.parametrize("properties, dates", [
    ({}, None),
    ({"note": "scheduled"}, None),
    ({"start_date": "2024-02-01", "end_date": "2024-02-29"}, (dt.date(2024, 2, 1), dt.date(2024, 2, 29))),
])
def test_workflow_run_dates(properties, dates):
    assert workflow_run_dates(properties, "wr_1") == dates


@pytest.mark.parametrize("now, day", [
    (dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.timezone.utc), dt.date(2025, 12, 31)),
    (dt.datetime(2024, 3, 1, 23, 59, tzinfo=dt.timezone.utc), dt.date(2024, 2, 29)),  # a leap day
])
def test_yesterday_is_utcs(now, day):
    assert yesterday_utc(now) == day


# --- the transform's dates -------------------------------------------------------------------


def test_dates_given_as_arguments_win():
    config = parse_job_args(BASE + DAYS + ["--WORKFLOW_NAME", "w", "--WORKFLOW_RUN_ID", "wr_1"])
    # No client is asked: a factory that fails proves it.
    resolved = resolve_dates(config, glue_client_factory=lambda: 1 / 0)
    assert (resolved.start_date, resolved.end_date) == (dt.date(2020, 4, 7), dt.date(2020, 4, 8))


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
        resolved = resolve_dates(config, glue_client_factory=lambda: client)
        stub.assert_no_pending_responses()
    assert (resolved.start_date, resolved.end_date) == (dt.date(2024, 2, 1), dt.date(2024, 2, 2))


def test_a_workflow_run_without_dates_processes_yesterday(glue_client):
    argv = _started(glue_client, {"note": "scheduled"})
    now = dt.datetime(2026, 11, 25, 0, 30, tzinfo=dt.timezone.utc)
    resolved = resolve_dates(parse_job_args(argv), glue_client_factory=lambda: glue_client, now=now)
    assert (resolved.start_date, resolved.end_date) == (dt.date(2026, 11, 24),) * 2


@pytest.mark.parametrize("properties, message", [
    ({"start_date": "2024-02-31", "end_date": "2024-03-01"}, "--start_date is not a calendar date: '2024-02-31'"),
    ({"start_date": "2024-02-01"}, "sets only one of the run properties start_date/end_date"),
    ({"start_date": "2024-03-02", "end_date": "2024-03-01"}, "--end_date 2024-03-01 is before --start_date 2024-03-02"),
    # 2023-01-01 .. 2024-02-05: 365 + 31 + 5 = 401 days, one more than --max_days
    ({"start_date": "2023-01-01", "end_date": "2024-02-05"},
     "--start_date/--end_date span 401 days, more than --max_days 400"),
])
def test_bad_workflow_dates_are_named(glue_client, properties, message):
    argv = _started(glue_client, properties)
    with pytest.raises(ArgumentError) as refused:
        resolve_dates(parse_job_args(argv), glue_client_factory=lambda: glue_client)
    assert message in str(refused.value)


def test_no_dates_and_no_workflow_means_yesterday_utc():
    now = dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.timezone.utc)
    resolved = resolve_dates(parse_job_args(BASE), now=now)
    assert (resolved.start_date, resolved.end_date) == (dt.date(2025, 12, 31),) * 2


# --- the summary's days ----------------------------------------------------------------------


def test_summary_dates_given_win_over_the_run_properties(tmp_path):
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
    path = tmp_path / "wr.json"
    path.write_text(json.dumps(properties))
    now = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.timezone.utc)
    config = resolve_days(parse_summary_args(SUMMARY_BASE + ["--run_properties_file", str(path)]), now=now)
    assert config.days == days


def test_a_bad_curated_day_is_named(tmp_path):
    path = tmp_path / "wr.json"
    path.write_text(json.dumps({"curated_days": "2020-04-07,2020-4-8"}))
    with pytest.raises(ArgumentError, match=r"^--curated_days must be a date YYYY-MM-DD, got '2020-4-8'$"):
        resolve_days(parse_summary_args(SUMMARY_BASE + ["--run_properties_file", str(path)]))


def test_summary_days_from_glue_workflow_run_properties(glue_client):
    run_id = glue_client.start_workflow_run(Name="traffic-glue-workflow",
                                            RunProperties={"start_date": "2024-02-01"})["RunId"]
    on_glue = ["--WORKFLOW_NAME", "traffic-glue-workflow", "--WORKFLOW_RUN_ID", run_id]
    record_curated_days(parse_job_args(BASE + on_glue), [dt.date(2024, 2, 2), dt.date(2024, 2, 1)],
                        glue_client_factory=lambda: glue_client)
    properties = glue_client.get_workflow_run_properties(Name="traffic-glue-workflow", RunId=run_id)
    assert properties["RunProperties"]["curated_days"] == "2024-02-01,2024-02-02"
    config = resolve_days(parse_summary_args(SUMMARY_BASE + on_glue), glue_client_factory=lambda: glue_client)
    assert config.days == (dt.date(2024, 2, 1), dt.date(2024, 2, 2))


def test_recording_no_days_tells_the_summary_to_do_nothing(tmp_path):
    path = tmp_path / "wr.json"
    config = parse_job_args(BASE + ["--run_properties_file", str(path)])
    record_curated_days(config, [])
    assert json.loads(path.read_text()) == {"curated_days": ""}
    summary = resolve_days(parse_summary_args(SUMMARY_BASE + ["--run_properties_file", str(path)]))
    assert summary.days == ()


def test_outside_a_workflow_nothing_is_recorded():
    record_curated_days(parse_job_args(BASE), [dt.date(2020, 4, 7)], glue_client_factory=lambda: 1 / 0)
