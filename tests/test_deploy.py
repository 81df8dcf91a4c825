"""tools/deploy.py against moto (server mode where HTTP matters) and botocore Stubbers.

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
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.moto_api import state_manager
from moto.server import ThreadedMotoServer

from tools import deploy

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


@pytest.fixture
def source(tmp_path):
    """A copy of glue_jobs/traffic_glue plus caches that must not ship, and a job script."""
    root = tmp_path / "glue_jobs"
    shutil.copytree(REPO_ROOT / "glue_jobs" / "traffic_glue", root / "traffic_glue",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (root / "traffic_glue" / "__pycache__").mkdir()
    (root / "traffic_glue" / "__pycache__" / "schema.cpython-311.pyc").write_bytes(b"\0cache")
    (root / "traffic_glue" / "stale.pyc").write_bytes(b"\0cache")
    (root / "traffic_glue" / ".DS_Store").write_bytes(b"finder")
    (root / "traffic_transform.py").write_text("# stand-in job script\n")
    return root


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


def recording_session():
    """A real boto3 session that records every request's operation and parameters."""
    session = boto3.session.Session()
    calls = []

    def record(params, model, **_):
        calls.append((model.name, json.loads(json.dumps(params, default=str))))

    session.events.register("before-parameter-build.*.*", record)
    return session, calls


def no_sleep():
    slept = []
    return slept, slept.append


def as_params(parameters: dict) -> list:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]


# --- package and upload ------------------------------------------------------


