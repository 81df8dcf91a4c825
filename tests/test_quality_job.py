"""The job's data quality check before its commit (docs/QUALITY.md), run as Glue runs the
script: a blocking rule that fails publishes nothing and exits 3 with one line; a
warning is reported and the run commits; `off` checks nothing.

One landing, four runs in order on one table, shared by the tests:

1. day 7 with the shipped rules: committed (`published`);
2. days 7..8 with the shipped rules and one more, blocking: `currentspeed` at most 90,
   which 30 minutes of the 8th break (`blocked`);
3. day 8 with the shipped rules: two warnings, committed (`warned`);
4. day 8 again with `--quality_rules off` (`unchecked`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from tests.factories import T0, land_parquet, raw_reading
from tests.job_helpers import iceberg_table, last_report, partition_digests, run_job, table_rows
from traffic_glue.store import rulesets

ROOT = Path(__file__).resolve().parents[1]
DAY_7, DAY_8 = dt.date(2020, 4, 7), dt.date(2020, 4, 8)
SIX = 6 * 3600
STRICT_RULE = {"name": "speeds_below_90", "check": "between", "columns": ["currentspeed"], "min": 0, "max": 90,
               "nulls": True, "severity": "blocking"}


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    """Lanes 101 and 102 (no configuration: locations -101 and -102) from 06:00 to 07:59
    on the 7th at 60 km/h, 240 rows; lane 101 from 06:00 to 06:59 on the 8th, 60 rows:
    at 100 km/h for 30 minutes, then at 60."""
    root = tmp_path_factory.mktemp("quality-landing")
    day_7 = [raw_reading(lane, 1, T0 + SIX + 60 * m, speeds=(60, 0, 0, 0)) for lane in (101, 102) for m in range(120)]
    day_8 = [raw_reading(101, 1, T0 + 86400 + SIX + 60 * m, speeds=(100 if m < 30 else 60, 0, 0, 0))
             for m in range(60)]
    land_parquet(root, day_7 + day_8)
    return root


def run(landing: Path, target: Path, start: str, end: str, *extra: str) -> tuple[int, str, str]:
    """The job script run in this process: its exit status, standard output and error."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = run_job(landing, target, start, end, *extra)
    return status, out.getvalue(), err.getvalue()


def table_state(target: Path) -> dict:
    """What readers of the table see: main's snapshot, its data files (paths and hashes),
    the rows of each day, and the table's branches."""
    table = iceberg_table(target)
    return {
        "snapshot": table.current_snapshot().snapshot_id,
        "files": sorted(task.file.file_path for task in table.scan().plan_files()),
        "digests": partition_digests(target),
        "rows_7": table_rows(target, DAY_7),
        "rows_8": table_rows(target, DAY_8),
        "refs": sorted(table.metadata.refs),
    }


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quality-table") / "curated"


@pytest.fixture(scope="module")
def published(landing, target) -> dict:
    status, out, err = run(landing, target, "2020-04-07", "2020-04-07")
    assert status == 0, err
    return {"out": out, "report": last_report(target), "state": table_state(target)}


@pytest.fixture(scope="module")
def blocked(landing, target, published, tmp_path_factory) -> dict:
    rules = json.loads((ROOT / "glue_jobs" / "traffic_glue" / rulesets.SHIPPED).read_text())
    rules["rules"].append(STRICT_RULE)
    path = tmp_path_factory.mktemp("quality-rules") / "strict.json"
    path.write_text(json.dumps(rules))
    status, out, err = run(landing, target, "2020-04-07", "2020-04-08", "--quality_rules", str(path))
    return {"status": status, "out": out, "err": err, "path": path, "report": last_report(target),
            "state": table_state(target)}


@pytest.fixture(scope="module")
def warned(landing, target, blocked) -> dict:
    status, out, err = run(landing, target, "2020-04-08", "2020-04-08")
    assert status == 0, err
    return {"out": out, "report": last_report(target), "state": table_state(target)}


@pytest.fixture(scope="module")
def unchecked(landing, target, warned) -> dict:
    status, out, err = run(landing, target, "2020-04-08", "2020-04-08", "--quality_rules", "off")
    assert status == 0, err
    return {"out": out, "report": last_report(target), "state": table_state(target)}


def rule_days(report: dict, name: str) -> list[tuple]:
    (rule,) = [r for r in report["quality"]["rules"] if r["name"] == name]
    return [(d["day"], d["status"], d["value"]) for d in rule["days"]]


