"""Deploy the traffic-glue stacks and drive the Glue workflow with boto3.

    python -m tools.deploy package [--out build/]
    python -m tools.deploy upload [--bucket B] [--script-key K] [--library-key K]
    python -m tools.deploy deploy [--project traffic-glue] [--workers 2] ...
    python -m tools.deploy start-workflow [--start-date D --end-date D] [--no-follow]
    python -m tools.deploy run-job [--start-date D --end-date D] [--arg KEY=VALUE ...]
    python -m tools.deploy runs [--limit 5]

Every AWS call goes through clients of one `boto3.session.Session` built from
`--profile` / `--region`; boto3 itself honours `AWS_ENDPOINT_URL` (the tests point it
at a local moto server). The functions below take a client and plain values, and
`sleep` is passed in, so the tests drive them without waiting.
"""

import argparse
import re
import shutil
import sys
import time
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import boto3
from botocore.exceptions import BotoCoreError, ClientError

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = REPO_ROOT / "glue_jobs"
BUILD_DIR = REPO_ROOT / "build"
FOUNDATION_TEMPLATE = REPO_ROOT / "infra" / "foundation.yaml"
WORKFLOW_TEMPLATE = REPO_ROOT / "workflows" / "traffic_workflow.yaml"

LIBRARY_PACKAGE = "traffic_glue"
LIBRARY_ZIP = "traffic_glue.zip"
JOB_SCRIPT = "traffic_transform.py"
# The workflow template's ScriptKey / LibraryKey defaults.
DEFAULT_SCRIPT_KEY = "glue/traffic_transform.py"
DEFAULT_LIBRARY_KEY = "glue/traffic_glue.zip"
DEFAULT_PROJECT = "traffic-glue"
SEMANTICS = ("corrected", "athena")

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
    "GlueRoleArn",
    "SecurityConfigurationName",
)
CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation accepts inline
STACK_SUCCEEDED = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
NO_UPDATES = "No updates are to be performed"

JOB_RUN_ENDED = {"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED"}
CRAWL_FAILED = {"FAILED", "CANCELLED", "ERROR"}
WORKFLOW_RUN_ENDED = {"COMPLETED", "STOPPED", "ERROR"}
NOT_STARTED = "NOT_STARTED"

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
    """Build the library zip and copy the job script into `out_dir`: {"script": .., "library": ..}."""
    package_dir = Path(source_dir) / LIBRARY_PACKAGE
    script = Path(source_dir) / JOB_SCRIPT
    for needed in (package_dir / "__init__.py", script):
        if not needed.is_file():
            raise DeployError(f"cannot package: {needed} is missing")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    artifacts = {"script": out_dir / JOB_SCRIPT, "library": out_dir / LIBRARY_ZIP}
    write_library_zip(package_dir, artifacts["library"])
    shutil.copyfile(script, artifacts["script"])
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


def workflow_parameters(foundation: dict, *, project: str, script_key: str, library_key: str,
                        worker_type: str, workers: int, semantics: str,
                        schedule: Optional[str] = None, extra: Optional[dict] = None) -> dict:
    """The workflow stack's parameters: the foundation's outputs plus the deploy options.

    A parameter left out (Schedule when not given, RawPrefix, ...) takes the template's
    default, on updates too, so a deploy always states the whole configuration.
    """
    missing = [key for key in SHARED_OUTPUTS if key not in foundation]
    if missing:
        raise DeployError(f"the foundation stack has no output {', '.join(missing)}")
    parameters = {key: foundation[key] for key in SHARED_OUTPUTS}
    parameters.update(
        ProjectName=project,
        ScriptKey=script_key,
        LibraryKey=library_key,
        WorkerType=worker_type,
        NumberOfWorkers=str(workers),
        Semantics=semantics,
    )
    if schedule:
        parameters["Schedule"] = schedule
    parameters.update(extra or {})
    return parameters


# --- Glue runs ---------------------------------------------------------------


def _latest(runs: list) -> Optional[dict]:
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    return max(runs, key=lambda run: run.get("StartedOn") or epoch) if runs else None


def node_state(node: dict) -> tuple:
    """(state, error message) of one workflow-graph node in this run."""
    if node["Type"] == "JOB":
        run = _latest(node.get("JobDetails", {}).get("JobRuns", []))
        return (run["JobRunState"], run.get("ErrorMessage")) if run else (NOT_STARTED, None)
    if node["Type"] == "CRAWLER":
        crawl = _latest(node.get("CrawlerDetails", {}).get("Crawls", []))
        return (crawl["State"], crawl.get("ErrorMessage")) if crawl else (NOT_STARTED, None)
    return node.get("TriggerDetails", {}).get("Trigger", {}).get("State", "-"), None


