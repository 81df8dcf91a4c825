"""`make bench`'s own arithmetic (benchmarks/bench.py, benchmarks/year.py,
benchmarks/daily_rerun.py), without running a job: the targets it reports met or not from figures written out here, and the
year case's comparison of a run's rows with the DuckDB reference. No Spark."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from benchmarks import bench, daily_rerun, year
from tools import duckdb_reference
from tools.sample_data import SampleSpec, generate

GIB = 2**30


def _run(name: str, wall: float, readings: int, peak_gib: float, **more) -> dict:
    return {"name": name, "wall_seconds": wall, "readings": readings, "peak_rss_bytes_max": int(peak_gib * GIB),
            "peak_rss_gib_max": peak_gib, "repeats": [{}], **more}


def _case(days: int, *runs: dict, **more) -> dict:
    return {"days": days, "label": more.pop("label", bench._days(days)), "runs": list(runs), **more}


@pytest.fixture(scope="module")
def checks() -> dict[str, dict]:
    seven = _case(7, _run("job corrected", 100.0, 50_000_000, 2.5))
    thirty = _case(30, _run("job corrected", 420.0, 200_000_000, 2.9, to_duckdb=3.1))
    a_year = _case(365, _run("job corrected", 110.0, 52_000_000, 3.1, partitions=8760,
                             files_per_partition_max=1, reference_days=["2021-01-01", "2021-12-31"],
                             same_rows_as_reference=False, reference_difference=["2021-12-31: 2 values differ"]),
                   label=year.LABEL, year=True)
    cases = [seven, thirty, a_year]
    return {check["target"]: check for check in bench.targets(cases, bench.scaling(cases))}


def test_thirty_days_per_reading_against_seven(checks):
    # (420 s / 200 M) / (100 s / 50 M) = 2.1 / 2.0 = 1.05: exactly the limit, met
    check = checks["job corrected, 30 days: a reading <= 1.05x its cost over 7 days"]
    assert (check["measured"], check["met"]) == ("1.05x", True)
    check = checks["job corrected, 30 days: wall <= 3x DuckDB's"]
    assert (check["measured"], check["met"]) == ("3.10x", False)


def test_memory_is_held_on_thirty_days_and_the_year_not_on_seven(checks):
    memory = {t: c for t, c in checks.items() if "peak RSS" in t}
    assert {t: c["met"] for t, c in memory.items()} == {
        "job corrected, 30 days: peak RSS < 3 GiB (default settings)": True,
        f"job corrected, {year.LABEL}: peak RSS < 3 GiB (default settings)": False,
    }


def test_the_year_has_a_file_per_hour_and_says_where_its_rows_differ(checks):
    files = checks[f"job corrected, {year.LABEL}: one data file per hour partition (8,760)"]
    assert (files["measured"], files["met"]) == ("8,760 partitions, at most 1 file(s)", True)
    rows = checks[f"job corrected, {year.LABEL}: rows equal DuckDB's of its mode on 2021-01-01, 2021-12-31"]
    assert (rows["measured"], rows["met"]) == ("2021-12-31: 2 values differ", False)


def test_the_year_is_related_to_seven_days_only():
    seven = _case(7, _run("job athena", 100.0, 50_000_000, 2.0))
    thirty = _case(30, _run("job athena", 400.0, 200_000_000, 2.0))
    a_year = _case(365, _run("job athena", 130.0, 52_000_000, 2.0), label=year.LABEL, year=True)
    ratios = bench.scaling([a_year, thirty, seven])
    assert [r["cases"] for r in ratios] == [["7 days", "30 days"], ["7 days", year.LABEL]]
    # (130 / 52 M) / (100 / 50 M) = 2.5 / 2.0
    assert ratios[1]["seconds_per_reading_ratio"] == 1.25
    assert bench._linear(ratios[1]) == ""


def test_without_thirty_days_or_the_year_memory_falls_back_on_the_longest_case():
    (check,) = bench._memory_targets([_case(1, _run("job athena", 40.0, 1, 1.0)),
                                      _case(7, _run("job athena", 90.0, 1, 3.5))])
    assert check["target"].startswith("job athena, 7 days: peak RSS < 3 GiB (default settings; the target is for")
    assert check["met"] is False


def test_a_failed_run_is_a_target_not_met_and_relates_to_nothing():
    failed = {"name": "job corrected", "failed": True, "error": "traffic_transform: error: out of memory: ...",
              "wall_seconds": 660.0, "peak_rss_bytes_max": int(2.7 * GIB), "peak_rss_gib_max": 2.7,
              "repeats": [{}]}
    seven = _case(7, _run("job corrected", 100.0, 50_000_000, 2.5))
    thirty = _case(30, failed)
    bench.relate({"corrected": failed}, {}, {"corrected": {"name": "duckdb corrected", "wall_seconds": 150.0}})
    assert "to_duckdb" not in failed
    cases = [seven, thirty]
    ratios = bench.scaling(cases)
    assert ratios == []
    found = {check["target"]: (check["measured"], check["met"]) for check in bench.targets(cases, ratios)}
    assert found == {
        "job corrected, 30 days: the run succeeds (default settings)":
            ("failed: traffic_transform: error: out of memory: ...", False),
        "job corrected, 30 days: peak RSS < 3 GiB (default settings)": ("2.70 GiB (1 run, which failed)", False),
    }


def test_a_run_is_related_to_duckdb_of_its_own_mode():
    jobs = {"athena": {"name": "job athena", "wall_seconds": 30.0},
            "corrected": {"name": "job corrected", "wall_seconds": 45.0}}
    floors = {"corrected": {"name": "spark floor corrected", "wall_seconds": 36.0}}
    bench.relate(jobs, floors, {"athena": {"name": "duckdb athena", "wall_seconds": 2.0},
                                "corrected": {"name": "duckdb corrected", "wall_seconds": 9.0}})
    # 30 / 2, 45 / 9, 36 / 9; the job over its floor: 45 / 36
    assert [jobs["athena"]["to_duckdb"], jobs["corrected"]["to_duckdb"], floors["corrected"]["to_duckdb"]] == [
        15.0, 5.0, 4.0]
    assert jobs["corrected"]["to_floor"] == 1.25 and "to_floor" not in jobs["athena"]


def test_a_modes_runs_follow_each_other(monkeypatch, tmp_path):
    """The runs a ratio divides are measured one after the other, mode by mode: the
    machine's speed drifts within the quarter of an hour a long case takes."""
    measured = []
    monkeypatch.setattr(bench, "readings_in_files", lambda raw, start, end: (2, 1_000))
    monkeypatch.setattr(bench, "warm_page_cache", lambda raw: None)
    monkeypatch.setattr(bench, "measure", lambda name, *args, **kwargs: measured.append(name) or {
        "name": name, "wall_seconds": float(len(measured))})
    case = bench.run_case(tmp_path, tmp_path, tmp_path, 1, 30, ["athena", "corrected"], patience=None)
    assert measured == ["job athena", "duckdb athena", "spark floor athena",
                        "job corrected", "duckdb corrected", "spark floor corrected"]
    # Each job over the DuckDB run and the floor measured right after it: 1 / 2, 1 / 3.
    (athena,) = [run for run in case["runs"] if run["name"] == "job athena"]
    assert (athena["to_duckdb"], athena["to_floor"]) == (0.5, 0.33)


