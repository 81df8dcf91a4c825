"""The run's figures as CloudWatch metrics (runtime/metrics.py): the data made of a report
worked out by hand, and the transform job run with `--metrics` against moto's CloudWatch
on 127.0.0.1."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import io
import re
import socket
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.aws_fakes import REGION, fake_aws_environment
from tests.factories import T0, land_parquet, raw_reading
from tests.job_helpers import SCRIPT, last_report, run_script
from traffic_glue.compute.statuses import REJECTED
from traffic_glue.runtime import metrics
from traffic_glue.runtime.arguments import ArgumentError
from traffic_glue.runtime.report import FAILED, SUCCEEDED, RunReport
from traffic_glue.jobs.transform_args import ARGUMENTS

JOB = "traffic-transform"
END = "2020-04-08T05:00:12.500000+00:00"
REJECTION_LABELS = ["malformed_record", "bad_tijd_waarneming", "bad_unieke_id", "bad_lve_nr",
                    "bad_tijd_laatst_gewijzigd", "bad_intensity", "negative_intensity", "bad_speed"]


def _report(**values) -> RunReport:
    return RunReport(run_id="20200408T045900Z-0a1b2c3d", job_name=JOB, arguments={},
                     started_at="2020-04-08T04:59:00+00:00", finished_at=END, **values)


def _figures(data: list[dict]) -> list[tuple]:
    """(metric, its Status or None, value, unit) of each datum, after checking that each
    is of the job and timed at the run's end."""
    found = []
    for datum in data:
        assert datum["Timestamp"] == dt.datetime.fromisoformat(END)
        dimensions = {d["Name"]: d["Value"] for d in datum["Dimensions"]}
        assert dimensions.pop("JobName") == JOB
        found.append((datum["MetricName"], dimensions.pop("Status", None), datum["Value"], datum["Unit"]))
        assert not dimensions
    return found


def _rejected_by_status(**counts: int) -> list[tuple]:
    """ReadingsRejected per reason: every reason, 0 where the report has none."""
    return [("ReadingsRejected", label, float(counts.get(label, 0)), "Count") for label in REJECTION_LABELS]


# --- the data of a report, worked out by hand ----------------------------------------------


def test_a_run_that_published_puts_every_figure_and_that_it_succeeded():
    report = _report(
        status=SUCCEEDED, duration_seconds=72.5,
        readings={"read": 200, "kept": 150, "filtered": {"defect": 40}, "filtered_total": 40,
                  "rejected": {"negative_intensity": 3, "bad_speed": 7}, "rejected_total": 10},
        output={"rows": 140, "partitions": 2, "locations_without_rows": 2},
    )
    assert _figures(metrics.metric_data(report)) == [
        ("ReadingsRead", None, 200.0, "Count"),
        ("ReadingsKept", None, 150.0, "Count"),
        ("ReadingsRejected", None, 10.0, "Count"),
        *_rejected_by_status(negative_intensity=3, bad_speed=7),
        ("RejectedPercent", None, 5.0, "Percent"),  # 100 * 10 / 200
        ("RowsWritten", None, 140.0, "Count"),
        ("LocationsWithoutReadings", None, 2.0, "Count"),
        ("DurationSeconds", None, 72.5, "Seconds"),
        ("RunSucceeded", None, 1.0, "Count"),
    ]


def test_a_run_that_read_nothing_puts_zeros_and_no_success():
    # Stopped with no row to write (exit status 1): counted, nothing published.
    report = _report(
        status=FAILED, error="no rows to write", duration_seconds=3.25,
        readings={"read": 0, "kept": 0, "filtered": {"defect": 0}, "filtered_total": 0,
                  "rejected": {}, "rejected_total": 0},
        output={"days_left_unchanged": ["2020-04-07"], "locations_without_rows": 9},
    )
    assert _figures(metrics.metric_data(report)) == [
        ("ReadingsRead", None, 0.0, "Count"),
        ("ReadingsKept", None, 0.0, "Count"),
        ("ReadingsRejected", None, 0.0, "Count"),
        *_rejected_by_status(),
        ("RejectedPercent", None, 0.0, "Percent"),  # nothing read: 0, not a division by zero
        ("LocationsWithoutReadings", None, 9.0, "Count"),
        ("DurationSeconds", None, 3.25, "Seconds"),
    ]


