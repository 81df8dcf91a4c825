"""What a run says it replaced: a `--locations` rerun's rows and readings of its chosen
locations apart from the other locations' rows it carried over, the top list of what it
wrote, and the days of the daily summary that any run which replaced days left out of
date, with the command that refreshes them."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from tests.factories import T0, frame, land_parquet, raw_reading, reading, readings_df
from tests.job_helpers import last_report, run_job, table_rows
from traffic_glue.compute import schema as S
from traffic_glue.compute import transforms
from traffic_glue.compute.counting import RunCounters
from traffic_glue.compute.modes import ATHENA, CORRECTED
from traffic_glue.compute.run_range import RunRange
from traffic_glue.compute.statuses import ReadingStatus as RS
from traffic_glue.compute.statuses import has_status
from traffic_glue.jobs.summary_args import refresh_command
from traffic_glue.runtime.report import RunReport, days_text

DAY_8 = T0 + 86400  # 2020-04-08 00:00Z
SIX = 6 * 3600
# No configuration: every lane is a location of its own, -unieke_id.
LANE_A, LANE_B = 11, 22
LOCATION_A, LOCATION_B = -LANE_A, -LANE_B
NAME_A, NAME_B = "lane 11 (not in the configuration)", "lane 22 (not in the configuration)"


def _speeds(lane: int, unit: int, start: int, speeds: list[int]) -> list[dict]:
    """A reading a minute from `start`, one vehicle of class 2 at each speed: the
    location's speed that minute."""
    return [raw_reading(lane, unit, start + 60 * n, counts=(1, 0, 0, 0), speeds=(speed, 0, 0, 0))
            for n, speed in enumerate(speeds)]


def two_locations_two_days() -> list[dict]:
    """Location A (lane 11): on the 7th 30 km/h 06:00-06:09 (10 jam minutes); on the 8th
    30 km/h 06:00-06:04, then 100 km/h 06:05-06:09, and a defect reading at 06:10. Its
    3-minute mean ([t-120, t]) at 06:05 is (30 + 30 + 100) / 3 = 53.3, above 40: 5 jam
    minutes on the 8th.
    Location B (lane 22): 20 km/h 06:00-06:19 on the 7th (20 jam minutes), 06:00-06:02
    on the 8th (3)."""
    return (
        _speeds(LANE_A, 1, T0 + SIX, [30] * 10)
        + _speeds(LANE_A, 1, DAY_8 + SIX, [30] * 5 + [100] * 5)
        + [raw_reading(LANE_A, 1, DAY_8 + SIX + 600, defect=1)]
        + _speeds(LANE_B, 2, T0 + SIX, [20] * 20)
        + _speeds(LANE_B, 2, DAY_8 + SIX, [20] * 3)
    )


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("two-locations")
    land_parquet(root, two_locations_two_days())
    return root


@pytest.fixture(scope="module")
def runs(spark, landing, tmp_path_factory) -> dict:
    """Both days of both locations, then location A alone on the 8th, into one table:
    each run's report and what it printed."""
    target = tmp_path_factory.mktemp("rerun") / "curated"
    found = {"target": target}
    for name, argv in (("all", ("2020-04-07", "2020-04-08")),
                       ("partial", ("2020-04-08", "2020-04-08", "--locations", str(LOCATION_A)))):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert run_job(landing, target, *argv) == 0
        found[name] = {"report": last_report(target), "out": printed.getvalue().splitlines()}
    return found


def test_a_run_of_every_location_replaces_its_days_and_names_the_summary_days_it_left_stale(runs):
    report, target = runs["all"]["report"], runs["target"]
    # 10 + 11 readings of A (one a defect), 20 + 3 of B; a row per kept reading.
    assert (report["readings"]["read"], report["readings"]["kept"]) == (44, 43)
    assert report["readings"]["filtered"]["defect"] == 1
    assert "kept_of_chosen_locations" not in report["readings"]
    assert report["output"]["rows"] == 43 and "rows_carried_over" not in report["output"]
    # No configuration: which locations there are is not known, nor which have no rows.
    assert "locations_without_rows" not in report["output"]
    # B: 20 + 3 jam minutes; A: 10 + 5.
    assert report["top_jam_locations"] == [{"uniqueid": LOCATION_B, "jam_minutes": 23, "name": NAME_B},
                                           {"uniqueid": LOCATION_A, "jam_minutes": 15, "name": NAME_A}]
    command = (f".venv/bin/python glue_jobs/traffic_daily_summary.py --JOB_NAME local "
               f"--source_path {target} --target_path {target.parent}/daily_summary "
               "--start_date 2020-04-07 --end_date 2020-04-08")
    assert report["output"]["daily_summary_stale"] == {
        "days": ["2020-04-07", "2020-04-08"], "refreshed_next_in_workflow": False, "refresh_command": command}
    assert runs["all"]["out"][-1] == (
        f"  the daily summary of 2020-04-07..2020-04-08 is now out of date: refresh it with {command}")


