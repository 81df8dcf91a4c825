"""The workflow run a job belongs to: its properties, where a job finds its days and
leaves word for the next job.

On Glue they are the workflow run's properties (glue:GetWorkflowRunProperties and
PutWorkflowRunProperties); locally, a JSON file per workflow run
(`--run_properties_file`, which the local workflow runner passes). Outside a workflow
there are none, and a job without dates runs yesterday (UTC).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from traffic_glue.compute.run_range import days_between
from traffic_glue.runtime.arguments import ArgumentError, date

# The run property in which the transform job names the days it replaced; the summary
# job, started after it in the same workflow run, summarises exactly those days.
CURATED_DAYS = "curated_days"


class GlueRunProperties:
    """A Glue workflow run's properties."""

    def __init__(self, glue_client_factory, workflow_name: str, run_id: str):
        self._client = glue_client_factory
        self.workflow_name, self.run_id = workflow_name, run_id

    def get(self) -> dict[str, str]:
        return self._client().get_workflow_run_properties(
            Name=self.workflow_name, RunId=self.run_id
        )["RunProperties"]

    def put(self, properties: dict[str, str]) -> None:
        self._client().put_workflow_run_properties(
            Name=self.workflow_name, RunId=self.run_id, RunProperties=properties
        )


class FileRunProperties:
    """The local stand-in: a JSON object in a file, as the local workflow runner keeps
    one per workflow run."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.run_id = self.path.stem

    def get(self) -> dict[str, str]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def put(self, properties: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({**self.get(), **properties}, indent=2, sort_keys=True))


def run_properties(config, glue_client_factory=None) -> GlueRunProperties | FileRunProperties | None:
    """The properties of the workflow run `config`'s job belongs to (its
    `run_properties_file`, else its `workflow_name` and `workflow_run_id`), or None."""
    if config.run_properties_file:
        return FileRunProperties(config.run_properties_file)
    if config.workflow_name and config.workflow_run_id:
        if glue_client_factory is None:
            import boto3

            glue_client_factory = lambda: boto3.client("glue")  # noqa: E731
        return GlueRunProperties(glue_client_factory, config.workflow_name, config.workflow_run_id)
    return None


def yesterday_utc(now: dt.datetime | None = None) -> dt.date:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.date() - dt.timedelta(days=1)


def workflow_run_dates(properties: dict[str, str], run_id: str) -> tuple[dt.date, dt.date] | None:
    """`start_date`/`end_date` from a workflow run's properties, if it carries them."""
    if not properties.get("start_date") and not properties.get("end_date"):
        return None
    if not properties.get("start_date") or not properties.get("end_date"):
        raise ArgumentError(
            f"workflow run {run_id} sets only one of the run properties start_date/end_date"
        )
    return date("start_date", properties["start_date"]), date("end_date", properties["end_date"])


def resolve_dates(config, glue_client_factory=None, now: dt.datetime | None = None):
    """The transform's days (`config.with_dates`): the dates given; else the workflow
    run's `start_date`/`end_date`; else yesterday (UTC)."""
    if config.start_date is not None:
        return config
    properties = run_properties(config, glue_client_factory)
    if properties is not None:
        dates = workflow_run_dates(properties.get(), properties.run_id)
        if dates:
            return config.with_dates(*dates)
    day = yesterday_utc(now)
    return config.with_dates(day, day)


def resolve_days(config, glue_client_factory=None, now: dt.datetime | None = None):
    """The summary's days (`config.with_days`): the dates given; else, in a workflow
    run, the days the transform replaced (`curated_days`), else the run's
    `start_date`/`end_date`; else yesterday (UTC)."""
    if config.start_date is not None:
        return config.with_days(days_between(config.start_date, config.end_date))
    properties = run_properties(config, glue_client_factory)
    if properties is not None:
        values = properties.get()
        if values.get(CURATED_DAYS) is not None:
            return config.with_days([date(CURATED_DAYS, d) for d in values[CURATED_DAYS].split(",") if d])
        dates = workflow_run_dates(values, properties.run_id)
        if dates:
            return config.with_days(days_between(*dates))
    return config.with_days([yesterday_utc(now)])


def record_curated_days(config, days: list[dt.date], glue_client_factory=None) -> None:
    """Tell the workflow run which days the transform replaced (none: an empty list)."""
    properties = run_properties(config, glue_client_factory)
    if properties is not None:
        properties.put({CURATED_DAYS: ",".join(day.isoformat() for day in sorted(days))})
