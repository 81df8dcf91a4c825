"""Start and follow Glue workflow runs and job runs, and list the last runs, with boto3.

The functions take a Glue client and plain values, and `sleep` is passed in, so the
tests drive them without waiting; `tools.deploy` is their command line.
"""

from datetime import datetime, timezone
from typing import Optional

from tools.stacks import DeployError, Sleep, _utc

JOB_RUN_ENDED = {"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED"}
CRAWL_FAILED = {"FAILED", "CANCELLED", "ERROR"}
WORKFLOW_RUN_ENDED = {"COMPLETED", "STOPPED", "ERROR"}
NOT_STARTED = "NOT_STARTED"


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


def start_job(glue, job: str, arguments: dict, capacity: dict | None = None) -> str:
    """`capacity`: this run's WorkerType, NumberOfWorkers and Timeout, where not the job's."""
    request = {"JobName": job, **(capacity or {})}
    if arguments:
        request["Arguments"] = arguments
    run_id = glue.start_job_run(**request)["JobRunId"]
    sized = " ".join(f"{key}={value}" for key, value in (capacity or {}).items())
    print(f"started job {job} run {run_id} {_properties(arguments)} {sized}".rstrip())
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


def show_runs(glue, workflow: str, jobs: list[str], limit: int) -> None:
    """Print the last `limit` runs of the workflow and of each job, newest first."""
    runs = glue.get_workflow_runs(Name=workflow, IncludeGraph=False, MaxResults=limit).get("Runs", [])
    print(f"workflow {workflow}: last {limit} runs" if runs else f"workflow {workflow}: no runs")
    for run in sorted(runs, key=lambda r: r["StartedOn"], reverse=True):
        print(f"  {run['WorkflowRunId']}  {run['Status']}  started {_utc(run.get('StartedOn'))}"
              f"  completed {_utc(run.get('CompletedOn'))}  {_properties(run.get('WorkflowRunProperties'))}")
    for job in jobs:
        job_runs = glue.get_job_runs(JobName=job, MaxResults=limit).get("JobRuns", [])
        print(f"job {job}: last {limit} runs" if job_runs else f"job {job}: no runs")
        for run in sorted(job_runs, key=lambda r: r["StartedOn"], reverse=True):
            arguments = run.get("Arguments", {})
            dates = {k: arguments[f"--{k}"] for k in ("start_date", "end_date") if f"--{k}" in arguments}
            print(f"  {run['Id']}  {run['JobRunState']}  started {_utc(run.get('StartedOn'))}"
                  f"  duration {run.get('ExecutionTime', '-')} s  {_properties(dates)}")