def test_the_shipped_rules_let_a_day_through_with_its_warnings_reported(published):
    quality = published["report"]["quality"]
    assert (quality["ruleset"], quality["checked"], quality["blocked"]) == ("traffic_glue/quality_rules.json", True, False)
    assert [(r["name"], r["status"]) for r in quality["rules"]] == [
        ("key_is_unique", "passed"), ("key_is_complete", "passed"), ("speeds_in_range", "passed"),
        ("indicators_in_set", "passed"), ("vehicle_counts_not_negative", "passed"),
        ("minutes_per_location", "failed"), ("day_rows_in_band", "skipped")]
    assert quality["warnings"] == ["minutes_per_location"]
    assert rule_days(published["report"], "minutes_per_location") == [("2020-04-07", "failed", 2)]
    assert published["report"]["output"]["rows"] == 240


def test_a_blocking_rule_that_fails_publishes_nothing(published, blocked):
    """Main's snapshot, its data files and the 7th's rows are as the first run left them,
    the 8th has no row, and the run's branch is gone."""
    before, after = published["state"], blocked["state"]
    assert after == before
    assert after["refs"] == ["main"] and after["rows_8"] == [] and len(after["rows_7"]) == 240


def test_the_exit_status_is_3_and_one_line_names_the_rule_its_value_and_its_threshold(blocked):
    assert blocked["status"] == 3
    assert blocked["err"].splitlines() == [
        "traffic_transform: error: data quality: 1 blocking rule failed, nothing was published: "
        "speeds_below_90 on 2020-04-08: 30 values outside (currentspeed) (wanted: currentspeed in 0..90 or NULL) "
        f"[ruleset {blocked['path']}]"]
    assert "traffic-glue run " not in blocked["out"]  # the line, not the summary


def test_the_report_of_the_blocked_run_holds_every_rule_s_outcome(blocked):
    report = blocked["report"]
    assert report["status"] == "failed" and report["error"] == blocked["err"].splitlines()[0].split("error: ", 1)[1]
    assert report["days_replaced"] == [] and "snapshot_id" not in report["output"]
    quality = report["quality"]
    assert (quality["ruleset"], quality["blocked"], quality["blocking_failed"]) == (
        str(blocked["path"]), True, ["speeds_below_90"])
    assert quality["warnings"] == ["minutes_per_location", "day_rows_in_band"]
    assert {r["name"]: r["status"] for r in quality["rules"]} == {
        "key_is_unique": "passed", "key_is_complete": "passed", "speeds_in_range": "passed",
        "indicators_in_set": "passed", "vehicle_counts_not_negative": "passed",
        "minutes_per_location": "failed", "day_rows_in_band": "failed", "speeds_below_90": "failed"}
    assert rule_days(report, "speeds_below_90") == [("2020-04-07", "passed", 0), ("2020-04-08", "failed", 30)]
    # The 8th's 60 rows against the 7th's 240, the only day published before it; nothing before the 7th.
    assert rule_days(report, "day_rows_in_band") == [("2020-04-07", "skipped", None), ("2020-04-08", "failed", 0.25)]
    assert report["readings"]["read"] == 300 and report["accounting_holds"]


def test_a_warning_that_fails_is_reported_and_the_run_commits(blocked, warned):
    assert warned["state"]["snapshot"] != blocked["state"]["snapshot"]
    assert len(warned["state"]["rows_8"]) == 60 and warned["state"]["rows_7"] == blocked["state"]["rows_7"]
    report = warned["report"]
    assert report["status"] == "succeeded" and report["days_replaced"] == ["2020-04-08"]
    assert report["quality"]["warnings"] == ["minutes_per_location", "day_rows_in_band"]
    assert rule_days(report, "minutes_per_location") == [("2020-04-08", "failed", 1)]
    assert rule_days(report, "day_rows_in_band") == [("2020-04-08", "failed", 0.25)]
    summary = warned["out"][warned["out"].index("traffic-glue run "):]
    assert "  data quality (traffic_glue/quality_rules.json): 7 rules, 5 passed, 2 warnings\n" in summary
    assert ("    warning minutes_per_location 2020-04-08: 1 of 1 location below (fewest: location -101, "
            "60 minutes, 0.042 of the day) (wanted: every location at least 0.5 of the day's 1,440 minutes (720))\n"
            in summary)
    assert ("    warning day_rows_in_band 2020-04-08: 60 rows, 0.25 x the median 240 of the published day "
            "before it (wanted: 0.5..1.5 x the median rows of the last 7 published days)\n" in summary)


def test_off_checks_nothing_and_says_so(warned, unchecked):
    assert unchecked["report"]["quality"] == {"ruleset": "off", "checked": False, "blocked": False,
                                              "blocking_failed": [], "warnings": [], "rules": []}
    assert "checking data quality" not in unchecked["out"]
    assert "  data quality: not checked (--quality_rules off)\n" in unchecked["out"]
    assert unchecked["state"]["rows_8"] == warned["state"]["rows_8"]