def test_a_run_that_failed_after_publishing_puts_its_figures_but_no_success():
    # The locations table's commit failed after the curated table's (docs/SEMANTICS.md).
    report = _report(
        status=FAILED, error="commit failed", duration_seconds=40.0,
        readings={"read": 8, "kept": 2, "filtered": {"duplicate": 0}, "filtered_total": 0,
                  "rejected": {"bad_speed": 4, "malformed_record": 2}, "rejected_total": 6},
        output={"rows": 2},  # athena: no locations figure
    )
    assert _figures(metrics.metric_data(report)) == [
        ("ReadingsRead", None, 8.0, "Count"),
        ("ReadingsKept", None, 2.0, "Count"),
        ("ReadingsRejected", None, 6.0, "Count"),
        *_rejected_by_status(bad_speed=4, malformed_record=2),
        ("RejectedPercent", None, 75.0, "Percent"),  # 100 * 6 / 8
        ("RowsWritten", None, 2.0, "Count"),
        ("DurationSeconds", None, 40.0, "Seconds"),
    ]


def test_a_run_that_failed_before_counting_puts_its_duration_only():
    report = _report(status=FAILED, error="no raw files", duration_seconds=1.5)
    assert _figures(metrics.metric_data(report)) == [("DurationSeconds", None, 1.5, "Seconds")]


def test_the_rejection_reasons_are_the_statuses_labels():
    assert [status.label for status in REJECTED] == REJECTION_LABELS


@pytest.mark.parametrize("mode, on_glue, wanted", [
    ("auto", True, True), ("auto", False, False), ("on", False, True), ("on", True, True),
    ("off", True, False), ("off", False, False),
])
def test_auto_puts_on_glue_only(mode, on_glue, wanted):
    assert metrics.wanted(mode, on_glue) is wanted


def test_the_metrics_argument_takes_auto_on_or_off(tmp_path):
    argv = ["traffic_transform.py", "--JOB_NAME", "j", "--source_path", str(tmp_path), "--target_path", "t"]
    assert ARGUMENTS.parse(argv).metrics == "auto"
    assert ARGUMENTS.parse([*argv, "--metrics", "on"]).metrics == "on"
    with pytest.raises(ArgumentError, match=r"^--metrics must be one of auto, on, off, got 'yes'$"):
        ARGUMENTS.parse([*argv, "--metrics", "yes"])


class RecordingClient:
    def __init__(self, error: Exception | None = None):
        self.calls, self.error = [], error

    def put_metric_data(self, Namespace, MetricData):
        if self.error:
            raise self.error
        self.calls.append((Namespace, len(MetricData)))


def test_put_sends_at_most_1000_data_a_call():
    datum = {"MetricName": "ReadingsRead", "Value": 1.0}
    client = RecordingClient()
    metrics.put([datum] * 2001, client)
    assert client.calls == [("TrafficGlue", 1000), ("TrafficGlue", 1000), ("TrafficGlue", 1)]


def test_a_refusal_is_one_warning_line_and_no_error(capsys):
    refused = ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to PutMetricData"}},
                          "PutMetricData")
    said = []
    metrics.put_report(_report(status=SUCCEEDED, duration_seconds=1.0), said.append, RecordingClient(refused))
    out, err = capsys.readouterr()
    assert said == [] and out == ""
    assert err.splitlines() == [
        "traffic-glue warning: the run's metrics were not put in CloudWatch (TrafficGlue): An error occurred "
        "(AccessDenied) when calling the PutMetricData operation: not authorized to PutMetricData"]


# --- the job run with --metrics, against moto's CloudWatch -----------------------------------

SIX = T0 + 6 * 3600  # 2020-04-07 06:00Z
DAY_9 = T0 + 2 * 86400 + 6 * 3600  # 2020-04-09 06:00Z
# Three locations configured, one carriageway each; lane 99 is in no configuration.
LANES = [(11, 1, "A0140001", "94,692"), (12, 1, "A0140002", "94,692"), (13, 2, "A0120001", "2,888")]


def metrics_landing() -> list[dict]:
    """The 7th: lane 11 five good readings, lane 12 three, a defect one, one with a
    negative intensity and one with a speed above 250; lane 13 none; lane 99 two.
    read 13 = kept 10 + defect 1 + rejected 2 (negative_intensity 1, bad_speed 1); a row
    per kept reading (10); of the three configured locations one has none.
    The 9th: lane 11 two defect readings and one speed above 250: nothing kept."""
    return [
        *(raw_reading(11, 1, SIX + 60 * m) for m in range(5)),
        *(raw_reading(12, 1, SIX + 60 * m) for m in range(3)),
        raw_reading(12, 1, SIX + 180, defect=1),
        raw_reading(12, 1, SIX + 240, counts=(-1, 0, 0, 0)),
        raw_reading(12, 1, SIX + 300, speeds=(300, 0, 0, 0)),
        *(raw_reading(99, 3, SIX + 60 * m) for m in range(2)),
        *(raw_reading(11, 1, DAY_9 + 60 * m, defect=1) for m in range(2)),
        raw_reading(11, 1, DAY_9 + 120, speeds=(300, 0, 0, 0)),
    ]