def test_a_locations_rerun_reports_what_it_replaced_apart_from_what_it_carried_over(runs):
    report, target = runs["partial"]["report"], runs["target"]
    readings, output = report["readings"], report["output"]
    # The 8th's folders only: A's 10 readings and its defect one, B's 3.
    assert (readings["read"], readings["kept"], readings["filtered"]["defect"]) == (14, 13, 1)
    assert readings["kept_of_chosen_locations"] == 10  # A's; B's 3 are counted, not written
    assert (output["rows"], output["locations_written"]) == (10, [LOCATION_A])
    assert output["locations_without_rows"] == 0  # of the one chosen
    assert (output["rows_carried_over"], output["locations_carried_over"]) == (3, 1)  # B's rows of the 8th
    # The one hour partition written holds both: A's 10 rows and B's 3.
    assert (output["partitions"], output["files"]) == (1, 1)
    day_8 = table_rows(target, dt.date(2020, 4, 8))
    assert [sum(1 for row in day_8 if row[0] == location) for location in (LOCATION_B, LOCATION_A)] == [3, 10]
    # The top list is of A alone (B's 3 jam minutes of the 8th were not the run's).
    assert report["top_jam_locations"] == [{"uniqueid": LOCATION_A, "jam_minutes": 5, "name": NAME_A}]
    command = (f".venv/bin/python glue_jobs/traffic_daily_summary.py --JOB_NAME local "
               f"--source_path {target} --target_path {target.parent}/daily_summary "
               "--start_date 2020-04-08 --end_date 2020-04-08")
    assert output["daily_summary_stale"] == {
        "days": ["2020-04-08"], "refreshed_next_in_workflow": False, "refresh_command": command}

    out = runs["partial"]["out"]
    summary = out[next(i for i, line in enumerate(out) if line.startswith("traffic-glue run ")):]
    for line in (
        "  kept                           13",
        "  of them, 10 of the chosen locations (--locations); the others' are counted, not written",
        "  rows written                   10 of 1 chosen location (--locations), replacing theirs",
        "  rows carried over               3 of 1 other location, unchanged",
        "  most jam minutes of the chosen locations (trafficjamindicator = 1):",
        f"            -11:     5 minutes  {NAME_A}",
        f"  the daily summary of 2020-04-08 is now out of date: refresh it with {command}",
    ):
        assert line in summary, line
    assert any(line.startswith("  files holding both   1 hour partitions, 1 files (") for line in summary)
    assert "chosen, without rows" not in "\n".join(summary)


def test_a_locations_run_leaves_a_day_without_raw_readings_as_it_was(spark, landing, tmp_path):
    """A run of location A over the 7th and 8th whose landing holds only the 8th: the
    7th keeps both locations' rows (A's too), the 8th gets A's new rows beside B's, and
    only B's 3 rows of the 8th count as carried over."""
    target = tmp_path / "curated"
    assert run_job(landing, target, "2020-04-07", "2020-04-08") == 0
    day_7 = table_rows(target, dt.date(2020, 4, 7))
    assert [sum(1 for row in day_7 if row[0] == location) for location in (LOCATION_B, LOCATION_A)] == [20, 10]
    only_8th = tmp_path / "only-8th"
    land_parquet(only_8th, [r for r in two_locations_two_days() if r[S.OBSERVED_AT] >= DAY_8])
    assert run_job(only_8th, target, "2020-04-07", "2020-04-08", "--locations", str(LOCATION_A)) == 0
    assert table_rows(target, dt.date(2020, 4, 7)) == day_7
    day_8 = table_rows(target, dt.date(2020, 4, 8))
    assert [sum(1 for row in day_8 if row[0] == location) for location in (LOCATION_B, LOCATION_A)] == [3, 10]
    output = last_report(target)["output"]
    assert output["days_left_unchanged"] == ["2020-04-07"]
    assert (output["rows"], output["rows_carried_over"], output["locations_carried_over"]) == (10, 3, 1)
    assert output["daily_summary_stale"]["days"] == ["2020-04-08"]


def test_the_reports_are_a_json_line_each_and_read_as_a_table(runs, spark):
    reports = sorted(runs["target"].glob("_reports/run_date=*/*.json"))
    assert len(reports) == 2 and all(r.read_text().count("\n") == 1 for r in reports)
    table = spark.read.json(str(runs["target"] / "_reports" / "run_date=*"))
    assert "_corrupt_record" not in table.columns
    got = sorted((r["run_id"], r["rows"]) for r in table.select("run_id", "output.rows").collect())
    assert got == sorted([(runs["all"]["report"]["run_id"], 30 + 13), (runs["partial"]["report"]["run_id"], 10)])


