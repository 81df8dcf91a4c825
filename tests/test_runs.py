"""tools/runs.py: starting and following workflow and job runs, and listing the last
runs, through `deploy.main`, against moto and botocore Stubbers. The fakes, and what
moto implements and what it does not, are in test_deploy.py.
"""

import boto3
import pytest
from moto import mock_aws
from moto.moto_api import state_manager

from tests.aws_fakes import (
    FakeSession,
    REGION,
    T0,
    create_stand_in_workflow_stack,
    no_sleep,
    stubbed,
)
from tools import deploy


# --- start-workflow ----------------------------------------------------------


def test_start_workflow_without_dates_sends_no_run_properties():
    """Stubber: expected_params proves RunProperties is left out, not sent empty."""
    glue, stub = stubbed("glue")
    stub.add_response("start_workflow_run", {"RunId": "wr_1"}, {"Name": "wf"})
    with stub:
        assert deploy.main(["start-workflow", "--workflow", "wf", "--no-follow"],
                           session=FakeSession(glue=glue)) == 0
    stub.assert_no_pending_responses()


def _node(kind, name, state=None, error=None):
    node = {"Type": kind, "Name": name, "UniqueId": f"id-{name}"}
    if kind == "TRIGGER":
        node["TriggerDetails"] = {"Trigger": {"Name": name, "State": state}}
    elif kind == "JOB":
        runs = [] if state is None else [{"Id": "jr_1", "JobRunState": state, "StartedOn": T0,
                                          **({"ErrorMessage": error} if error else {})}]
        node["JobDetails"] = {"JobRuns": runs}
    else:
        crawls = [] if state is None else [{"State": state, "StartedOn": T0,
                                            **({"ErrorMessage": error} if error else {})}]
        node["CrawlerDetails"] = {"Crawls": crawls}
    return node


def _run(status, *nodes, **extra):
    return {"Run": {"Name": "wf", "WorkflowRunId": "wr_1", "Status": status, "StartedOn": T0,
                    "WorkflowRunProperties": {"start_date": "2024-02-01", "end_date": "2024-02-02"},
                    "Graph": {"Nodes": list(nodes), "Edges": []}, **extra}}


def _follow_workflow(responses, capsys):
    glue, stub = stubbed("glue")
    stub.add_response("start_workflow_run", {"RunId": "wr_1"}, {
        "Name": "wf", "RunProperties": {"start_date": "2024-02-01", "end_date": "2024-02-02"}})
    for response in responses:
        stub.add_response("get_workflow_run", response, {"Name": "wf", "RunId": "wr_1", "IncludeGraph": True})
    slept, sleep = no_sleep()
    argv = ["start-workflow", "--workflow", "wf", "--start-date", "2024-02-01", "--end-date",
            "2024-02-02", "--poll-seconds", "0"]
    with stub:
        code = deploy.main(argv, session=FakeSession(glue=glue), sleep=sleep)
    stub.assert_no_pending_responses()
    assert len(slept) == len(responses) - 1
    captured = capsys.readouterr()
    return code, captured.out.splitlines()[1:], captured.err


def test_start_workflow_follows_node_states_to_success(capsys):
    """Stubber: moto's get_workflow_run has no Graph and its runs never end."""
    trigger = _node("TRIGGER", "traffic-glue-start", "ACTIVATED")
    code, lines, err = _follow_workflow([
        _run("RUNNING", trigger, _node("CRAWLER", "raw", "RUNNING"), _node("JOB", "transform")),
        _run("RUNNING", trigger, _node("CRAWLER", "raw", "RUNNING"), _node("JOB", "transform")),
        _run("RUNNING", trigger, _node("CRAWLER", "raw", "SUCCEEDED"), _node("JOB", "transform", "RUNNING")),
        _run("COMPLETED", trigger, _node("CRAWLER", "raw", "SUCCEEDED"), _node("JOB", "transform", "SUCCEEDED")),
    ], capsys)
    assert (code, err) == (0, "")
    assert lines == [
        "  trigger traffic-glue-start: ACTIVATED",
        "  crawler raw: RUNNING",
        "  job transform: NOT_STARTED",
        "workflow run wr_1: RUNNING",
        "  crawler raw: SUCCEEDED",
        "  job transform: RUNNING",
        "  job transform: SUCCEEDED",
        "workflow run wr_1: COMPLETED",
    ]


