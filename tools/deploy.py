"""Deploy the traffic-glue stacks and drive the Glue workflow with boto3.

    python -m tools.deploy package [--out build/]
    python -m tools.deploy upload [--bucket B] [--script-key K] [--maintenance-script-key K]
        [--summary-script-key K] [--fetch-script-key K] [--library-key K]
    python -m tools.deploy deploy [--project traffic-glue] [--workers 2] ...
    python -m tools.deploy start-workflow [--start-date D --end-date D] [--no-follow]
    python -m tools.deploy run-job [--summary] [--start-date D --end-date D] [--arg KEY=VALUE ...]
        [--workers N --worker-type G.1X --timeout MINUTES]
    python -m tools.deploy runs [--limit 5]

Every AWS call goes through clients of one `boto3.session.Session` built from
`--profile` / `--region`; boto3 itself honours `AWS_ENDPOINT_URL` (the tests point it
at a local moto server). This module is the command line only: the functions of
`tools.stacks` (package, upload, stacks) and `tools.runs` (workflow and job runs) take
a client and plain values, and `sleep` is passed in, so the tests drive them without
waiting.
"""

import argparse
import re
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Optional

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from tools.runs import follow_job_run, follow_workflow_run, show_runs, start_job, start_workflow
from tools.stacks import (
    ARTIFACT_FILES,
    DeployError,
    Sleep,
    deploy_stack,
    package,
    read_template,
    required_output,
    stack_outputs,
    upload_artifacts,
    workflow_parameters,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = REPO_ROOT / "glue_jobs"
BUILD_DIR = REPO_ROOT / "build"
FOUNDATION_TEMPLATE = REPO_ROOT / "infra" / "foundation.yaml"
WORKFLOW_TEMPLATE = REPO_ROOT / "workflows" / "traffic_workflow.yaml"

# Each artifact's key in the artifacts bucket: its option, and its default, which is the
# workflow template's Default of the parameter that takes it (stacks.KEY_PARAMETERS).
KEY_PREFIX = "glue/"
KEY_OPTIONS = {name: f"--{name.replace('_', '-')}-key" for name in ARTIFACT_FILES}
DEFAULT_KEYS = {name: KEY_PREFIX + file for name, file in ARTIFACT_FILES.items()}
DEFAULT_PROJECT = "traffic-glue"
SEMANTICS = ("corrected", "athena")
WORKER_TYPES = ("G.1X", "G.2X", "G.4X", "G.8X")  # the workflow template's AllowedValues


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


def _artifact_keys(args) -> dict:
    """{artifact (as `package` names it): key in the artifacts bucket}, checked before
    any AWS call: one upload must not overwrite another."""
    keys = {name: getattr(args, f"{name}_key") for name in ARTIFACT_FILES}
    by_key = {}
    for name, key in keys.items():
        by_key.setdefault(key, []).append(KEY_OPTIONS[name])
    shared = [f"{' and '.join(options)} are both {key}" for key, options in by_key.items()
              if len(options) > 1]
    if shared:
        raise DeployError(f"{'; '.join(shared)}: every artifact needs a key of its own")
    return keys


def _uploads(keys: dict, artifacts: dict) -> dict:
    return {key: artifacts[name] for name, key in keys.items()}


def cmd_upload(args, clients, sleep) -> int:
    keys = _artifact_keys(args)
    bucket, kms_key_id = args.bucket, args.kms_key_id
    if bucket is None:
        stack = f"{args.project}-foundation"
        foundation = stack_outputs(clients("cloudformation"), stack)
        bucket = required_output(foundation, "ArtifactsBucketName", stack)
        kms_key_id = kms_key_id or foundation.get("KmsKeyArn")
    artifacts = package(args.source, args.out)
    upload_artifacts(clients("s3"), bucket, _uploads(keys, artifacts), kms_key_id)
    return 0


def cmd_deploy(args, clients, sleep) -> int:
    keys = _artifact_keys(args)
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
    upload_artifacts(clients("s3"), bucket, _uploads(keys, artifacts), foundation.get("KmsKeyArn"))
    # Left out, AlertEmail is the template's default (none): like every parameter, the
    # address is given again on each deploy, or its subscription is removed.
    alert_email = {"AlertEmail": args.alert_email} if args.alert_email else {}
    parameters = workflow_parameters(
        foundation, project=args.project, keys=keys,
        worker_type=args.worker_type, workers=args.workers, semantics=args.semantics,
        schedule=args.schedule, extra={**raw_prefix, **alert_email, **dict(args.parameter)},
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


# The workflow's jobs by role: the stack output naming each one.
JOB_OUTPUTS = {"transform": "JobName", "summary": "SummaryJobName"}


def cmd_run_job(args, clients, sleep) -> int:
    summary = args.summary
    if summary and (args.semantics or args.job):  # before any AWS call
        args.command_parser.error("--summary takes no --job or --semantics")
    job = _workflow_output(args, clients, args.job, JOB_OUTPUTS["summary" if summary else "transform"])
    arguments = {f"--{key}": value for key, value in args.run_properties.items()}
    if args.semantics:
        arguments["--semantics"] = args.semantics
    for key, value in args.arg:
        arguments[key if key.startswith("--") else f"--{key}"] = value
    capacity = {
        key: value
        for key, value in (
            ("WorkerType", args.worker_type),
            ("NumberOfWorkers", args.workers),
            ("Timeout", args.timeout),
        )
        if value is not None
    }
    glue = clients("glue")
    run_id = start_job(glue, job, arguments, capacity)
    if not args.no_follow:
        follow_job_run(glue, job, run_id, sleep=sleep, poll_seconds=args.poll_seconds)
    return 0


def cmd_runs(args, clients, sleep) -> int:
    workflow = _workflow_output(args, clients, args.workflow, "WorkflowName")
    if args.job:
        jobs = [args.job]
    else:  # every job of the workflow stack (a stack deployed before the summary has one)
        stack = f"{args.project}-workflow"
        outputs = stack_outputs(clients("cloudformation"), stack)
        jobs = [required_output(outputs, "JobName", stack)]
        jobs += [outputs[name] for name in JOB_OUTPUTS.values() if name != "JobName" and name in outputs]
    show_runs(clients("glue"), workflow, jobs, args.limit)
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
    build.add_argument("--source", type=Path, default=SOURCE_DIR, help="folder holding traffic_glue/ and the job scripts")
    build.add_argument("--out", type=Path, default=BUILD_DIR, help="where the artifacts are written (default build/)")

    keys = argparse.ArgumentParser(add_help=False)
    for name, option in KEY_OPTIONS.items():
        keys.add_argument(option, default=DEFAULT_KEYS[name], metavar="KEY",
                          help=f"key of {ARTIFACT_FILES[name]} in the artifacts bucket (default %(default)s)")

    dates = argparse.ArgumentParser(add_help=False)
    dates.add_argument("--start-date", type=iso_date, help="first event day, YYYY-MM-DD (UTC)")
    dates.add_argument("--end-date", type=iso_date, help="last event day (default: --start-date)")
    dates.add_argument("--no-follow", action="store_true", help="start the run and return")

    sub = commands.add_parser("package", parents=[build], help="zip the library and copy the job scripts")
    sub.set_defaults(handler=cmd_package)

    sub = commands.add_parser("upload", parents=[aws, build, keys], help="package and upload to the artifacts bucket")
    sub.add_argument("--bucket", help="default: the foundation stack's ArtifactsBucketName")
    sub.add_argument("--kms-key-id", help="default: the foundation stack's KmsKeyArn when --bucket is not given")
    sub.set_defaults(handler=cmd_upload)

    sub = commands.add_parser("deploy", parents=[aws, build, keys], help="deploy both stacks and the artifacts")
    sub.add_argument("--database", default="traffic")
    sub.add_argument("--temp-expiry-days", type=int)
    sub.add_argument("--raw-prefix", help="where Firehose lands raw data, e.g. raw/ (default: the templates')")
    sub.add_argument("--worker-type", choices=WORKER_TYPES, default="G.1X")
    sub.add_argument("--workers", type=int, default=2)
    sub.add_argument("--semantics", choices=SEMANTICS, default="corrected")
    sub.add_argument("--schedule", help="cron(...) of the daily trigger (default: the template's)")
    sub.add_argument("--alert-email", metavar="ADDRESS",
                     help="mail the alerts topic's messages here (confirm the subscription once; default: none)")
    sub.add_argument("--parameter", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                     help="another workflow stack parameter, e.g. CuratedPrefix=curated/")
    sub.add_argument("--foundation-template", type=Path, default=FOUNDATION_TEMPLATE)
    sub.add_argument("--workflow-template", type=Path, default=WORKFLOW_TEMPLATE)
    sub.set_defaults(handler=cmd_deploy)

    sub = commands.add_parser("start-workflow", parents=[aws, dates], help="start a workflow run and follow it")
    sub.add_argument("--workflow", help="default: the workflow stack's WorkflowName")
    sub.set_defaults(handler=cmd_start_workflow, command_parser=sub)

    sub = commands.add_parser("run-job", parents=[aws, dates], help="start one job run and follow it")
    sub.add_argument("--job", help="default: the workflow stack's JobName (its transform job)")
    sub.add_argument("--summary", action="store_true",
                     help="the workflow stack's daily summary job (SummaryJobName) instead")
    sub.add_argument("--semantics", choices=SEMANTICS, help="default: the job's (the stack's Semantics)")
    sub.add_argument("--arg", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                     help="another job argument, e.g. lookback_minutes=90 (sent as --KEY)")
    # A backfill outgrows the daily run's sizing (docs/BENCHMARKS.md, "Glue sizing").
    sub.add_argument("--worker-type", choices=WORKER_TYPES, help="this run's worker type (default: the job's)")
    sub.add_argument("--workers", type=int, help="this run's number of workers (default: the job's)")
    sub.add_argument("--timeout", type=int, metavar="MINUTES", help="this run's timeout (default: the job's)")
    sub.set_defaults(handler=cmd_run_job, command_parser=sub)

    sub = commands.add_parser("runs", parents=[aws], help="show the last workflow and job runs")
    sub.add_argument("--workflow")
    sub.add_argument("--job", help="default: every job of the workflow stack")
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