def test_each_day_files_its_runs_with_that_days_partitions_and_outcomes_and_reads_as_a_table(runs, spark):
    """`_reports_by_day/day=`: the 7th holds the first run, the 8th both; each file is the
    run's report for that day (`RunReport.day_jsons`), pointing at the whole one."""
    by_day = runs["target"] / "_reports_by_day"
    first, second = runs["all"]["report"], runs["partial"]["report"]
    filed = {(folder.name, json.loads(path.read_text())["run_id"]): json.loads(path.read_text())
             for folder in by_day.iterdir() for path in folder.glob("*.json")}
    assert sorted(filed) == sorted([("day=2020-04-07", first["run_id"]), ("day=2020-04-08", first["run_id"]),
                                    ("day=2020-04-08", second["run_id"])])
    on_7th = filed[("day=2020-04-07", first["run_id"])]
    assert on_7th["report_path"] == first["report_path"] and on_7th["readings"] == first["readings"]
    assert on_7th["days_replaced"] == ["2020-04-07", "2020-04-08"]
    assert sorted(on_7th["output"]["per_partition"]) == ["year=2020/month=4/day=7/hour=6"]
    assert sorted(first["output"]["per_partition"]) == ["year=2020/month=4/day=7/hour=6", "year=2020/month=4/day=8/hour=6"]
    assert "readings_per_file" in first["source"] and "readings_per_file" not in on_7th["source"]
    assert {d["day"] for rule in on_7th["quality"]["rules"] for d in rule["days"]} == {"2020-04-07"}
    assert {d["day"] for rule in first["quality"]["rules"] for d in rule["days"]} == {"2020-04-07", "2020-04-08"}
    table = spark.read.json(str(by_day / "day=2020-04-08"))
    assert sorted(r["run_id"] for r in table.select("run_id").collect()) == sorted([first["run_id"], second["run_id"]])


def test_the_report_path_is_printed_once_per_run(runs):
    for name in ("all", "partial"):
        said = [line for line in runs[name]["out"] if "report: " in line]
        assert len(said) == 1, said
        assert said[0].endswith(".json") and "/curated/_reports/run_date=" in said[0]


def test_in_a_workflow_run_the_summary_job_that_follows_refreshes_the_days(landing, runs, tmp_path, capsys):
    properties = tmp_path / "workflow-run.json"
    assert run_job(landing, runs["target"], "2020-04-08", "2020-04-08", "--locations", str(LOCATION_A),
                   "--run_properties_file", str(properties)) == 0
    assert last_report(runs["target"])["output"]["daily_summary_stale"] == {
        "days": ["2020-04-08"], "refreshed_next_in_workflow": True, "refresh_command": None}
    assert capsys.readouterr().out.splitlines()[-1] == (
        "  the daily summary of 2020-04-08 is now out of date: "
        "the workflow's daily summary job, which runs next, refreshes it")
    assert json.loads(properties.read_text()) == {"curated_days": "2020-04-08"}  # what it summarises


# --- the counts, on the one pass ------------------------------------------------------------

SPAN_8 = RunRange.for_days(dt.date(2020, 4, 8), dt.date(2020, 4, 8), 60, 24)


@pytest.mark.parametrize("semantics", [CORRECTED, ATHENA])
def test_a_locations_run_counts_its_chosen_locations_apart_from_the_rows_it_carries_over(spark, semantics):
    """Locations -1 and -9 chosen (no configuration: lane 1's location is -1). Kept: lane 1
    twice, lane 2 once; lane 1's defect reading is left out. Rows: lane 1's two (-9 has
    none). Carried over: three rows of locations -2 and -3."""
    counters = RunCounters(SPAN_8, semantics, locations=(-9, -1))
    readings = readings_df(spark, [reading(1, 1, DAY_8 + 60), reading(1, 1, DAY_8 + 120),
                                   reading(2, 1, DAY_8 + 60), reading(1, 1, DAY_8 + 180, defect=1)])
    located = readings.transform(transforms.with_location, None).transform(transforms.with_reading_status)
    kept = counters.count_kept(counters.count_statuses(located).where(has_status(RS.KEPT)))
    rows = counters.count_rows(kept.where(F.col("uniqueid").isin(-9, -1)))
    carried = counters.count_carried_over(frame(spark, [(-2,), (-2,), (-3,)], "uniqueid int"))
    for plan in (rows, carried):
        plan.write.format("noop").mode("overwrite").save()
    counts = counters.collect()
    assert (counts.kept, counts.left_out[RS.DEFECT], counts.output_rows) == (3, 1, 2)
    chosen = counts.chosen
    # athena names a location per minute, after the readings are grouped: not counted.
    assert chosen.kept == (2 if semantics == CORRECTED else None)
    assert (chosen.with_rows, chosen.rows_carried_over, chosen.locations_carried_over) == ((-1,), 3, 2)