def test_start_workflow_names_the_failed_job(capsys):
    """Stubber: a failed job still leaves the workflow run COMPLETED; that is exit 1."""
    code, lines, err = _follow_workflow([
        _run("COMPLETED", _node("CRAWLER", "raw", "SUCCEEDED"),
             _node("JOB", "transform", "FAILED", "AnalysisException: path not found")),
    ], capsys)
    assert code == 1
    assert "  job transform: FAILED (AnalysisException: path not found)" in lines
    assert err == ("error: workflow wf run wr_1 COMPLETED: "
                   "job transform FAILED: AnalysisException: path not found\n")


def test_start_workflow_names_the_failed_crawler_before_the_job_it_kept_from_running(capsys):
    code, _, err = _follow_workflow([
        _run("COMPLETED", _node("JOB", "transform"), _node("CRAWLER", "raw", "FAILED", "Access denied")),
    ], capsys)
    assert code == 1
    assert err == ("error: workflow wf run wr_1 COMPLETED: crawler raw FAILED: Access denied; "
                   "job transform NOT_STARTED: it did not run\n")


def test_a_stopped_workflow_run_reports_its_error(capsys):
    code, _, err = _follow_workflow([
        _run("STOPPED", _node("JOB", "transform", "STOPPED"), ErrorMessage="stopped by user"),
    ], capsys)
    assert code == 1
    assert err == "error: workflow wf run wr_1 STOPPED: job transform STOPPED: no error message\n"


# --- run-job -----------------------------------------------------------------


@pytest.fixture
def step_by_step_job_runs():
    """Moto job runs move one state per get_job_run: STARTING, RUNNING, SUCCEEDED."""
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 1})
    yield
    state_manager.unset_transition("glue::job_run")


def test_run_job_against_moto_server(endpoint, step_by_step_job_runs, capsys):
    glue = boto3.client("glue")
    glue.create_job(Name="transform", Role="arn:aws:iam::123456789012:role/glue",
                    Command={"Name": "glueetl", "ScriptLocation": "s3://a/glue/traffic_transform.py"})
    slept, sleep = no_sleep()
    argv = ["run-job", "--job", "transform", "--start-date", "2024-02-01", "--end-date", "2024-02-03",
            "--semantics", "athena", "--arg", "lookback_minutes=90", "--arg=--late_hours=6",
            "--poll-seconds", "0"]
    assert deploy.main(argv, sleep=sleep) == 0

    [run] = glue.get_job_runs(JobName="transform")["JobRuns"]
    assert run["Arguments"] == {"--start_date": "2024-02-01", "--end_date": "2024-02-03",
                                "--semantics": "athena", "--lookback_minutes": "90", "--late_hours": "6"}
    assert capsys.readouterr().out.splitlines()[1:] == [
        f"job transform run {run['Id']}: RUNNING",
        f"job transform run {run['Id']}: SUCCEEDED",
        f"job transform run {run['Id']} took 123 s",
    ]
    assert slept == [0.0]


def test_run_job_exits_1_with_the_error_message(capsys):
    """Stubber: moto's job runs always succeed."""
    glue, stub = stubbed("glue")
    stub.add_response("start_job_run", {"JobRunId": "jr_1"}, {"JobName": "transform", "Arguments": {
        "--start_date": "2024-02-01", "--end_date": "2024-02-01"}})
    for state in ("RUNNING", "FAILED"):
        run = {"Id": "jr_1", "JobName": "transform", "JobRunState": state}
        if state == "FAILED":
            run["ErrorMessage"] = "Py4JJavaError: out of memory"
        stub.add_response("get_job_run", {"JobRun": run}, {"JobName": "transform", "RunId": "jr_1"})
    with stub:
        code = deploy.main(["run-job", "--job", "transform", "--start-date", "2024-02-01"],
                           session=FakeSession(glue=glue), sleep=lambda _: None)
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1:] == ["job transform run jr_1: RUNNING", "job transform run jr_1: FAILED"]
    assert captured.err == "error: job transform run jr_1 FAILED: Py4JJavaError: out of memory\n"