def test_the_error_line_is_the_jobs_own_else_the_last():
    assert bench.error_line("a\ntraffic_transform: error: out of memory: the driver\nTraceback\n  at x\n") == (
        "traffic_transform: error: out of memory: the driver")
    assert bench.error_line("one\n\n  two  \n\n") == "two"
    assert bench.error_line("") == "(nothing printed)"


# --- the year's comparison with the reference ------------------------------------------

DAY = dt.date(2021, 1, 1)


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    raw = tmp_path_factory.mktemp("year-raw")
    generate(str(raw), SampleSpec(start_date=DAY - dt.timedelta(days=1), days=2, lanes=6, seed=3))
    return raw


def _write_as_job_table(rows, table):
    """`rows` in the job's table layout: data/year=/month=/day=/hour=/ files."""
    for hour in sorted(set(rows.column("hour").to_pylist())):
        folder = table / "data" / f"year={DAY.year}" / f"month={DAY.month}" / f"day={DAY.day}" / f"hour={hour}"
        folder.mkdir(parents=True)
        pq.write_table(rows.filter(pc.equal(rows.column("hour"), hour)), folder / "00000-0-part.parquet")


def test_a_table_with_the_references_rows_is_the_same_and_a_changed_speed_is_named(landing, tmp_path, monkeypatch):
    monkeypatch.setattr(year, "CHECK_DAYS", (DAY,))
    rows = duckdb_reference.curated_rows(str(landing), DAY, DAY, semantics="athena")
    assert rows.num_rows > 1000  # 6 lanes, each minute of the day
    _write_as_job_table(rows, tmp_path / "same")
    check = year.ReferenceCheck(landing, "athena", None, 1, tmp_path / "reference", DAY, DAY)
    assert check(tmp_path / "same") == {"reference_days": ["2021-01-01"], "reference_rows": rows.num_rows,
                                        "same_rows_as_reference": True}

    speeds = rows.column("avgspeed3minutes").to_pylist()
    changed_at = next(i for i, s in enumerate(speeds) if s is not None)
    speeds[changed_at] += 0.5
    changed = rows.set_column(rows.schema.get_field_index("avgspeed3minutes"), "avgspeed3minutes",
                              pa.array(speeds, type=rows.schema.field("avgspeed3minutes").type))
    _write_as_job_table(changed, tmp_path / "changed")
    found = check(tmp_path / "changed")
    assert found["same_rows_as_reference"] is False
    (difference,) = found["reference_difference"]
    assert difference.startswith("2021-01-01: 1 values differ, first: [('avgspeed3minutes'")


