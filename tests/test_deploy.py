"""tools/deploy.py, the command line, against moto (server mode where HTTP matters) and
botocore Stubbers (the fakes are in tests/aws_fakes.py, their fixtures in conftest.py).

What moto 5.2.5 implements and what it does not, and so which tool each test uses:
- CloudFormation create/update/describe_stacks/describe_stack_events: implemented,
  but it has no AWS::Glue::* resources (it skips them with a warning), only writes
  stack-level events and never fails or rolls a stack back. Deploys therefore run
  against the stand-in templates in tests/fixtures/deploy/ (same parameters and
  outputs, resources moto can create); a failed stack is a Stubber.
- S3 put_object with SSE-KMS: implemented.
- Glue start_job_run/get_job_run/get_job_runs: implemented (state via moto's state
  manager). start_workflow_run/get_workflow_runs: implemented, but a workflow run
  stays RUNNING forever and get_workflow_run returns no Graph, so following a run
  (node states, success, failure) is a Stubber.
"""

import os
import subprocess
import sys

import boto3
import pytest

from tests.aws_fakes import (
    FakeSession,
    REPO_ROOT,
    create_stand_in_workflow_stack,
    stubbed,
)
from tools import deploy

# --- start-workflow ----------------------------------------------------------


def test_start_workflow_as_a_subprocess_sends_the_backfill_run_properties(endpoint):
    """Moto server, and the CLI run as `python -m tools.deploy` reaching it only through
    AWS_ENDPOINT_URL; the workflow name comes from the workflow stack's output."""
    cfn, glue = boto3.client("cloudformation"), boto3.client("glue")
    create_stand_in_workflow_stack(cfn)
    glue.create_workflow(Name="traffic-glue-workflow")
    result = subprocess.run(
        [sys.executable, "-m", "tools.deploy", "start-workflow", "--start-date", "2024-02-01",
         "--end-date", "2024-02-29", "--no-follow"],
        cwd=REPO_ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    [run] = glue.get_workflow_runs(Name="traffic-glue-workflow")["Runs"]
    assert run["WorkflowRunProperties"] == {"start_date": "2024-02-01", "end_date": "2024-02-29"}
    assert result.stdout == (f"started workflow traffic-glue-workflow run {run['WorkflowRunId']} "
                             "end_date=2024-02-29 start_date=2024-02-01\n")


def test_start_workflow_before_deploy_says_so(capsys):
    """Stubber: the workflow stack does not exist yet."""
    cfn, stub = stubbed("cloudformation")
    stub.add_client_error("describe_stacks", "ValidationError", "Stack with id traffic-glue-workflow does not exist",
                          expected_params={"StackName": "traffic-glue-workflow"})
    with stub:
        assert deploy.main(["start-workflow"], session=FakeSession(cloudformation=cfn)) == 1
    assert capsys.readouterr().err == (
        "error: stack traffic-glue-workflow does not exist; run `python -m tools.deploy deploy` first\n")


# --- argument validation -----------------------------------------------------


@pytest.mark.parametrize("command", ["start-workflow", "run-job"])
@pytest.mark.parametrize("dates, message", [
    (["--start-date", "2024-02-30"], "argument --start-date: '2024-02-30' is not a calendar date"),
    (["--start-date", "20240201"], "argument --start-date: '20240201' is not a date in YYYY-MM-DD form"),
    (["--start-date", "2024-02-01", "--end-date", "2024-1-31"], "argument --end-date: '2024-1-31' is not"),
    (["--start-date", "2024-02-05", "--end-date", "2024-02-01"],
     "argument --end-date: 2024-02-01 is before --start-date 2024-02-05"),
    (["--end-date", "2024-02-01"], "argument --end-date: needs --start-date"),
])
def test_bad_dates_exit_2_before_any_aws_call(command, dates, message, capsys):
    """A Stubber with no responses: any AWS call would fail; none is even attempted."""
    glue, glue_stub = stubbed("glue")
    cfn, cfn_stub = stubbed("cloudformation")
    session = FakeSession(glue=glue, cloudformation=cfn)
    with glue_stub, cfn_stub, pytest.raises(SystemExit) as exit_:
        deploy.main([command, *dates], session=session)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert session.asked == []


def test_a_job_argument_must_be_key_value(capsys):
    with pytest.raises(SystemExit) as exit_:
        deploy.main(["run-job", "--arg", "lookback_minutes"], session=FakeSession())
    assert exit_.value.code == 2
    assert "argument --arg: 'lookback_minutes' is not KEY=VALUE" in capsys.readouterr().err


# --- run-job -----------------------------------------------------------------


@pytest.mark.parametrize("options, arguments", [
    ([], None),  # the job's own arguments (the stack's)
    (["--semantics", "athena"], {"--semantics": "athena"}),
    (["--semantics", "corrected", "--arg", "lookback_minutes=90"],
     {"--semantics": "corrected", "--lookback_minutes": "90"}),
])
def test_run_job_sends_the_arguments_only_when_given(options, arguments, capsys):
    """Stubber: the request start_job_run gets is exactly the expected one."""
    glue, stub = stubbed("glue")
    expected = {"JobName": "traffic-glue-transform", **({"Arguments": arguments} if arguments else {})}
    stub.add_response("start_job_run", {"JobRunId": "jr_1"}, expected)
    with stub:
        argv = ["run-job", "--job", "traffic-glue-transform", "--no-follow", *options]
        assert deploy.main(argv, session=FakeSession(glue=glue)) == 0
    stub.assert_no_pending_responses()
    assert capsys.readouterr().out.startswith("started job traffic-glue-transform run jr_1")


def test_run_job_summary_starts_the_stacks_summary_job_without_the_transforms_arguments(capsys):
    cfn, cfn_stub = stubbed("cloudformation")
    cfn_stub.add_response("describe_stacks", {"Stacks": [{
        "StackName": "traffic-glue-workflow", "CreationTime": "2026-01-01T00:00:00Z",
        "StackStatus": "CREATE_COMPLETE",
        "Outputs": [{"OutputKey": "JobName", "OutputValue": "traffic-glue-transform"},
                    {"OutputKey": "SummaryJobName", "OutputValue": "traffic-glue-daily-summary"}]}]},
        {"StackName": "traffic-glue-workflow"})
    glue, stub = stubbed("glue")
    # --timeout sets the run's Timeout only.
    stub.add_response("start_job_run", {"JobRunId": "jr_9"}, {
        "JobName": "traffic-glue-daily-summary", "Timeout": 20,
        "Arguments": {"--start_date": "2020-04-07", "--end_date": "2020-04-07"}})
    with stub, cfn_stub:
        argv = ["run-job", "--summary", "--start-date", "2020-04-07", "--end-date", "2020-04-07",
                "--timeout", "20", "--no-follow"]
        assert deploy.main(argv, session=FakeSession(glue=glue, cloudformation=cfn)) == 0
    stub.assert_no_pending_responses()
    assert capsys.readouterr().out.startswith("started job traffic-glue-daily-summary run jr_9")


def test_run_job_summary_refuses_the_transforms_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        deploy.main(["run-job", "--summary", "--semantics", "athena"], session=FakeSession())
    assert exit_.value.code == 2
    assert "--summary takes no --job or --semantics" in capsys.readouterr().err