def test_run_job_sizes_a_backfill_for_this_run_only(capsys):
    """Stubber: it checks the exact StartJobRun request, which moto does not keep."""
    glue, stub = stubbed("glue")
    stub.add_response("start_job_run", {"JobRunId": "jr_2"}, {
        "JobName": "transform", "WorkerType": "G.1X", "NumberOfWorkers": 10, "Timeout": 60,
        "Arguments": {"--start_date": "2024-01-01", "--end_date": "2024-12-31"}})
    with stub:
        code = deploy.main(["run-job", "--job", "transform", "--start-date", "2024-01-01",
                            "--end-date", "2024-12-31", "--workers", "10", "--worker-type", "G.1X",
                            "--timeout", "60", "--no-follow"],
                           session=FakeSession(glue=glue), sleep=lambda _: None)
    assert code == 0
    stub.assert_no_pending_responses()
    assert capsys.readouterr().out.splitlines()[0].endswith(
        "WorkerType=G.1X NumberOfWorkers=10 Timeout=60")


# --- runs --------------------------------------------------------------------


def test_runs_lists_workflow_and_job_runs(capsys):
    """In-process moto; the names come from the workflow stand-in stack's outputs."""
    with mock_aws():
        cfn, glue = (boto3.client(s, region_name=REGION) for s in ("cloudformation", "glue"))
        create_stand_in_workflow_stack(cfn)
        glue.create_workflow(Name="traffic-glue-workflow")
        glue.create_job(Name="traffic-glue-transform", Role="arn:aws:iam::123456789012:role/glue",
                        Command={"Name": "glueetl", "ScriptLocation": "s3://a/b.py"})
        wr = glue.start_workflow_run(Name="traffic-glue-workflow", RunProperties={
            "start_date": "2024-01-01", "end_date": "2024-01-31"})["RunId"]
        jr = glue.start_job_run(JobName="traffic-glue-transform", Arguments={
            "--start_date": "2024-01-01", "--end_date": "2024-01-02", "--semantics": "athena"})["JobRunId"]
        glue.create_job(Name="traffic-glue-daily-summary", Role="arn:aws:iam::123456789012:role/glue",
                        Command={"Name": "glueetl", "ScriptLocation": "s3://a/s.py"})
        assert deploy.main(["runs", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "workflow traffic-glue-workflow: last 3 runs"
    assert lines[1].startswith(f"  {wr}  RUNNING  started 20")
    assert lines[1].endswith("  completed -  end_date=2024-01-31 start_date=2024-01-01")
    assert lines[2] == "job traffic-glue-transform: last 3 runs"
    assert lines[3].startswith(f"  {jr}  SUCCEEDED  started 20")
    assert lines[3].endswith("  duration 123 s  end_date=2024-01-02 start_date=2024-01-01")
    # Every job of the workflow stack, the summary too.
    assert lines[4:] == ["job traffic-glue-daily-summary: no runs"]


def test_runs_sends_the_limit_and_copes_with_no_runs(capsys):
    """Stubber: expected_params prove MaxResults and IncludeGraph=False; with no runs AWS
    leaves the lists out (their minimum length is 1), which moto does not reproduce."""
    glue, stub = stubbed("glue")
    stub.add_response("get_workflow_runs", {}, {"Name": "wf", "IncludeGraph": False, "MaxResults": 7})
    stub.add_response("get_job_runs", {}, {"JobName": "job", "MaxResults": 7})
    with stub:
        assert deploy.main(["runs", "--workflow", "wf", "--job", "job", "--limit", "7"],
                           session=FakeSession(glue=glue)) == 0
    stub.assert_no_pending_responses()
    assert capsys.readouterr().out == "workflow wf: no runs\njob job: no runs\n"