def workflow_failures(run: dict) -> list:
    """Lines naming the nodes that keep the run from being a success, root causes first."""
    failures = []
    for node in run.get("Graph", {}).get("Nodes", []):
        state, error = node_state(node)
        if (node["Type"] == "JOB" and state != "SUCCEEDED") or (
            node["Type"] == "CRAWLER" and state in CRAWL_FAILED
        ):
            detail = error or ("it did not run" if state == NOT_STARTED else "no error message")
            failures.append((state == NOT_STARTED, f"{node['Type'].lower()} {node['Name']} {state}: {detail}"))
    return [line for _, line in sorted(failures, key=lambda failure: failure[0])]


def start_workflow(glue, workflow: str, run_properties: dict) -> str:
    request = {"Name": workflow}
    if run_properties:
        request["RunProperties"] = run_properties
    run_id = glue.start_workflow_run(**request)["RunId"]
    print(f"started workflow {workflow} run {run_id} {_properties(run_properties)}".rstrip())
    return run_id


def follow_workflow_run(glue, workflow: str, run_id: str, *, sleep: Sleep, poll_seconds: float) -> dict:
    """Print node and run state changes until the run ends; raise DeployError unless it succeeded."""
    states, status = {}, None
    while True:
        run = glue.get_workflow_run(Name=workflow, RunId=run_id, IncludeGraph=True)["Run"]
        for node in run.get("Graph", {}).get("Nodes", []):
            state, error = node_state(node)
            key = node.get("UniqueId", node["Name"])
            if states.get(key) != state:
                states[key] = state
                note = f" ({error})" if error else ""
                print(f"  {node['Type'].lower()} {node['Name']}: {state}{note}")
        if run["Status"] != status:
            status = run["Status"]
            print(f"workflow run {run_id}: {status}")
        if status in WORKFLOW_RUN_ENDED:
            break
        sleep(poll_seconds)
    failures = workflow_failures(run)
    jobs = [n for n in run.get("Graph", {}).get("Nodes", []) if n["Type"] == "JOB"]
    if status == "COMPLETED" and jobs and not failures:
        return run
    if not jobs and not failures:
        failures = ["the run's graph holds no job"]
    reason = "; ".join(failures) or run.get("ErrorMessage", "no error message")
    raise DeployError(f"workflow {workflow} run {run_id} {status}: {reason}")


def start_job(glue, job: str, arguments: dict) -> str:
    request = {"JobName": job}
    if arguments:
        request["Arguments"] = arguments
    run_id = glue.start_job_run(**request)["JobRunId"]
    print(f"started job {job} run {run_id} {_properties(arguments)}".rstrip())
    return run_id


def follow_job_run(glue, job: str, run_id: str, *, sleep: Sleep, poll_seconds: float) -> dict:
    """Print the run's state changes until it ends; raise DeployError unless it SUCCEEDED."""
    state = None
    while True:
        run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        if run["JobRunState"] != state:
            state = run["JobRunState"]
            print(f"job {job} run {run_id}: {state}")
        if state in JOB_RUN_ENDED:
            break
        sleep(poll_seconds)
    if state != "SUCCEEDED":
        raise DeployError(
            f"job {job} run {run_id} {state}: {run.get('ErrorMessage', 'no error message')}"
        )
    print(f"job {job} run {run_id} took {run.get('ExecutionTime', '?')} s")
    return run


def _properties(values: Optional[dict]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted((values or {}).items()))


def show_runs(glue, workflow: str, job: str, limit: int) -> None:
    """Print the last `limit` runs of the workflow and of the job, newest first."""
    runs = glue.get_workflow_runs(Name=workflow, IncludeGraph=False, MaxResults=limit).get("Runs", [])
    print(f"workflow {workflow}: last {limit} runs" if runs else f"workflow {workflow}: no runs")
    for run in sorted(runs, key=lambda r: r["StartedOn"], reverse=True):
        print(f"  {run['WorkflowRunId']}  {run['Status']}  started {_utc(run.get('StartedOn'))}"
              f"  completed {_utc(run.get('CompletedOn'))}  {_properties(run.get('WorkflowRunProperties'))}")
    job_runs = glue.get_job_runs(JobName=job, MaxResults=limit).get("JobRuns", [])
    print(f"job {job}: last {limit} runs" if job_runs else f"job {job}: no runs")
    for run in sorted(job_runs, key=lambda r: r["StartedOn"], reverse=True):
        arguments = run.get("Arguments", {})
        dates = {k: arguments[f"--{k}"] for k in ("start_date", "end_date") if f"--{k}" in arguments}
        print(f"  {run['Id']}  {run['JobRunState']}  started {_utc(run.get('StartedOn'))}"
              f"  duration {run.get('ExecutionTime', '-')} s  {_properties(dates)}")


