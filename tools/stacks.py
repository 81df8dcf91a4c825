"""Package the library, upload the artifacts and deploy the CloudFormation stacks with boto3.

The functions take a client and plain values, and `sleep` is passed in, so the tests
drive them without waiting; `tools.deploy` is their command line. `DeployError`,
`Sleep` and `_utc` are shared with `tools.runs`, which imports them from here.
"""

import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from botocore.exceptions import ClientError

LIBRARY_PACKAGE = "traffic_glue"
LIBRARY_ZIP = "traffic_glue.zip"
JOB_SCRIPT = "traffic_transform.py"
MAINTENANCE_SCRIPT = "traffic_table_maintenance.py"
SUMMARY_SCRIPT = "traffic_daily_summary.py"
FETCH_SCRIPT = "traffic_fetch_configuration.py"  # a Python shell job: the library without Spark
# The job scripts shipped beside the library: artifact name -> file in glue_jobs/.
JOB_SCRIPTS = {
    "script": JOB_SCRIPT,
    "maintenance_script": MAINTENANCE_SCRIPT,
    "summary_script": SUMMARY_SCRIPT,
    "fetch_script": FETCH_SCRIPT,
}
# Every artifact `package` builds: artifact name -> its file name in the build folder.
ARTIFACT_FILES = {**JOB_SCRIPTS, "library": LIBRARY_ZIP}
# The workflow stack parameter that holds each artifact's key in the artifacts bucket.
KEY_PARAMETERS = {
    "script": "ScriptKey",
    "maintenance_script": "MaintenanceScriptKey",
    "summary_script": "SummaryScriptKey",
    "fetch_script": "FetchScriptKey",
    "library": "LibraryKey",
}

# Zip entries carry this timestamp (the earliest a zip can hold), so the archive
# changes only when a file's content does, not when a checkout touches mtimes.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)

# Foundation outputs that the workflow stack takes as parameters of the same name.
SHARED_OUTPUTS = (
    "RawBucketName",
    "CuratedBucketName",
    "ArtifactsBucketName",
    "TempBucketName",
    "DatabaseName",
    "ConfigurationPrefix",
    "ConfigurationFetchRoleArn",
    # The alerts topic's key.
    "KmsKeyArn",
    "GlueRoleArn",
    "SecurityConfigurationName",
)
CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation accepts inline
STACK_SUCCEEDED = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
NO_UPDATES = "No updates are to be performed"

Sleep = Callable[[float], None]


class DeployError(Exception):
    """A failure to report in one line and exit 1 on (no traceback)."""


# --- package and upload ------------------------------------------------------


def _shipped(relative: Path) -> bool:
    if relative.suffix in (".pyc", ".pyo"):
        return False
    return not any(part == "__pycache__" or part.startswith(".") for part in relative.parts)


def library_files(package_dir: Path) -> list:
    """The package's files that go into the zip, in archive order."""
    files = [
        path
        for path in package_dir.rglob("*")
        if path.is_file() and _shipped(path.relative_to(package_dir))
    ]
    return sorted(files, key=lambda path: path.relative_to(package_dir).as_posix())


def write_library_zip(package_dir: Path, zip_path: Path) -> None:
    """Zip `package_dir` so that the archive root holds `<package>/...`, byte-reproducibly."""
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in library_files(package_dir):
            relative = path.relative_to(package_dir).as_posix()
            entry = zipfile.ZipInfo(f"{package_dir.name}/{relative}", date_time=ZIP_TIMESTAMP)
            entry.create_system = 3  # unix, whichever OS builds it
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes(), compresslevel=9)


def package(source_dir: Path, out_dir: Path) -> dict:
    """Build the library zip and copy the job scripts into `out_dir`:
    {artifact name (ARTIFACT_FILES): path}."""
    package_dir = Path(source_dir) / LIBRARY_PACKAGE
    scripts = {name: Path(source_dir) / file for name, file in JOB_SCRIPTS.items()}
    for needed in (package_dir / "__init__.py", *scripts.values()):
        if not needed.is_file():
            raise DeployError(f"cannot package: {needed} is missing")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    artifacts = {name: out_dir / script.name for name, script in scripts.items()}
    artifacts["library"] = out_dir / LIBRARY_ZIP
    write_library_zip(package_dir, artifacts["library"])
    for name, script in scripts.items():
        shutil.copyfile(script, artifacts[name])
    for path in artifacts.values():
        print(f"{path}  {path.stat().st_size} bytes")
    return artifacts


def upload_artifacts(s3, bucket: str, files: dict, kms_key_id: Optional[str] = None) -> list:
    """Put each {key: local path} into `bucket`, encrypted with KMS; return the s3 URIs."""
    encryption = {"ServerSideEncryption": "aws:kms"}
    if kms_key_id:
        encryption["SSEKMSKeyId"] = kms_key_id
    uris = []
    for key, path in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=Path(path).read_bytes(), **encryption)
        uris.append(f"s3://{bucket}/{key}")
        print(f"uploaded {uris[-1]}")
    return uris


# --- CloudFormation ----------------------------------------------------------


def describe_stack(cfn, name: str) -> Optional[dict]:
    """The stack's description, or None when no stack has that name."""
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in error.response["Error"].get("Message", ""):
            return None
        raise


def outputs_of(stack: dict) -> dict:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stack_outputs(cfn, name: str) -> dict:
    stack = describe_stack(cfn, name)
    if stack is None:
        raise DeployError(f"stack {name} does not exist; run `python -m tools.deploy deploy` first")
    return outputs_of(stack)