def test_package_is_deterministic_and_ships_no_caches(source, tmp_path, capsys):
    assert deploy.main(["package", "--source", str(source), "--out", str(tmp_path / "a")]) == 0
    (source / "traffic_glue" / "schema.py").touch()  # a newer mtime must not change the zip
    assert deploy.main(["package", "--source", str(source), "--out", str(tmp_path / "b")]) == 0

    first, second = (tmp_path / d / "traffic_glue.zip" for d in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()
    names = zipfile.ZipFile(first).namelist()
    assert "traffic_glue/schema.py" in names and "traffic_glue/__init__.py" in names
    assert names == sorted(names)
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n or "/." in n]
    assert {i.date_time for i in zipfile.ZipFile(first).infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert (tmp_path / "a" / "traffic_transform.py").read_text() == "# stand-in job script\n"
    out = capsys.readouterr().out
    assert f"{first}  {first.stat().st_size} bytes" in out
    assert f"{tmp_path / 'a' / 'traffic_transform.py'}  22 bytes" in out


def test_package_names_a_missing_script(source, tmp_path, capsys):
    (source / "traffic_transform.py").unlink()
    assert deploy.main(["package", "--source", str(source), "--out", str(tmp_path)]) == 1
    assert "traffic_transform.py is missing" in capsys.readouterr().err


def test_upload_puts_both_artifacts_with_sse_kms(source, tmp_path, capsys):
    """In-process moto: the objects land under the default keys, KMS-encrypted."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
        key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234"
        argv = ["upload", "--bucket", "artifacts", "--kms-key-id", key_arn,
                "--source", str(source), "--out", str(tmp_path / "build")]
        assert deploy.main(argv) == 0

        for key, local in (("glue/traffic_glue.zip", "traffic_glue.zip"),
                           ("glue/traffic_transform.py", "traffic_transform.py")):
            head = s3.head_object(Bucket="artifacts", Key=key)
            assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn)
            body = s3.get_object(Bucket="artifacts", Key=key)["Body"].read()
            assert body == (tmp_path / "build" / local).read_bytes()
    out = capsys.readouterr().out
    assert "uploaded s3://artifacts/glue/traffic_glue.zip" in out
    assert "uploaded s3://artifacts/glue/traffic_transform.py" in out


def test_upload_defaults_to_the_foundation_stacks_bucket_and_key(source, tmp_path):
    """In-process moto: the foundation stand-in stack's outputs name the bucket and key."""
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(StackName="traffic-glue-foundation", TemplateBody=FOUNDATION_STAND_IN.read_text(),
                         Capabilities=["CAPABILITY_NAMED_IAM"])
        foundation = deploy.stack_outputs(cfn, "traffic-glue-foundation")
        argv = ["upload", "--library-key", "lib/v2.zip", "--source", str(source), "--out", str(tmp_path)]
        assert deploy.main(argv) == 0
        head = boto3.client("s3", region_name=REGION).head_object(
            Bucket=foundation["ArtifactsBucketName"], Key="lib/v2.zip")
        assert head["SSEKMSKeyId"] == foundation["KmsKeyArn"]


# --- deploy ------------------------------------------------------------------


def test_deploy_end_to_end_against_moto_server(endpoint, source, tmp_path, capsys):
    """Both stand-in stacks through main(); the calls sent are recorded on the session."""
    session, calls = recording_session()
    slept, sleep = no_sleep()
    argv = ["deploy", "--foundation-template", str(FOUNDATION_STAND_IN),
            "--workflow-template", str(WORKFLOW_STAND_IN), "--source", str(source),
            "--out", str(tmp_path / "build"), "--workers", "5", "--semantics", "athena",
            "--schedule", "cron(0 4 * * ? *)", "--raw-prefix", "landing/",
            "--parameter", "CuratedPrefix=minutes/",
            "--poll-seconds", "0"]
    assert deploy.main(argv, session=session, sleep=sleep) == 0

    creates = [params for op, params in calls if op == "CreateStack"]
    assert [c["StackName"] for c in creates] == ["traffic-glue-foundation", "traffic-glue-workflow"]
    assert all(c["Capabilities"] == ["CAPABILITY_NAMED_IAM"] for c in creates)
    assert creates[0]["TemplateBody"] == FOUNDATION_STAND_IN.read_text()
    assert creates[0]["Parameters"] == as_params(
        {"ProjectName": "traffic-glue", "DatabaseName": "traffic", "RawPrefix": "landing/"})
    cfn = boto3.client("cloudformation")
    foundation = deploy.stack_outputs(cfn, "traffic-glue-foundation")
    assert creates[1]["Parameters"] == as_params({
        **{key: foundation[key] for key in deploy.SHARED_OUTPUTS},
        "ProjectName": "traffic-glue",
        "ScriptKey": "glue/traffic_transform.py",
        "LibraryKey": "glue/traffic_glue.zip",
        "WorkerType": "G.1X",
        "NumberOfWorkers": "5",
        "Semantics": "athena",
        "Schedule": "cron(0 4 * * ? *)",
        "RawPrefix": "landing/",
        "CuratedPrefix": "minutes/",
    })
    assert foundation["GlueRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/traffic-glue-glue"

    puts = [params for op, params in calls if op == "PutObject"]
    bucket = f"traffic-glue-artifacts-{ACCOUNT}"
    assert [(p["Bucket"], p["Key"], p["ServerSideEncryption"], p["SSEKMSKeyId"]) for p in puts] == [
        (bucket, "glue/traffic_transform.py", "aws:kms", foundation["KmsKeyArn"]),
        (bucket, "glue/traffic_glue.zip", "aws:kms", foundation["KmsKeyArn"]),
    ]
    zipped = boto3.client("s3").get_object(Bucket=bucket, Key="glue/traffic_glue.zip")["Body"].read()
    assert "traffic_glue/schema.py" in zipfile.ZipFile(io.BytesIO(zipped)).namelist()

    out = capsys.readouterr().out.splitlines()
    events = [line.split("  ")[1:3] for line in out if line.startswith("20")]
    assert events == [
        ["traffic-glue-foundation", "CREATE_IN_PROGRESS"], ["traffic-glue-foundation", "CREATE_COMPLETE"],
        ["traffic-glue-workflow", "CREATE_IN_PROGRESS"], ["traffic-glue-workflow", "CREATE_COMPLETE"],
    ]
    assert "WorkflowName=traffic-glue-workflow" in out and "JobName=traffic-glue-transform" in out

    # A second deploy updates both stacks and prints only the new events.
    calls.clear()
    assert deploy.main(argv, session=session, sleep=sleep) == 0
    assert [p["StackName"] for op, p in calls if op == "UpdateStack"] == [
        "traffic-glue-foundation", "traffic-glue-workflow"]
    out = capsys.readouterr().out
    assert "CREATE_" not in out and out.count("UPDATE_COMPLETE") == 2


NO_OP_TEMPLATE = """
Parameters:
  ProjectName: {Type: String}
Resources:
  Group:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/aws-glue/${ProjectName}"
Outputs:
  GroupName: {Value: !Ref Group}
"""


def test_no_updates_to_perform_is_success(capsys):
    """In-process moto raises CloudFormation's own "No updates are to be performed."."""
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name=REGION)
        parameters = {"ProjectName": "p"}
        first = deploy.deploy_stack(cfn, "s", NO_OP_TEMPLATE, parameters, sleep=None, poll_seconds=0)
        again = deploy.deploy_stack(cfn, "s", NO_OP_TEMPLATE, parameters, sleep=None, poll_seconds=0)
        assert first == again == {"GroupName": "/aws-glue/p"}
        statuses = [e["ResourceStatus"] for e in cfn.describe_stack_events(StackName="s")["StackEvents"]]
        assert "UPDATE_IN_PROGRESS" not in statuses
    assert capsys.readouterr().out.endswith("updating stack s\nstack s: no changes\n")


def _event(event_id, seconds, logical_id, status, reason=None, resource_type="AWS::S3::Bucket"):
    event = {"StackId": "arn:stack", "EventId": event_id, "StackName": "traffic-glue-foundation",
             "LogicalResourceId": logical_id, "ResourceType": resource_type,
             "Timestamp": T0 + dt.timedelta(seconds=seconds), "ResourceStatus": status}
    if reason:
        event["ResourceStatusReason"] = reason
    return event


def _stack(status, reason=None):
    stack = {"StackName": "traffic-glue-foundation", "StackStatus": status, "CreationTime": T0}
    if reason:
        stack["StackStatusReason"] = reason
    return {"Stacks": [stack]}


def test_failed_stack_exits_1_naming_the_stack_and_the_failed_resource(source, tmp_path, capsys):
    """Stubber: moto never fails or rolls back a stack. Events arrive over two polls,
    newest first, and each is printed once, oldest first."""
    cfn, stub = stubbed("cloudformation")
    name = {"StackName": "traffic-glue-foundation"}
    stack = "traffic-glue-foundation"
    started = _event("e1", 0, stack, "CREATE_IN_PROGRESS", "User Initiated", "AWS::CloudFormation::Stack")
    raw = _event("e2", 5, "RawBucket", "CREATE_FAILED", "traffic-raw already exists")
    key = _event("e3", 6, "Key", "CREATE_FAILED", "Resource creation cancelled", "AWS::KMS::Key")
    rolling = _event("e4", 7, stack, "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [RawBucket, Key].",
                     "AWS::CloudFormation::Stack")
    rolled = _event("e5", 20, stack, "ROLLBACK_COMPLETE", None, "AWS::CloudFormation::Stack")

    stub.add_client_error("describe_stacks", "ValidationError", f"Stack with id {stack} does not exist",
                          expected_params=name)
    stub.add_response("create_stack", {"StackId": "arn:stack"}, {
        **name, "TemplateBody": FOUNDATION_STAND_IN.read_text(), "Capabilities": ["CAPABILITY_NAMED_IAM"],
        "Parameters": as_params({"ProjectName": "traffic-glue", "DatabaseName": "traffic"})})
    stub.add_response("describe_stacks", _stack("CREATE_IN_PROGRESS"), name)
    stub.add_response("describe_stack_events", {"StackEvents": [raw, started]}, name)
    stub.add_response("describe_stacks", _stack("ROLLBACK_COMPLETE"), name)
    stub.add_response("describe_stack_events", {"StackEvents": [rolled, rolling, key, raw, started]}, name)
    slept, sleep = no_sleep()
    argv = ["deploy", "--foundation-template", str(FOUNDATION_STAND_IN), "--source", str(source),
            "--out", str(tmp_path), "--poll-seconds", "3"]
    with stub:
        assert deploy.main(argv, session=FakeSession(cloudformation=cfn), sleep=sleep) == 1
    stub.assert_no_pending_responses()

    assert slept == [3.0]
    captured = capsys.readouterr()
    assert captured.err == (
        "error: stack traffic-glue-foundation ended ROLLBACK_COMPLETE: RawBucket (AWS::S3::Bucket) "
        "CREATE_FAILED: traffic-raw already exists\n")
    printed = [line for line in captured.out.splitlines() if line.startswith("2024")]
    assert printed == [
        "2024-03-04T05:00:00Z  traffic-glue-foundation  CREATE_IN_PROGRESS  User Initiated",
        "2024-03-04T05:00:05Z  RawBucket  CREATE_FAILED  traffic-raw already exists",
        "2024-03-04T05:00:06Z  Key  CREATE_FAILED  Resource creation cancelled",
        "2024-03-04T05:00:07Z  traffic-glue-foundation  ROLLBACK_IN_PROGRESS  "
        "The following resource(s) failed to create: [RawBucket, Key].",
        "2024-03-04T05:00:20Z  traffic-glue-foundation  ROLLBACK_COMPLETE",
    ]


def test_update_prints_only_this_updates_events_and_fails_on_update_rollback():
    """Stubber: an update that rolls back; the events before it are not printed again."""
    cfn, stub = stubbed("cloudformation")
    name = {"StackName": "traffic-glue-foundation"}
    stack = "traffic-glue-foundation"
    old = _event("old", 0, stack, "CREATE_COMPLETE", None, "AWS::CloudFormation::Stack")
    started = _event("u1", 60, stack, "UPDATE_IN_PROGRESS", "User Initiated", "AWS::CloudFormation::Stack")
    role = _event("u2", 61, "GlueRole", "UPDATE_FAILED", "Access denied", "AWS::IAM::Role")
    done = _event("u3", 70, stack, "UPDATE_ROLLBACK_COMPLETE", None, "AWS::CloudFormation::Stack")
    stub.add_response("describe_stacks", _stack("CREATE_COMPLETE"), name)
    stub.add_response("describe_stack_events", {"StackEvents": [old]}, name)
    stub.add_response("update_stack", {"StackId": "arn:stack"}, {
        **name, "TemplateBody": "{}", "Capabilities": ["CAPABILITY_NAMED_IAM"],
        "Parameters": as_params({"ProjectName": "x"})})
    stub.add_response("describe_stacks", _stack("UPDATE_ROLLBACK_COMPLETE"), name)
    stub.add_response("describe_stack_events", {"StackEvents": [done, role, started, old]}, name)
    with stub, pytest.raises(deploy.DeployError) as failure:
        deploy.deploy_stack(cfn, stack, "{}", {"ProjectName": "x"}, sleep=None, poll_seconds=0)
    assert str(failure.value) == (
        "stack traffic-glue-foundation ended UPDATE_ROLLBACK_COMPLETE: "
        "GlueRole (AWS::IAM::Role) UPDATE_FAILED: Access denied")


def test_a_rollback_complete_stack_is_not_updated():
    """Stubber: only describe_stacks is answered, so no update is attempted."""
    cfn, stub = stubbed("cloudformation")
    stub.add_response("describe_stacks", _stack("ROLLBACK_COMPLETE"), {"StackName": "s"})
    with stub, pytest.raises(deploy.DeployError, match="s is ROLLBACK_COMPLETE .* delete-stack --stack-name s"):
        deploy.deploy_stack(cfn, "s", "{}", {}, sleep=None, poll_seconds=0)


def test_workflow_parameters_name_a_missing_foundation_output():
    with pytest.raises(deploy.DeployError, match="no output GlueRoleArn, SecurityConfigurationName"):
        deploy.workflow_parameters(
            {k: "v" for k in deploy.SHARED_OUTPUTS[:-2]}, project="p", script_key="s", library_key="l",
            worker_type="G.1X", workers=2, semantics="corrected")


# --- start-workflow ----------------------------------------------------------


def _create_stand_in_workflow_stack(cfn):
    parameters = {key: f"{key}-value" for key in deploy.SHARED_OUTPUTS}
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


def test_start_workflow_without_dates_sends_no_run_properties():
    """Stubber: expected_params proves RunProperties is left out, not sent empty."""
    glue, stub = stubbed("glue")
    stub.add_response("start_workflow_run", {"RunId": "wr_1"}, {"Name": "wf"})
    with stub:
        assert deploy.main(["start-workflow", "--workflow", "wf", "--no-follow"],
                           session=FakeSession(glue=glue)) == 0
    stub.assert_no_pending_responses()


def test_start_workflow_before_deploy_says_so(capsys):
    """Stubber: the workflow stack does not exist yet."""
    cfn, stub = stubbed("cloudformation")
    stub.add_client_error("describe_stacks", "ValidationError", "Stack with id traffic-glue-workflow does not exist",
                          expected_params={"StackName": "traffic-glue-workflow"})
    with stub:
        assert deploy.main(["start-workflow"], session=FakeSession(cloudformation=cfn)) == 1
    assert capsys.readouterr().err == (
        "error: stack traffic-glue-workflow does not exist; run `python -m tools.deploy deploy` first\n")


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


# --- runs --------------------------------------------------------------------


def test_runs_lists_workflow_and_job_runs(capsys):
    """In-process moto; the names come from the workflow stand-in stack's outputs."""
    with mock_aws():
        cfn, glue = (boto3.client(s, region_name=REGION) for s in ("cloudformation", "glue"))
        _create_stand_in_workflow_stack(cfn)
        glue.create_workflow(Name="traffic-glue-workflow")
        glue.create_job(Name="traffic-glue-transform", Role="arn:aws:iam::123456789012:role/glue",
                        Command={"Name": "glueetl", "ScriptLocation": "s3://a/b.py"})
        wr = glue.start_workflow_run(Name="traffic-glue-workflow", RunProperties={
            "start_date": "2024-01-01", "end_date": "2024-01-31"})["RunId"]
        jr = glue.start_job_run(JobName="traffic-glue-transform", Arguments={
            "--start_date": "2024-01-01", "--end_date": "2024-01-02", "--semantics": "athena"})["JobRunId"]
        assert deploy.main(["runs", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "workflow traffic-glue-workflow: last 3 runs"
    assert lines[1].startswith(f"  {wr}  RUNNING  started 20")
    assert lines[1].endswith("  completed -  end_date=2024-01-31 start_date=2024-01-01")
    assert lines[2] == "job traffic-glue-transform: last 3 runs"
    assert lines[3].startswith(f"  {jr}  SUCCEEDED  started 20")
    assert lines[3].endswith("  duration 123 s  end_date=2024-01-02 start_date=2024-01-01")


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


# --- the real templates keep the contract deploy.py relies on ----------------


@pytest.mark.parametrize("template, real", [
    (FOUNDATION_STAND_IN, REPO_ROOT / "infra" / "foundation.yaml"),
    (WORKFLOW_STAND_IN, REPO_ROOT / "workflows" / "traffic_workflow.yaml"),
])
def test_templates_declare_what_deploy_passes_and_reads(template, real):
    """The stand-ins always; the real templates once they exist."""
    from workflows.template import load_template

    workflow_parameters = set(deploy.workflow_parameters(
        {key: "v" for key in deploy.SHARED_OUTPUTS}, project="p", script_key="s", library_key="l",
        worker_type="G.1X", workers=2, semantics="corrected", schedule="cron(0 3 * * ? *)", extra={"RawPrefix": "raw/"}))
    contract = {
        "foundation.yaml": ({"ProjectName", "DatabaseName", "RawPrefix", "TempExpiryDays"},
                            {*deploy.SHARED_OUTPUTS, "KmsKeyArn"}),
        "workflow.yaml": (workflow_parameters, {"WorkflowName", "JobName"}),
        "traffic_workflow.yaml": (workflow_parameters, {"WorkflowName", "JobName"}),
    }
    for path in (template, real):
        if not path.exists():
            continue
        body = load_template(path)
        parameters, outputs = contract[path.name]
        assert parameters <= set(body.get("Parameters", {})), path
        assert outputs <= set(body.get("Outputs", {})), path
