"""The daily summary job run as Glue runs it: after the transform, on the days it replaced."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tools import comparing
from tests.job_helpers import ROOT, iceberg_table, run_job, run_script
from tools.duckdb_summary import summary_rows
from tools.sample_data import SampleSpec, generate
from tests.network import CONFIGURATION
from traffic_glue.compute import configuration as C
from traffic_glue.compute import summary as SUM

SCRIPT = ROOT / "glue_jobs" / "traffic_daily_summary.py"


def run_summary(source: Path, target: Path, *extra: str) -> int:
    """Run the summary script in this process (sharing the suite's Spark session)."""
    return run_script(SCRIPT, "--JOB_NAME", "test-summary", "--source_path", str(source),
                      "--target_path", str(target), *extra)


def summary_table_rows(root: Path) -> list[dict]:
    """The summary table's current rows, read by pyiceberg (not Spark), sorted."""
    table = iceberg_table(root)
    rows = table.scan().to_arrow().to_pylist() if table.current_snapshot() else []
    return sorted(rows, key=lambda r: (r["uniqueid"], r["day"], r["hour"]))


def reference_rows(curated: Path, tmp_path: Path, days: list[dt.date]) -> list[dict]:
    """DuckDB's summary of the curated table's current snapshot, for `days`."""
    snapshot = tmp_path / "curated_snapshot.parquet"
    pq.write_table(iceberg_table(curated).scan().to_arrow(), snapshot)
    return [r for r in summary_rows(snapshot) if r["day"] in days]


def assert_same_rows(actual: list[dict], expected: list[dict]) -> None:
    """The summary's columns in the table's order; every value equal (doubles within
    1e-9). The names come from the locations table and are compared where the rows are."""
    assert all(list(row) == list(SUM.TABLE_COLUMNS) for row in actual)
    doubles = {f.name for f in SUM.SUMMARY_SCHEMA.fields if f.dataType.simpleString() == "double"}
    comparing.assert_same_rows(actual, expected, list(SUM.SUMMARY_COLUMNS), doubles)


@pytest.fixture(scope="module")
def curated(tmp_path_factory) -> Path:
    """Three days of 12 lanes through the transform: 2020-04-06 .. 2020-04-08."""
    root = tmp_path_factory.mktemp("summary_job")
    generate(str(root / "raw"), SampleSpec(start_date=dt.date(2020, 4, 6), days=3, lanes=12, seed=3))
    assert run_job(root / "raw", root / "curated", "2020-04-06", "2020-04-08",
                   "--configuration_path", str(CONFIGURATION)) == 0
    return root / "curated"


@pytest.fixture(scope="module")
def summary(curated, tmp_path_factory) -> Path:
    """The summary of 2020-04-06 .. 2020-04-07 into a fresh table: one run that the tests
    taking it read and never change."""
    target = tmp_path_factory.mktemp("summary") / "summary"
    assert run_summary(curated, target, "--start_date", "2020-04-06", "--end_date", "2020-04-07") == 0
    return target


def test_the_summary_equals_duckdbs_every_row_and_column(curated, summary, tmp_path):
    days = [dt.date(2020, 4, 6), dt.date(2020, 4, 7)]
    actual = summary_table_rows(summary)
    assert {r["day"] for r in actual} == set(days)
    assert_same_rows(actual, reference_rows(curated, tmp_path, days))


def test_each_row_names_its_location_as_the_configuration_does(summary):
    labels = {i: loc.label for i, loc in
              C.locations_of(C.parse_configuration(CONFIGURATION.read_bytes(), "c")).items()}
    rows = summary_table_rows(summary)
    assert rows and all(r["uniqueid"] > 0 for r in rows)
    assert {r["location"] for r in rows} == {labels[r["uniqueid"]] for r in rows}
    assert all(r["location"] == labels[r["uniqueid"]] for r in rows)


def test_a_run_replaces_exactly_its_days(curated, tmp_path, capsys):
    target = tmp_path / "summary"
    assert run_summary(curated, target, "--start_date", "2020-04-06", "--end_date", "2020-04-08") == 0
    before = summary_table_rows(target)
    kept = [r for r in before if r["day"] != dt.date(2020, 4, 7)]

    assert run_summary(curated, target, "--start_date", "2020-04-07", "--end_date", "2020-04-07") == 0

    after = summary_table_rows(target)
    assert after == before  # the same day again: the same rows, not twice
    assert [r for r in after if r["day"] != dt.date(2020, 4, 7)] == kept
    out = capsys.readouterr().out
    assert "days 2020-04-07 (UTC)" in out and "2020-04-07:" in out
    # The second run's: its id's time has whole seconds, and both runs may share one.
    report = max((json.loads(path.read_text()) for path in target.glob("_reports/run_date=*/*.json")),
                 key=lambda found: found["started_at"])
    assert report["status"] == "succeeded" and report["days"] == ["2020-04-07"]
    assert report["output"]["rows_per_day"] == {
        "2020-04-07": sum(r["day"] == dt.date(2020, 4, 7) for r in after)}


def test_a_day_without_curated_rows_keeps_no_summary_rows(curated, tmp_path):
    target = tmp_path / "summary"
    assert run_summary(curated, target, "--start_date", "2020-04-08", "--end_date", "2020-04-09") == 0
    assert {r["day"] for r in summary_table_rows(target)} == {dt.date(2020, 4, 8)}


def test_in_a_workflow_run_it_takes_the_days_the_transform_replaced(tmp_path):
    """The transform names the days it replaced in the run's properties; the summary
    reads them there (locally, the file standing in for them)."""
    raw = tmp_path / "raw"
    generate(str(raw), SampleSpec(start_date=dt.date(2020, 4, 7), days=1, lanes=6, seed=9))
    properties = tmp_path / "run" / "wr_1.json"
    properties.parent.mkdir()
    properties.write_text(json.dumps({"start_date": "2020-04-06", "end_date": "2020-04-07"}))

    # No dates given: the transform takes them from the run; 2020-04-06 has no readings.
    assert run_script(ROOT / "glue_jobs" / "traffic_transform.py", "--JOB_NAME", "t",
                      "--source_path", str(raw), "--target_path", str(tmp_path / "curated"),
                      "--run_properties_file", str(properties)) == 0
    assert json.loads(properties.read_text())["curated_days"] == "2020-04-07"

    assert run_summary(tmp_path / "curated", tmp_path / "summary",
                       "--run_properties_file", str(properties)) == 0
    assert {r["day"] for r in summary_table_rows(tmp_path / "summary")} == {dt.date(2020, 4, 7)}


def test_a_missing_curated_table_is_named_and_nothing_is_made(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert run_summary(tmp_path / "empty", tmp_path / "summary", "--start_date", "2020-04-07",
                       "--end_date", "2020-04-07") == 1
    err = capsys.readouterr().err
    assert f"--source_path {tmp_path / 'empty'} holds no curated table" in err
    assert not (tmp_path / "summary" / "metadata").exists()


def test_help_and_unknown_arguments():
    import subprocess

    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "glue_jobs"), "JAVA_HOME": "/nonexistent"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0 and done.stdout.startswith("usage: traffic_daily_summary --JOB_NAME")
    assert "--run_properties_file" in done.stdout and "--source_table" in done.stdout
    done = subprocess.run([sys.executable, str(SCRIPT), "--JOB_NAME", "s", "--source_path", "c",
                           "--target_path", "s", "--start_dte", "2020-04-07"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == ("traffic_daily_summary: error: unknown argument --start_dte; "
                                   "did you mean --start_date?")


def test_pictures_on_demand_read_the_summary_table_without_spark(summary, tmp_path, capsys):
    from tools import report

    target = summary
    rows = summary_table_rows(target)
    jam_minutes = sum(r["jam_minutes"] for r in rows if r["day"] == dt.date(2020, 4, 7))
    capsys.readouterr()

    assert report.main(["--date", "2020-04-07", "--to-date", "2020-04-08", "--summary", str(target),
                        "--out", str(tmp_path / "pages")]) == 0

    printed = capsys.readouterr()
    assert printed.out.splitlines() == [f"pictures of 2020-04-07: {tmp_path / 'pages' / 'traffic_2020-04-07.html'}"]
    page = (tmp_path / "pages" / "traffic_2020-04-07.html").read_text()
    assert "<h2>Totals</h2>" in page and f"{jam_minutes:,}" in page
    assert (tmp_path / "pages" / "jam_heatmap_2020-04-07.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # 2020-04-08 is not in the summary table: no page, and a line says so.
    assert not (tmp_path / "pages" / "traffic_2020-04-08.html").exists()
    assert (f"report: no summary rows for 2020-04-08 (the summary table in {target} holds "
            "2020-04-06..2020-04-07): no page for it") in printed.err.splitlines()


def test_pictures_of_a_folder_without_a_summary_table_say_where_they_looked(tmp_path, capsys):
    from tools import report

    assert report.main(["--date", "2020-04-07", "--summary", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"report: error: no summary table in {tmp_path}: run the workflow first (make run), "
        "or give --summary the folder of the daily summary table")


def test_a_catalog_table_given_by_its_path_alone_is_refused(tmp_path, capsys):
    """A catalog's table has numbered metadata and no version hint: a path's own catalog
    would not see it, and the summary would start a second table in the same folder."""
    for name in ("curated", "summary"):
        (tmp_path / name / "metadata").mkdir(parents=True)
        (tmp_path / name / "metadata" / "00000-1b2c.metadata.json").write_text("{}")
    dates = ["--start_date", "2020-04-07", "--end_date", "2020-04-07"]
    assert run_summary(tmp_path / "curated", tmp_path / "new", *dates) == 1
    assert "holds an Iceberg table of a catalog: give its name as --source_table" in capsys.readouterr().err
    assert run_summary(tmp_path / "curated", tmp_path / "summary", *dates) == 1
    assert "--target_path" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "summary").rglob("*")) == ["00000-1b2c.metadata.json", "metadata"]