def required_output(outputs: dict, key: str, stack: str) -> str:
    if key not in outputs:
        raise DeployError(f"stack {stack} has no output {key}")
    return outputs[key]


def new_stack_events(cfn, name: str, after_event_id: Optional[str]) -> list:
    """Events newer than `after_event_id` (all when None), oldest first."""
    fresh = []
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=name):
        for event in page["StackEvents"]:  # newest first
            if event["EventId"] == after_event_id:
                return fresh[::-1]
            fresh.append(event)
    return fresh[::-1]


def latest_event_id(cfn, name: str) -> Optional[str]:
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]  # newest first
    return events[0]["EventId"] if events else None


def _utc(moment: Optional[datetime]) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_event(event: dict) -> str:
    line = f"{_utc(event['Timestamp'])}  {event['LogicalResourceId']}  {event['ResourceStatus']}"
    reason = event.get("ResourceStatusReason")
    return f"{line}  {reason}" if reason else line


def wait_for_stack(cfn, name: str, after_event_id, *, sleep: Sleep, poll_seconds: float):
    """Print the stack's new events until it leaves *_IN_PROGRESS; return (stack, events)."""
    events = []
    while True:
        stack = describe_stack(cfn, name)
        if stack is None:
            raise DeployError(f"stack {name} disappeared while it was being deployed")
        fresh = new_stack_events(cfn, name, after_event_id)
        for event in fresh:
            print(format_event(event))
        if fresh:
            after_event_id = fresh[-1]["EventId"]
            events.extend(fresh)
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack, events
        sleep(poll_seconds)


def stack_failure(name: str, stack: dict, events: list) -> str:
    """One line naming the stack, its status and the first failed resource's reason."""
    failed = [e for e in events if e["ResourceStatus"].endswith("_FAILED")]
    if failed:
        first = failed[0]
        cause = (
            f"{first['LogicalResourceId']} ({first.get('ResourceType', '?')}) "
            f"{first['ResourceStatus']}: {first.get('ResourceStatusReason', 'no reason given')}"
        )
    else:
        cause = stack.get("StackStatusReason", "no failed resource reported")
    return f"stack {name} ended {stack['StackStatus']}: {cause}"


def deploy_stack(cfn, name: str, template_body: str, parameters: dict, *, sleep: Sleep,
                 poll_seconds: float) -> dict:
    """Create or update stack `name`, print its events until done, return its outputs."""
    request = {
        "StackName": name,
        "TemplateBody": template_body,
        "Parameters": [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()],
        "Capabilities": CAPABILITIES,
    }
    existing = describe_stack(cfn, name)
    if existing is None:
        print(f"creating stack {name}")
        cfn.create_stack(**request)
        last_event_id = None
    else:
        status = existing["StackStatus"]
        if status == "ROLLBACK_COMPLETE":
            raise DeployError(
                f"stack {name} is ROLLBACK_COMPLETE (its creation failed) and cannot be updated; "
                f"delete it (aws cloudformation delete-stack --stack-name {name}) and deploy again"
            )
        if status.endswith("_IN_PROGRESS"):
            raise DeployError(f"stack {name} is busy ({status}); deploy again when it is done")
        last_event_id = latest_event_id(cfn, name)
        print(f"updating stack {name}")
        try:
            cfn.update_stack(**request)
        except ClientError as error:
            if NO_UPDATES in error.response["Error"].get("Message", ""):
                print(f"stack {name}: no changes")
                return outputs_of(existing)
            raise
    stack, events = wait_for_stack(cfn, name, last_event_id, sleep=sleep, poll_seconds=poll_seconds)
    if stack["StackStatus"] not in STACK_SUCCEEDED:
        raise DeployError(stack_failure(name, stack, events))
    return outputs_of(stack)


def read_template(path: Path) -> str:
    body = Path(path).read_text(encoding="utf-8")
    if len(body.encode("utf-8")) > TEMPLATE_BODY_LIMIT:
        raise DeployError(f"{path} is over {TEMPLATE_BODY_LIMIT} bytes, too big to send inline")
    return body


def workflow_parameters(foundation: dict, *, project: str, keys: dict, worker_type: str,
                        workers: int, semantics: str, schedule: Optional[str] = None,
                        extra: Optional[dict] = None) -> dict:
    """The workflow stack's parameters: the foundation's outputs plus the deploy options;
    `keys` is {artifact name (KEY_PARAMETERS): its key in the artifacts bucket}.

    A parameter left out (an artifact not in `keys`, Schedule when not given,
    RawPrefix, ...) takes the template's default, on updates too, so a deploy always
    states the whole configuration.
    """
    missing = [key for key in SHARED_OUTPUTS if key not in foundation]
    if missing:
        raise DeployError(f"the foundation stack has no output {', '.join(missing)}")
    unknown = sorted(set(keys) - set(KEY_PARAMETERS))
    if unknown:
        raise DeployError(f"no workflow stack parameter takes the key of {', '.join(unknown)}")
    parameters = {key: foundation[key] for key in SHARED_OUTPUTS}
    parameters["ProjectName"] = project
    parameters.update({KEY_PARAMETERS[name]: key for name, key in keys.items()})
    parameters.update(
        WorkerType=worker_type,
        NumberOfWorkers=str(workers),
        Semantics=semantics,
    )
    if schedule:
        parameters["Schedule"] = schedule
    parameters.update(extra or {})
    return parameters