def write_configuration(folder: Path) -> Path:
    points = "".join(
        f'<meetpunt unieke_id="{lane}"><beschrijvende_id>H{unit:03d}L{lane:02d}</beschrijvende_id>'
        f"<lve_nr>{unit}</lve_nr><Ident_8>{road}</Ident_8><Kmp_Rsys>{km}</Kmp_Rsys>"
        f"<Rijstrook>R10</Rijstrook></meetpunt>"
        for lane, unit, road, km in LANES
    )
    path = folder / "miv-config-2020-04-01.xml.gz"
    path.write_bytes(gzip.compress(f"<mivconfig>{points}</mivconfig>".encode()))
    return path


def _run(landing: Path, target: Path, day: str, job_name: str, *extra: str) -> tuple[int, list, list]:
    """A job run in this process: its exit status and the lines it printed (out, err)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = run_script(SCRIPT, "--JOB_NAME", job_name, "--source_path", str(landing),
                            "--target_path", str(target), "--start_date", day, "--end_date", day, *extra)
    return status, out.getvalue().splitlines(), err.getvalue().splitlines()


@pytest.fixture(scope="module")
def cloudwatch(spark, moto_server, tmp_path_factory):
    """moto's CloudWatch, emptied, which the module's runs reach through
    AWS_ENDPOINT_URL_CLOUDWATCH (only CloudWatch: the suite's session, made first, keeps
    its S3 settings); and a client of it to read back what they put."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"))
    with pytest.MonkeyPatch.context() as patch:
        fake_aws_environment(patch, tmp_path_factory.mktemp("aws"))
        patch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", moto_server)
        yield boto3.client("cloudwatch", endpoint_url=moto_server, region_name=REGION)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("landing")
    land_parquet(root / "raw", metrics_landing())
    return {"raw": root / "raw", "configuration": str(write_configuration(root))}


@pytest.fixture(scope="module")
def run_on(cloudwatch, landing, tmp_path_factory) -> dict:
    """The 7th with `--metrics on`: its exit status, lines and report."""
    target = tmp_path_factory.mktemp("on") / "curated"
    status, out, err = _run(landing["raw"], target, "2020-04-07", "metrics-on", "--metrics", "on",
                            "--configuration_path", landing["configuration"])
    return {"status": status, "out": out, "err": err, "report": last_report(target)}


def put_figures(client, job_name: str, end: dt.datetime) -> dict:
    """What CloudWatch holds of `job_name`, read back: {(metric, Status or None): (sum,
    sample count, unit)} over the minute of the run's end. The metrics as list_metrics
    lists them; their values by get_metric_data, which matches the dimensions exactly, in
    moto as in CloudWatch (moto's get_metric_statistics takes them as a subset: the
    total's would hold the data per Status too); their units by get_metric_statistics."""
    listed = client.list_metrics(Namespace="TrafficGlue",
                                 Dimensions=[{"Name": "JobName", "Value": job_name}])["Metrics"]
    start = end.replace(second=0, microsecond=0)
    stop = start + dt.timedelta(minutes=1)
    queries = [{"Id": f"{stat.lower()}{n}", "MetricStat": {"Metric": metric, "Period": 60, "Stat": stat}}
               for n, metric in enumerate(listed) for stat in ("Sum", "SampleCount")]
    results = client.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=stop)
    values = {result["Id"]: result["Values"] for result in results["MetricDataResults"]}
    found = {}
    for n, metric in enumerate(listed):
        (total,), (count,) = values[f"sum{n}"], values[f"samplecount{n}"]
        units = {point["Unit"] for point in client.get_metric_statistics(
            Namespace="TrafficGlue", MetricName=metric["MetricName"], Dimensions=metric["Dimensions"],
            StartTime=start, EndTime=stop, Period=60, Statistics=["SampleCount"])["Datapoints"]}
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        key = (metric["MetricName"], dimensions.get("Status"))
        assert key not in found and len(units) == 1, (key, units)
        found[key] = (total, count, units.pop())
    return found


