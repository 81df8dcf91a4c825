"""The transform run's figures as CloudWatch metrics (README, "The run's figures in CloudWatch").

When a run ends, the figures of its report go to one namespace, `TrafficGlue`, with the
job's name as a dimension (`JobName`: the run's `--JOB_NAME`), where the workflow's
alarms read them. `metric_data` turns a report into CloudWatch's MetricDatum dicts
(pure); `put` sends them (`cloudwatch.put_metric_data`, at most 1,000 a call). Which
runs put them is `--metrics`: `auto` (on Glue, which passes `--JOB_RUN_ID`), `on` (also
locally, through the AWS settings of the environment: `AWS_ENDPOINT_URL`, region and
keys as boto3 takes them) or `off`.

A run puts the figures its report has, all timed at the run's end:

- every run: `DurationSeconds`;
- a run that counted its readings (also one that then failed, e.g. with no row to
  write): `ReadingsRead`, `ReadingsKept`, `ReadingsRejected` (the total, and one datum
  per rejection reason with the dimension `Status`, 0 for a reason that did not occur),
  `RejectedPercent`;
- a run that published its rows: `RowsWritten`;
- where the report knows it: `LocationsWithoutReadings` (`output.locations_without_rows`);
- a run that succeeded and published: `RunSucceeded` = 1. A failed run puts none: an
  alarm on a missing `RunSucceeded` sees every failure, also one that stopped before it
  had any other figure.

The metrics are a view of the report and never change a run's outcome: a failure to put
them prints one warning line, and the exit status stays.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Callable

from traffic_glue.compute.statuses import REJECTED
from traffic_glue.runtime.report import SUCCEEDED, RunReport, first_line, now

NAMESPACE = "TrafficGlue"
JOB_NAME, STATUS = "JobName", "Status"  # the dimensions
AUTO, ON, OFF = "auto", "on", "off"
MODES = (AUTO, ON, OFF)
# PutMetricData takes at most 1,000 metric data a call (and 1 MB); a run has about 15.
MAX_DATA_PER_CALL = 1000
# A run's last step: give up soon rather than keep a Glue job (billed by the second)
# waiting on CloudWatch.
CLIENT_SETTINGS = {"connect_timeout": 10, "read_timeout": 20,
                   "retries": {"mode": "standard", "total_max_attempts": 3}}


def wanted(mode: str, on_glue: bool) -> bool:
    """Whether a run with `--metrics mode` puts its figures."""
    return mode == ON or (mode == AUTO and on_glue)


def metric_data(report: RunReport) -> list[dict]:
    """The MetricDatum dicts of a finished run's report (see the module's docstring)."""
    at = dt.datetime.fromisoformat(report.finished_at) if report.finished_at else now()
    job = [{"Name": JOB_NAME, "Value": report.job_name}]

    def datum(name: str, value: float, unit: str = "Count", status: str | None = None) -> dict:
        dimensions = job + ([{"Name": STATUS, "Value": status}] if status else [])
        return {"MetricName": name, "Dimensions": dimensions, "Timestamp": at,
                "Value": float(value), "Unit": unit}

    data = []
    readings, output = report.readings, report.output
    if readings:
        read, rejected = readings["read"], readings["rejected_total"]
        data += [
            datum("ReadingsRead", read),
            datum("ReadingsKept", readings["kept"]),
            datum("ReadingsRejected", rejected),
            # The report lists the reasons that occurred: the others are 0.
            *(datum("ReadingsRejected", readings["rejected"].get(status.label, 0), status=status.label)
              for status in REJECTED),
            datum("RejectedPercent", 100 * rejected / read if read else 0, "Percent"),
        ]
    published = "rows" in output
    if published:
        data.append(datum("RowsWritten", output["rows"]))
    if output.get("locations_without_rows") is not None:
        data.append(datum("LocationsWithoutReadings", output["locations_without_rows"]))
    if report.duration_seconds is not None:
        data.append(datum("DurationSeconds", report.duration_seconds, "Seconds"))
    if report.status == SUCCEEDED and published:
        data.append(datum("RunSucceeded", 1))
    return data


def put(data: list[dict], client=None) -> None:
    """Put `data` in `NAMESPACE`, at most `MAX_DATA_PER_CALL` a call."""
    if client is None:
        import boto3  # only a run that puts metrics pays for the import
        from botocore.config import Config

        client = boto3.client("cloudwatch", config=Config(**CLIENT_SETTINGS))
    for first in range(0, len(data), MAX_DATA_PER_CALL):
        client.put_metric_data(Namespace=NAMESPACE, MetricData=data[first:first + MAX_DATA_PER_CALL])


def put_report(report: RunReport, say: Callable[[str], None], client=None) -> None:
    """Put a finished run's figures; say so, or warn in one line on standard error when
    CloudWatch cannot be reached or refuses them (the run's outcome stays as it is)."""
    data = metric_data(report)
    try:
        put(data, client)
    except Exception as error:  # noqa: BLE001: whatever went wrong, the run's rows stand
        print(f"traffic-glue warning: the run's metrics were not put in CloudWatch "
              f"({NAMESPACE}): {first_line(error)}", file=sys.stderr, flush=True)
        return
    say(f"metrics: {len(data)} put in CloudWatch, namespace {NAMESPACE}, {JOB_NAME} {report.job_name}")