# --- command line ------------------------------------------------------------


def iso_date(value: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in YYYY-MM-DD form")
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a calendar date") from None


def key_value(value: str) -> tuple:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{value!r} is not KEY=VALUE")
    return key, val


def date_range(parser: argparse.ArgumentParser, args) -> dict:
    """{"start_date", "end_date"} of a backfill, {} for the job's default days."""
    if args.start_date is None:
        if args.end_date is not None:
            parser.error("argument --end-date: needs --start-date")
        return {}
    end = args.end_date or args.start_date
    if end < args.start_date:
        parser.error(f"argument --end-date: {end} is before --start-date {args.start_date}")
    return {"start_date": args.start_date.isoformat(), "end_date": end.isoformat()}


def cmd_package(args, clients, sleep) -> int:
    package(args.source, args.out)
    return 0


def _artifact_keys(args, artifacts: dict) -> dict:
    return {args.script_key: artifacts["script"], args.library_key: artifacts["library"]}


def cmd_upload(args, clients, sleep) -> int:
    bucket, kms_key_id = args.bucket, args.kms_key_id
    if bucket is None:
        stack = f"{args.project}-foundation"
        foundation = stack_outputs(clients("cloudformation"), stack)
        bucket = required_output(foundation, "ArtifactsBucketName", stack)
        kms_key_id = kms_key_id or foundation.get("KmsKeyArn")
    artifacts = package(args.source, args.out)
    upload_artifacts(clients("s3"), bucket, _artifact_keys(args, artifacts), kms_key_id)
    return 0


def cmd_deploy(args, clients, sleep) -> int:
    cfn = clients("cloudformation")
    foundation_parameters = {"ProjectName": args.project, "DatabaseName": args.database}
    if args.temp_expiry_days is not None:
        foundation_parameters["TempExpiryDays"] = args.temp_expiry_days
    # Both stacks take RawPrefix: the crawler reads it and the role may read only it.
    raw_prefix = {"RawPrefix": args.raw_prefix} if args.raw_prefix else {}
    foundation_parameters.update(raw_prefix)
    foundation = deploy_stack(
        cfn, f"{args.project}-foundation", read_template(args.foundation_template),
        foundation_parameters, sleep=sleep, poll_seconds=args.poll_seconds,
    )
    bucket = required_output(foundation, "ArtifactsBucketName", f"{args.project}-foundation")
    artifacts = package(args.source, args.out)
    upload_artifacts(clients("s3"), bucket,
                     _artifact_keys(args, artifacts), foundation.get("KmsKeyArn"))
    parameters = workflow_parameters(
        foundation, project=args.project, script_key=args.script_key,
        library_key=args.library_key, worker_type=args.worker_type, workers=args.workers,
        semantics=args.semantics, schedule=args.schedule, extra={**raw_prefix, **dict(args.parameter)},
    )
    outputs = deploy_stack(
        cfn, f"{args.project}-workflow", read_template(args.workflow_template),
        parameters, sleep=sleep, poll_seconds=args.poll_seconds,
    )
    for key, value in sorted(outputs.items()):
        print(f"{key}={value}")
    return 0


def _workflow_output(args, clients, name: Optional[str], output: str) -> str:
    if name:
        return name
    stack = f"{args.project}-workflow"
    return required_output(stack_outputs(clients("cloudformation"), stack), output, stack)


def cmd_start_workflow(args, clients, sleep) -> int:
    workflow = _workflow_output(args, clients, args.workflow, "WorkflowName")
    glue = clients("glue")
    run_id = start_workflow(glue, workflow, args.run_properties)
    if not args.no_follow:
        follow_workflow_run(glue, workflow, run_id, sleep=sleep, poll_seconds=args.poll_seconds)
    return 0


def cmd_run_job(args, clients, sleep) -> int:
    job = _workflow_output(args, clients, args.job, "JobName")
    arguments = {f"--{key}": value for key, value in args.run_properties.items()}
    if args.semantics:
        arguments["--semantics"] = args.semantics
    for key, value in args.arg:
        arguments[key if key.startswith("--") else f"--{key}"] = value
    glue = clients("glue")
    run_id = start_job(glue, job, arguments)
    if not args.no_follow:
        follow_job_run(glue, job, run_id, sleep=sleep, poll_seconds=args.poll_seconds)
    return 0


def cmd_runs(args, clients, sleep) -> int:
    workflow = _workflow_output(args, clients, args.workflow, "WorkflowName")
    job = _workflow_output(args, clients, args.job, "JobName")
    show_runs(clients("glue"), workflow, job, args.limit)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    aws = argparse.ArgumentParser(add_help=False)
    aws.add_argument("--profile", help="AWS profile (default: the usual boto3 chain)")
    aws.add_argument("--region", help="AWS region (default: the profile's or AWS_DEFAULT_REGION)")
    aws.add_argument("--project", default=DEFAULT_PROJECT, help="stack name prefix (default %(default)s)")
    aws.add_argument("--poll-seconds", type=float, default=15.0, help="seconds between polls (default %(default)s)")

    build = argparse.ArgumentParser(add_help=False)
    build.add_argument("--source", type=Path, default=SOURCE_DIR, help="folder holding traffic_glue/ and the job script")
    build.add_argument("--out", type=Path, default=BUILD_DIR, help="where the artifacts are written (default build/)")

    keys = argparse.ArgumentParser(add_help=False)
    keys.add_argument("--script-key", default=DEFAULT_SCRIPT_KEY)
    keys.add_argument("--library-key", default=DEFAULT_LIBRARY_KEY)

    dates = argparse.ArgumentParser(add_help=False)
    dates.add_argument("--start-date", type=iso_date, help="first event day, YYYY-MM-DD (UTC)")
    dates.add_argument("--end-date", type=iso_date, help="last event day (default: --start-date)")
    dates.add_argument("--no-follow", action="store_true", help="start the run and return")

    sub = commands.add_parser("package", parents=[build], help="zip the library and copy the job script")
    sub.set_defaults(handler=cmd_package)

    sub = commands.add_parser("upload", parents=[aws, build, keys], help="package and upload to the artifacts bucket")
    sub.add_argument("--bucket", help="default: the foundation stack's ArtifactsBucketName")
    sub.add_argument("--kms-key-id", help="default: the foundation stack's KmsKeyArn when --bucket is not given")
    sub.set_defaults(handler=cmd_upload)

    sub = commands.add_parser("deploy", parents=[aws, build, keys], help="deploy both stacks and the artifacts")
    sub.add_argument("--database", default="traffic")
    sub.add_argument("--temp-expiry-days", type=int)
    sub.add_argument("--raw-prefix", help="where Firehose lands raw data, e.g. raw/ (default: the templates')")
    sub.add_argument("--worker-type", default="G.1X")
    sub.add_argument("--workers", type=int, default=2)
    sub.add_argument("--semantics", choices=SEMANTICS, default="corrected")
    sub.add_argument("--schedule", help="cron(...) of the daily trigger (default: the template's)")
    sub.add_argument("--parameter", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                     help="another workflow stack parameter, e.g. CuratedPrefix=curated/")
    sub.add_argument("--foundation-template", type=Path, default=FOUNDATION_TEMPLATE)
    sub.add_argument("--workflow-template", type=Path, default=WORKFLOW_TEMPLATE)
    sub.set_defaults(handler=cmd_deploy)

    sub = commands.add_parser("start-workflow", parents=[aws, dates], help="start a workflow run and follow it")
    sub.add_argument("--workflow", help="default: the workflow stack's WorkflowName")
    sub.set_defaults(handler=cmd_start_workflow, command_parser=sub)

    sub = commands.add_parser("run-job", parents=[aws, dates], help="start one job run and follow it")
    sub.add_argument("--job", help="default: the workflow stack's JobName")
    sub.add_argument("--semantics", choices=SEMANTICS, help="default: the job's (the stack's Semantics)")
    sub.add_argument("--arg", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                     help="another job argument, e.g. lookback_minutes=90 (sent as --KEY)")
    sub.set_defaults(handler=cmd_run_job, command_parser=sub)

    sub = commands.add_parser("runs", parents=[aws], help="show the last workflow and job runs")
    sub.add_argument("--workflow")
    sub.add_argument("--job")
    sub.add_argument("--limit", type=int, choices=range(1, 201), default=5, metavar="1..200")
    sub.set_defaults(handler=cmd_runs)
    return parser


def main(argv=None, *, session=None, sleep: Sleep = time.sleep) -> int:
    """Run one command; `session` and `sleep` are there for the tests."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if "start_date" in args:  # validated here, before any AWS call
        args.run_properties = date_range(args.command_parser, args)
    made = {}

    def clients(service: str):
        nonlocal session
        if session is None:
            session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
        if service not in made:
            made[service] = session.client(service)
        return made[service]

    try:
        return args.handler(args, clients, sleep)
    except (DeployError, ClientError, BotoCoreError) as error:
        print(f"error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted; a started run goes on in AWS (see `runs`)", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