def test_a_run_with_metrics_on_puts_its_reports_figures(cloudwatch, run_on):
    assert run_on["status"] == 0
    report = run_on["report"]
    readings, output = report["readings"], report["output"]
    # The landing's figures, worked out by hand (metrics_landing).
    assert (readings["read"], readings["kept"], readings["rejected"]) == (
        13, 10, {"negative_intensity": 1, "bad_speed": 1})
    assert (output["rows"], output["locations_without_rows"]) == (10, 1)

    end = dt.datetime.fromisoformat(report["finished_at"])
    found = put_figures(cloudwatch, "metrics-on", end)
    assert {key: value for key, (value, count, unit) in found.items()} == pytest.approx({
        ("ReadingsRead", None): readings["read"],
        ("ReadingsKept", None): readings["kept"],
        ("ReadingsRejected", None): readings["rejected_total"],
        **{("ReadingsRejected", label): readings["rejected"].get(label, 0) for label in REJECTION_LABELS},
        ("RejectedPercent", None): 100 * readings["rejected_total"] / readings["read"],
        ("RowsWritten", None): output["rows"],
        ("LocationsWithoutReadings", None): output["locations_without_rows"],
        ("DurationSeconds", None): report["duration_seconds"],
        ("RunSucceeded", None): 1,
    })
    units = {key: unit for key, (value, count, unit) in found.items()}
    assert units.pop(("RejectedPercent", None)) == "Percent"
    assert units.pop(("DurationSeconds", None)) == "Seconds"
    assert set(units.values()) == {"Count"}
    assert {count for value, count, unit in found.values()} == {1}  # one datum each
    said = [line for line in run_on["out"] if "] metrics: " in line]
    assert len(said) == 1 and re.fullmatch(
        r"traffic-glue \[\d+:\d\d\] metrics: 16 put in CloudWatch, namespace TrafficGlue, JobName metrics-on",
        said[0]), said
    assert run_on["err"] == []


def test_the_data_are_timed_at_the_runs_end(cloudwatch, run_on):
    end = dt.datetime.fromisoformat(run_on["report"]["finished_at"])
    second = end.replace(microsecond=0)
    for start, stop, found in ((second, second + dt.timedelta(seconds=1), 1),
                               (second - dt.timedelta(seconds=2), second, 0)):
        stats = cloudwatch.get_metric_statistics(
            Namespace="TrafficGlue", MetricName="RunSucceeded",
            Dimensions=[{"Name": "JobName", "Value": "metrics-on"}],
            StartTime=start, EndTime=stop, Period=60, Statistics=["SampleCount"])
        assert len(stats["Datapoints"]) == found


def test_a_run_that_failed_after_reading_puts_what_it_counted_and_no_success(cloudwatch, landing, tmp_path):
    status, out, err = _run(landing["raw"], tmp_path / "curated", "2020-04-09", "metrics-failed",
                            "--metrics", "on", "--configuration_path", landing["configuration"])
    assert status == 1 and err[-1].startswith("traffic_transform: error: no rows to write for 2020-04-09")
    report = last_report(tmp_path / "curated")
    readings = report["readings"]
    assert report["status"] == "failed"
    assert (readings["read"], readings["kept"], readings["rejected"]) == (3, 0, {"bad_speed": 1})
    assert report["output"]["locations_without_rows"] == 3  # every configured one

    found = put_figures(cloudwatch, "metrics-failed", dt.datetime.fromisoformat(report["finished_at"]))
    assert {key: value for key, (value, count, unit) in found.items()} == pytest.approx({
        ("ReadingsRead", None): 3, ("ReadingsKept", None): 0, ("ReadingsRejected", None): 1,
        **{("ReadingsRejected", label): int(label == "bad_speed") for label in REJECTION_LABELS},
        ("RejectedPercent", None): 100 / 3, ("LocationsWithoutReadings", None): 3,
        ("DurationSeconds", None): report["duration_seconds"],
    })  # no RowsWritten, no RunSucceeded


def test_metrics_auto_puts_nothing_on_a_local_run(cloudwatch, landing, tmp_path):
    status, out, err = _run(landing["raw"], tmp_path / "curated", "2020-04-07", "metrics-auto")
    assert status == 0 and err == []
    assert not any("] metrics: " in line for line in out)
    listed = cloudwatch.list_metrics(Namespace="TrafficGlue",
                                     Dimensions=[{"Name": "JobName", "Value": "metrics-auto"}])
    assert listed["Metrics"] == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_cloudwatch_unreachable_warns_in_one_line_and_the_run_succeeds(cloudwatch, landing, tmp_path,
                                                                       monkeypatch):
    unreachable = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", unreachable)
    status, out, err = _run(landing["raw"], tmp_path / "curated", "2020-04-07", "metrics-unreachable",
                            "--metrics", "on")
    assert status == 0
    assert last_report(tmp_path / "curated")["status"] == "succeeded"
    assert err == [
        "traffic-glue warning: the run's metrics were not put in CloudWatch (TrafficGlue): "
        f'Could not connect to the endpoint URL: "{unreachable}/"']
    assert not any("] metrics: " in line for line in out)