def test_a_run_of_every_location_counts_nothing_of_chosen_ones(spark):
    counters = RunCounters(SPAN_8, CORRECTED)
    located = readings_df(spark, [reading(1, 1, DAY_8 + 60)]).transform(transforms.with_location, None)
    kept = counters.count_kept(counters.count_statuses(located.transform(transforms.with_reading_status)))
    counters.count_rows(kept).write.format("noop").mode("overwrite").save()
    assert counters.collect().chosen is None


# --- the command and the lines, without a run ----------------------------------------------

DAYS = [dt.date(2020, 4, 6), dt.date(2020, 4, 7), dt.date(2020, 4, 9)]


def test_the_refresh_command_summarises_the_first_to_the_last_day_beside_the_curated_table():
    assert refresh_command(DAYS, curated_table="traffic.traffic_minutes") == (
        ".venv/bin/python glue_jobs/traffic_daily_summary.py --JOB_NAME local "
        "--source_table traffic.traffic_minutes --target_table traffic.daily_summary "
        "--start_date 2020-04-06 --end_date 2020-04-09")
    assert refresh_command(DAYS, curated_table="t.c", curated_path="s3://b/c",
                           catalog_dir="/my catalog", glue_warehouse="s3://b/") == (
        ".venv/bin/python glue_jobs/traffic_daily_summary.py --JOB_NAME local "
        "--source_table t.c --target_table t.daily_summary --catalog_dir '/my catalog' "
        "--glue_warehouse s3://b/ --start_date 2020-04-06 --end_date 2020-04-09")
    assert refresh_command(DAYS, curated_path="s3a://curated/traffic_minutes/") == (
        ".venv/bin/python glue_jobs/traffic_daily_summary.py --JOB_NAME local "
        "--source_path s3a://curated/traffic_minutes/ --target_path s3a://curated/daily_summary "
        "--start_date 2020-04-06 --end_date 2020-04-09")
    assert refresh_command(DAYS, curated_path="curated").split(" --target_path ")[1] == (
        "daily_summary --start_date 2020-04-06 --end_date 2020-04-09")
    # A job run on Glue outside a workflow: the deployed summary job, as README runs it.
    assert refresh_command(DAYS, curated_table="traffic.traffic_minutes", on_glue=True) == (
        ".venv/bin/python -m tools.deploy run-job --summary --start-date 2020-04-06 --end-date 2020-04-09")


def test_days_are_said_as_runs_of_consecutive_days():
    assert days_text(["2020-04-09", "2020-04-06", "2020-04-07"]) == "2020-04-06..2020-04-07, 2020-04-09"
    assert days_text(["2020-02-28", "2020-02-29", "2020-03-01"]) == "2020-02-28..2020-03-01"
    assert days_text(["2020-04-08"]) == "2020-04-08"


def _partial_report(kept_of_chosen: int | None) -> RunReport:
    report = RunReport("r1", "job", {"start_date": "2020-04-08", "end_date": "2020-04-08",
                                     "semantics": "athena", "locations": (957, 960, 3159)},
                       "2020-04-09T01:00:00+00:00")
    report.readings = {"read": 20, "kept": 20, "filtered": {}, "rejected": {}, "rejected_total": 0,
                       "filtered_total": 0, "kept_of_chosen_locations": kept_of_chosen}
    report.output = {"rows": 1500, "locations_written": [957, 3159], "rows_carried_over": 2880,
                     "locations_carried_over": 2, "partitions": 24, "files": 24, "bytes": 4_500_000,
                     "max_files_per_partition": 1}
    return report


def test_an_athena_rerun_says_kept_counts_every_location_and_names_chosen_ids_without_rows():
    lines = _partial_report(None).summary().split("\n")
    assert ("  (kept counts every location's readings: athena names a row's location by the minute's "
            "largest lane, so --locations chooses rows, not readings)") in lines
    assert "  rows written                1,500 of 2 chosen locations (--locations), replacing theirs" in lines
    assert "  rows carried over           2,880 of 2 other locations, unchanged" in lines
    assert ("  files holding both   24 hour partitions, 24 files (4.5 MB; at most 1 per partition)"
            in lines)
    assert "  chosen, without rows 960" in lines
