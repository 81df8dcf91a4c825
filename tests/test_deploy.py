"""tools/deploy.py, the command line, against moto (server mode where HTTP matters) and
botocore Stubbers; and the AWS fakes that test_stacks.py and test_runs.py import from here.

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

import datetime as dt
import logging
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer

from tools import deploy, stacks

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "deploy"
FOUNDATION_STAND_IN = FIXTURES / "foundation.yaml"
WORKFLOW_STAND_IN = FIXTURES / "workflow.yaml"
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
T0 = dt.datetime(2024, 3, 4, 5, 0, 0, tzinfo=dt.timezone.utc)


# --- fixtures ----------------------------------------------------------------


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch, tmp_path):
    """Fake credentials, a fixed region, and no way to reach a real account's config."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture(scope="module")
def moto_server():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def endpoint(moto_server, monkeypatch):
    """A clean moto server that boto3 reaches through AWS_ENDPOINT_URL."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server


class FakeSession:
    """Hands out the given (stubbed) clients and records which services were asked for."""

    def __init__(self, **clients):
        self.clients, self.asked = clients, []

    def client(self, service):
        self.asked.append(service)
        return self.clients[service]


def stubbed(service):
    client = boto3.client(service, region_name=REGION)
    return client, Stubber(client)


def no_sleep():
    slept = []
    return slept, slept.append


def as_params(parameters: dict) -> list:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]


# --- start-workflow ----------------------------------------------------------


def _create_stand_in_workflow_stack(cfn):
    parameters = {key: f"{key}-value" for key in stacks.SHARED_OUTPUTS}
    cfn.create_stack(StackName="traffic-glue-workflow", TemplateBody=WORKFLOW_STAND_IN.read_text(),
                     Parameters=as_params(parameters))


def test_start_workflow_as_a_subprocess_sends_the_backfill_run_properties(endpoint):
    """Moto server, and the CLI run as `python -m tools.deploy` reaching it only through
    AWS_ENDPOINT_URL; the workflow name comes from the workflow stack's output."""
    cfn, glue = boto3.client("cloudformation"), boto3.client("glue")
    _create_stand_in_workflow_stack(cfn)
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
