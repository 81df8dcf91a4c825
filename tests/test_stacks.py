"""tools/stacks.py: packaging, uploading, and deploying the CloudFormation stacks, mostly
through `deploy.main`, against moto and botocore Stubbers. The fakes, and what moto
implements and what it does not, are in test_deploy.py.
"""

import datetime as dt
import io
import json
import shutil
import zipfile

import boto3
import pytest
from moto import mock_aws

from tests.aws_fakes import (
    ACCOUNT,
    FOUNDATION_STAND_IN,
    FakeSession,
    REGION,
    REPO_ROOT,
    T0,
    WORKFLOW_STAND_IN,
    as_params,
    no_sleep,
    stubbed,
)
from tools import deploy, stacks


# --- fixtures ----------------------------------------------------------------


@pytest.fixture
def source(tmp_path):
    """A copy of glue_jobs/traffic_glue plus caches that must not ship, and the job scripts."""
    root = tmp_path / "glue_jobs"
    shutil.copytree(REPO_ROOT / "glue_jobs" / "traffic_glue", root / "traffic_glue",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (root / "traffic_glue" / "__pycache__").mkdir()
    (root / "traffic_glue" / "__pycache__" / "schema.cpython-311.pyc").write_bytes(b"\0cache")
    (root / "traffic_glue" / "stale.pyc").write_bytes(b"\0cache")
    (root / "traffic_glue" / ".DS_Store").write_bytes(b"finder")
    (root / "traffic_transform.py").write_text("# stand-in job script\n")
    (root / "traffic_table_maintenance.py").write_text("# stand-in maintenance script\n")
    (root / "traffic_daily_summary.py").write_text("# stand-in summary script\n")
    (root / "traffic_fetch_configuration.py").write_text("# stand-in fetch script\n")
    return root


def recording_session():
    """A real boto3 session that records every request's operation and parameters."""
    session = boto3.session.Session()
    calls = []

    def record(params, model, **_):
        calls.append((model.name, json.loads(json.dumps(params, default=str))))

    session.events.register("before-parameter-build.*.*", record)
    return session, calls


# --- package and upload ------------------------------------------------------


def test_package_is_deterministic_and_ships_no_caches(source, tmp_path, capsys):
    assert deploy.main(["package", "--source", str(source), "--out", str(tmp_path / "a")]) == 0
    (source / "traffic_glue" / "compute" / "schema.py").touch()  # a newer mtime must not change the zip
    assert deploy.main(["package", "--source", str(source), "--out", str(tmp_path / "b")]) == 0

    first, second = (tmp_path / d / "traffic_glue.zip" for d in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()
    names = zipfile.ZipFile(first).namelist()
    assert "traffic_glue/compute/schema.py" in names and "traffic_glue/__init__.py" in names
    assert names == sorted(names)
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n or "/." in n]
    assert {i.date_time for i in zipfile.ZipFile(first).infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert (tmp_path / "a" / "traffic_transform.py").read_text() == "# stand-in job script\n"
    assert (tmp_path / "a" / "traffic_table_maintenance.py").read_text() == "# stand-in maintenance script\n"
    assert (tmp_path / "a" / "traffic_daily_summary.py").read_text() == "# stand-in summary script\n"
    out = capsys.readouterr().out
    assert f"{first}  {first.stat().st_size} bytes" in out
    assert f"{tmp_path / 'a' / 'traffic_transform.py'}  22 bytes" in out
    assert f"{tmp_path / 'a' / 'traffic_table_maintenance.py'}  30 bytes" in out
    assert f"{tmp_path / 'a' / 'traffic_daily_summary.py'}  26 bytes" in out


@pytest.mark.parametrize("script", sorted(stacks.JOB_SCRIPTS.values()))
def test_package_names_a_missing_script(source, tmp_path, capsys, script):
    (source / script).unlink()
    assert deploy.main(["package", "--source", str(source), "--out", str(tmp_path)]) == 1
    assert f"{script} is missing" in capsys.readouterr().err


def test_package_ships_the_real_job_scripts(tmp_path):
    artifacts = stacks.package(REPO_ROOT / "glue_jobs", tmp_path)
    assert set(artifacts) == {"script", "maintenance_script", "summary_script", "fetch_script", "library"}
    assert {name: path.name for name, path in artifacts.items()} == stacks.ARTIFACT_FILES
    for name, script in stacks.JOB_SCRIPTS.items():
        assert artifacts[name].read_bytes() == (REPO_ROOT / "glue_jobs" / script).read_bytes()


def test_upload_puts_every_artifact_with_sse_kms(source, tmp_path, capsys):
    """In-process moto: the objects land under the default keys, KMS-encrypted."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
        key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234"
        argv = ["upload", "--bucket", "artifacts", "--kms-key-id", key_arn,
                "--source", str(source), "--out", str(tmp_path / "build")]
        assert deploy.main(argv) == 0

        uploaded = ("traffic_glue.zip", "traffic_transform.py", "traffic_table_maintenance.py",
                    "traffic_daily_summary.py", "traffic_fetch_configuration.py")
        for local in uploaded:
            key = f"glue/{local}"
            head = s3.head_object(Bucket="artifacts", Key=key)
            assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn)
            body = s3.get_object(Bucket="artifacts", Key=key)["Body"].read()
            assert body == (tmp_path / "build" / local).read_bytes()
        listed = s3.list_objects_v2(Bucket="artifacts")["Contents"]
        assert sorted(o["Key"] for o in listed) == sorted(f"glue/{local}" for local in uploaded)
    out = capsys.readouterr().out
    for local in uploaded:
        assert f"uploaded s3://artifacts/glue/{local}" in out


@pytest.mark.parametrize("options, message", [
    (["--maintenance-script-key", "glue/traffic_transform.py"],
     "--script-key and --maintenance-script-key are both glue/traffic_transform.py"),
    (["--summary-script-key", "lib.zip", "--library-key", "lib.zip"],
     "--summary-script-key and --library-key are both lib.zip"),
    (["--script-key", "k", "--maintenance-script-key", "k", "--summary-script-key", "k"],
     "--script-key and --maintenance-script-key and --summary-script-key are both k"),
])
def test_upload_refuses_two_artifacts_under_one_key(source, tmp_path, capsys, options, message):
    """Checked before any upload: the second put would overwrite the first."""
    argv = ["upload", "--bucket", "artifacts", *options, "--source", str(source), "--out", str(tmp_path)]
    session = FakeSession()
    assert deploy.main(argv, session=session) == 1
    assert capsys.readouterr().err == f"error: {message}: every artifact needs a key of its own\n"
    assert session.asked == []


def test_upload_defaults_to_the_foundation_stacks_bucket_and_key(source, tmp_path):
    """In-process moto: the foundation stand-in stack's outputs name the bucket and key."""
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(StackName="traffic-glue-foundation", TemplateBody=FOUNDATION_STAND_IN.read_text(),
                         Capabilities=["CAPABILITY_NAMED_IAM"])
        foundation = stacks.stack_outputs(cfn, "traffic-glue-foundation")
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
            "--alert-email", "ops@example.com", "--parameter", "CuratedPrefix=minutes/",
            "--poll-seconds", "0"]
    assert deploy.main(argv, session=session, sleep=sleep) == 0

    creates = [params for op, params in calls if op == "CreateStack"]
    assert [c["StackName"] for c in creates] == ["traffic-glue-foundation", "traffic-glue-workflow"]
    assert all(c["Capabilities"] == ["CAPABILITY_NAMED_IAM"] for c in creates)
    assert creates[0]["TemplateBody"] == FOUNDATION_STAND_IN.read_text()
    assert creates[0]["Parameters"] == as_params(
        {"ProjectName": "traffic-glue", "DatabaseName": "traffic", "RawPrefix": "landing/"})
    cfn = boto3.client("cloudformation")
    foundation = stacks.stack_outputs(cfn, "traffic-glue-foundation")
    assert creates[1]["Parameters"] == as_params({
        **{key: foundation[key] for key in stacks.SHARED_OUTPUTS},
        "ProjectName": "traffic-glue",
        "ScriptKey": "glue/traffic_transform.py",
        "MaintenanceScriptKey": "glue/traffic_table_maintenance.py",
        "SummaryScriptKey": "glue/traffic_daily_summary.py",
        "FetchScriptKey": "glue/traffic_fetch_configuration.py",
        "LibraryKey": "glue/traffic_glue.zip",
        "WorkerType": "G.1X",
        "NumberOfWorkers": "5",
        "Semantics": "athena",
        "Schedule": "cron(0 4 * * ? *)",
        "RawPrefix": "landing/",
        "AlertEmail": "ops@example.com",
        "CuratedPrefix": "minutes/",
    })
    assert foundation["GlueRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/traffic-glue-glue"

    puts = [params for op, params in calls if op == "PutObject"]
    bucket = f"traffic-glue-artifacts-{ACCOUNT}"
    assert [(p["Bucket"], p["Key"], p["ServerSideEncryption"], p["SSEKMSKeyId"]) for p in puts] == [
        (bucket, "glue/traffic_transform.py", "aws:kms", foundation["KmsKeyArn"]),
        (bucket, "glue/traffic_table_maintenance.py", "aws:kms", foundation["KmsKeyArn"]),
        (bucket, "glue/traffic_daily_summary.py", "aws:kms", foundation["KmsKeyArn"]),
        (bucket, "glue/traffic_fetch_configuration.py", "aws:kms", foundation["KmsKeyArn"]),
        (bucket, "glue/traffic_glue.zip", "aws:kms", foundation["KmsKeyArn"]),
    ]
    zipped = boto3.client("s3").get_object(Bucket=bucket, Key="glue/traffic_glue.zip")["Body"].read()
    assert "traffic_glue/compute/schema.py" in zipfile.ZipFile(io.BytesIO(zipped)).namelist()

    out = capsys.readouterr().out.splitlines()
    events = [line.split("  ")[1:3] for line in out if line.startswith("20")]
    assert events == [
        ["traffic-glue-foundation", "CREATE_IN_PROGRESS"], ["traffic-glue-foundation", "CREATE_COMPLETE"],
        ["traffic-glue-workflow", "CREATE_IN_PROGRESS"], ["traffic-glue-workflow", "CREATE_COMPLETE"],
    ]
    assert "WorkflowName=traffic-glue-workflow" in out and "JobName=traffic-glue-transform" in out
    assert "MaintenanceJobName=traffic-glue-table-maintenance" in out
    assert "SummaryJobName=traffic-glue-daily-summary" in out

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
        first = stacks.deploy_stack(cfn, "s", NO_OP_TEMPLATE, parameters, sleep=None, poll_seconds=0)
        again = stacks.deploy_stack(cfn, "s", NO_OP_TEMPLATE, parameters, sleep=None, poll_seconds=0)
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
    with stub, pytest.raises(stacks.DeployError) as failure:
        stacks.deploy_stack(cfn, stack, "{}", {"ProjectName": "x"}, sleep=None, poll_seconds=0)
    assert str(failure.value) == (
        "stack traffic-glue-foundation ended UPDATE_ROLLBACK_COMPLETE: "
        "GlueRole (AWS::IAM::Role) UPDATE_FAILED: Access denied")


def test_a_rollback_complete_stack_is_not_updated():
    """Stubber: only describe_stacks is answered, so no update is attempted."""
    cfn, stub = stubbed("cloudformation")
    stub.add_response("describe_stacks", _stack("ROLLBACK_COMPLETE"), {"StackName": "s"})
    with stub, pytest.raises(stacks.DeployError, match="s is ROLLBACK_COMPLETE .* delete-stack --stack-name s"):
        stacks.deploy_stack(cfn, "s", "{}", {}, sleep=None, poll_seconds=0)


def test_workflow_parameters_name_a_missing_foundation_output():
    with pytest.raises(stacks.DeployError, match="no output GlueRoleArn, SecurityConfigurationName"):
        stacks.workflow_parameters(
            {k: "v" for k in stacks.SHARED_OUTPUTS[:-2]}, project="p", keys={"script": "s"},
            worker_type="G.1X", workers=2, semantics="corrected")


def test_workflow_parameters_pass_each_artifacts_key_to_its_parameter():
    foundation = {key: "v" for key in stacks.SHARED_OUTPUTS}
    common = dict(project="p", worker_type="G.1X", workers=2, semantics="corrected")
    parameters = stacks.workflow_parameters(foundation, keys={"summary_script": "s.py", "library": "l.zip"},
                                            **common)
    assert (parameters["SummaryScriptKey"], parameters["LibraryKey"]) == ("s.py", "l.zip")
    assert "ScriptKey" not in parameters  # left out: the template's default
    with pytest.raises(stacks.DeployError, match="no workflow stack parameter takes the key of report"):
        stacks.workflow_parameters(foundation, keys={"report": "r"}, **common)


def test_every_artifact_has_an_option_and_a_key_parameter_defaulting_alike():
    """deploy's default key of each artifact is the workflow template's Default of the
    parameter it is passed as, so a deploy without key options changes nothing."""
    from workflows.template import load_template

    assert set(stacks.KEY_PARAMETERS) == set(stacks.ARTIFACT_FILES) == set(deploy.KEY_OPTIONS)
    for path in (REPO_ROOT / "workflows" / "traffic_workflow.yaml", WORKFLOW_STAND_IN):
        declared = load_template(path)["Parameters"]
        defaults = {name: declared[parameter]["Default"] for name, parameter in stacks.KEY_PARAMETERS.items()}
        assert defaults == deploy.DEFAULT_KEYS, path


# --- the real templates keep the contract deploy.py relies on ----------------


@pytest.mark.parametrize("template, real", [
    (FOUNDATION_STAND_IN, REPO_ROOT / "infra" / "foundation.yaml"),
    (WORKFLOW_STAND_IN, REPO_ROOT / "workflows" / "traffic_workflow.yaml"),
])
def test_templates_declare_what_deploy_passes_and_reads(template, real):
    """The stand-ins always; the real templates once they exist."""
    from workflows.template import load_template

    workflow_parameters = set(stacks.workflow_parameters(
        {key: "v" for key in stacks.SHARED_OUTPUTS}, project="p",
        keys={name: f"k/{name}" for name in stacks.ARTIFACT_FILES},
        worker_type="G.1X", workers=2, semantics="corrected", schedule="cron(0 3 * * ? *)",
        extra={"RawPrefix": "raw/"}))
    assert set(stacks.KEY_PARAMETERS.values()) <= workflow_parameters
    workflow_outputs = {"WorkflowName", "JobName", "MaintenanceJobName", "SummaryJobName"}
    contract = {
        "foundation.yaml": ({"ProjectName", "DatabaseName", "RawPrefix", "TempExpiryDays"},
                            {*stacks.SHARED_OUTPUTS, "KmsKeyArn"}),
        "workflow.yaml": (workflow_parameters, workflow_outputs),
        "traffic_workflow.yaml": (workflow_parameters, workflow_outputs),
    }
    for path in (template, real):
        if not path.exists():
            continue
        body = load_template(path)
        parameters, outputs = contract[path.name]
        assert parameters <= set(body.get("Parameters", {})), path
        assert outputs <= set(body.get("Outputs", {})), path