def test_a_day_the_table_lacks_or_the_reference_lacks_is_a_difference(landing, tmp_path, monkeypatch):
    monkeypatch.setattr(year, "CHECK_DAYS", (DAY, DAY + dt.timedelta(days=5)))
    rows = duckdb_reference.curated_rows(str(landing), DAY, DAY, semantics="athena")
    _write_as_job_table(rows, tmp_path / "table")
    check = year.ReferenceCheck(landing, "athena", None, 1, tmp_path / "reference", DAY, DAY + dt.timedelta(days=5))
    found = check(tmp_path / "table")
    assert found["same_rows_as_reference"] is False
    assert found["reference_difference"] == ["2021-01-06: the reference has no rows (the job has 0)"]
    assert year.job_rows(tmp_path / "nothing", DAY).num_rows == 0


def test_the_work_per_task_can_be_chosen_and_must_be_positive(capsys):
    assert bench.parse_args(["--days", "7", "--readings-per-task", "2000000"]).readings_per_task == 2_000_000
    assert bench.parse_args(["--days", "7"]).readings_per_task is None  # the job's default
    with pytest.raises(SystemExit):
        bench.parse_args(["--days", "7", "--readings-per-task", "0"])
    assert "--readings-per-task must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("current, expected", [
    (None, "--conf spark.traffic_glue.readingsPerTask=2000000 pyspark-shell"),
    ("pyspark-shell", "--conf spark.traffic_glue.readingsPerTask=2000000 pyspark-shell"),
    # A user's own settings stay, quoted as a shell (and pyspark) splits them.
    ("--driver-java-options '-Da=1 -Db=2' --conf spark.x=y pyspark-shell",
     "--driver-java-options '-Da=1 -Db=2' --conf spark.x=y --conf spark.traffic_glue.readingsPerTask=2000000 "
     "pyspark-shell"),
], ids=["unset", "pyspark-shell-only", "users-own"])
def test_the_work_per_task_is_added_to_the_users_pyspark_submit_args(current, expected):
    from benchmarks.measure import submit_args_with

    assert bench.READINGS_PER_TASK_CONF == "spark.traffic_glue.readingsPerTask"
    assert submit_args_with({bench.READINGS_PER_TASK_CONF: "2000000"}, current) == expected


# A rerun's lines as `daily_rerun.timed_run` keeps them: when each arrived (seconds from
# the start) and its text; the run's output closed at 10.0 s.
RERUN_LINES = [
    (1.30, "traffic-glue [0:00] reading the configuration: config/miv-config-2017-05-18.xml.gz"),
    (1.45, "traffic-glue [0:00] 1 snapshot, 4,254 lanes in all (0.1 s)"),
    (1.45, "traffic-glue [0:00] reading: raw files under raw, processing hours ..."),
    (1.90, "traffic-glue [0:00] read 30 folders, 30 files, 6,064,025 readings (0.4 s)"),
    (2.80, "traffic-glue [0:01] computing and writing: 1 day, 2020-04-08..2020-04-08"),
    (5.00, "traffic-glue [0:04] still computing and writing (0:02): Spark stage 3, 1 of 4 tasks done"),
    (7.50, "traffic-glue [0:06] computed and staged 3,372,224 rows (4.7 s)"),
    (7.50, "traffic-glue [0:06] checking data quality: 7 rules of quality_rules.json on the staged rows"),
    (8.60, "traffic-glue [0:07] 7 rules: 6 passed, 1 skipped (1.1 s)"),
    (8.60, "traffic-glue [0:07] committing: 1 day with raw readings"),
    (8.65, "traffic-glue [0:07] committed 24 hour partitions: snapshot 42 (0.0 s)"),
    (8.70, "traffic-glue [0:07] summarising: the locations with the most jam minutes"),
    (9.10, "traffic-glue [0:07] summarising: done (0.4 s)"),
    (9.12, "traffic-glue [0:07] report: file:curated/_reports/run_date=2026-12-07/r.json"),
    (9.15, "traffic-glue run r: succeeded in 7.8 s"),
    (9.75, "  the daily summary of 2020-04-08 is now out of date"),
]


def test_a_reruns_steps_are_the_gaps_between_its_lines_named_by_the_running_phase():
    found = daily_rerun.steps(RERUN_LINES, ended=10.0)
    expected = {
        "before the first line": 1.30,
        "reading the configuration": 0.15,  # 1.30 -> 1.45
        "reading": 0.45,  # 1.45 -> 1.90
        "the plan, the table's preparation, the run's branch": 0.90,  # 1.90 -> 2.80
        "computing and writing": 4.70,  # 2.80 -> 7.50, the heartbeat inside it
        "checking data quality": 1.10,  # 7.50 -> 8.60
        "committing": 0.05,  # 8.60 -> 8.65
        "the table's mode, between phases": 0.05,  # 8.65 -> 8.70
        "summarising": 0.40,  # 8.70 -> 9.10
        "the report": 0.65,  # 9.10 -> 9.12 -> 9.75, the summary's lines
        "after the last line": 0.25,  # 9.75 -> 10.0, the JVM's end
    }
    assert found.keys() == expected.keys()
    assert found == pytest.approx(expected)
    assert daily_rerun.outside(found) == pytest.approx(10.0 - 4.70)


def test_a_rerun_that_printed_no_progress_is_all_before_its_first_line():
    assert daily_rerun.steps([(2.0, "python: error")], ended=2.5) == {"before the first line": 2.5}


def test_the_reruns_table_gives_each_steps_range_and_the_target():
    rerun = {"wall_seconds": 10.0, "outside_seconds": 5.3,
             "steps": daily_rerun.steps(RERUN_LINES, ended=10.0)}
    faster = {**rerun, "outside_seconds": 4.6, "steps": {**rerun["steps"], "before the first line": 0.6}}
    text = daily_rerun.table({"modes": [{"mode": "corrected", "reruns": [rerun, faster]}]})
    assert "  before the first line" in text and " 0.60..1.30" in text
    assert "outside the computing phase" in text and "4.60..5.30" in text
    assert "(under 5 s asked: not met)" in text
    text = daily_rerun.table({"modes": [{"mode": "athena", "reruns": [faster]}]})
    assert "(under 5 s asked: met)" in text
