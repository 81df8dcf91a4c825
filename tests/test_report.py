"""The run reports: what every report has (`Report`: its fields, its JSON, its run's
try/finally), the transform's exact accounting and the daily summary's, each with a
summary a traffic engineer can read."""

import datetime as dt
import json
import re

import pytest

from traffic_glue.compute.counting import ReadingCounts
from traffic_glue.compute.statuses import ReadingStatus as RS
from traffic_glue.runtime.report import Report, RunReport, SummaryReport, new_run_id


def _report() -> RunReport:
    report = RunReport("r1", "job", {"start_date": "2020-04-07", "end_date": "2020-04-07",
                                     "semantics": "corrected"}, "2020-04-08T01:00:00+00:00")
    # 100 read: 3 rejected, 2 outside the days, 4 defect, 1 unknown occupancy,
    # 3 of wrong-way lanes, 87 passed steps 1 and 1a, of which 5 were duplicates -> 82 kept.
    statuses = {status: 0 for status in RS}
    statuses.update({RS.BAD_SPEED: 2, RS.BAD_LANE_ID: 1, RS.OUTSIDE_DAYS: 2, RS.DEFECT: 4,
                     RS.UNKNOWN_OCCUPANCY: 1, RS.WRONG_WAY_LANE: 3, RS.DUPLICATE: 5, RS.KEPT: 82})
    report.count_readings(ReadingCounts(statuses, days_with_readings=(0,), output_rows=40))
    report.output = {"path": "/out", "rows": 40, "partitions": 2, "files": 2, "bytes": 3_000_000,
                     "max_files_per_partition": 1,
                     "per_partition": {"year=2020/month=4/day=7/hour=0": {"files": 1, "bytes": 1_000_000},
                                       "year=2020/month=4/day=7/hour=1": {"files": 1, "bytes": 2_000_000}}}
    report.top_jam_locations = [{"uniqueid": 957, "jam_minutes": 12}]
    return report


def _lines(text: str) -> list[str]:
    return text.split("\n")


def test_accounting_is_exact():
    readings = _report().readings
    assert readings["filtered"] == {"outside_days": 2, "defect": 4, "unknown_occupancy": 1,
                                    "wrong_way_lane": 3, "duplicate": 5}
    assert readings["rejected"] == {"bad_speed": 2, "bad_unieke_id": 1}
    assert (readings["read"], readings["kept"], readings["filtered_total"],
            readings["rejected_total"]) == (100, 82, 15, 3)
    assert _report().accounting_holds  # 82 + 15 + 3 == 100


def test_accounting_that_does_not_add_up_is_flagged():
    report = _report()
    report.readings["read"] = 101
    assert json.loads(report.to_json())["accounting_holds"] is False


def test_unconfigured_readings_are_of_the_kept_ones_not_another_bucket():
    """`readings.unconfigured` (corrected) counts kept readings: the accounting is the same."""
    report = _report()
    report.readings["unconfigured"] = {"readings": 7, "lanes": 2}
    values = json.loads(report.to_json())
    assert values["readings"]["unconfigured"] == {"readings": 7, "lanes": 2}
    assert values["accounting_holds"] is True


def test_summary_names_every_count_and_the_layout():
    text = _report().summary()
    for expected in ("readings read                 100", "kept                           82",
                     "left out: duplicate                 5", "left out: wrong_way_lane            3",
                     "rejected: bad_speed                 2",
                     "40 in 2 hour partitions, 2 files (3.0 MB; at most 1 per partition)",
                     "per hour partition   1..1 files, 1.00..2.00 MB",
                     "        957:    12 minutes"):
        assert expected in text, expected
    # A location without a name (athena's ids) is its id alone.
    assert "    " + " " * 8 + "957:    12 minutes" in _lines(text)
    assert "rejected readings are in" not in text  # no quarantine was written
    assert "not in the configuration" not in text  # no unconfigured count: no line
    assert "locations:" not in text  # the locations table was not recorded


def test_summary_lists_left_out_rules_in_the_order_they_apply():
    lines = [line.split()[2] for line in _lines(_report().summary()) if line.startswith("  left out: ")]
    assert lines == ["outside_days", "defect", "unknown_occupancy", "wrong_way_lane", "duplicate"]


def test_summary_names_the_unconfigured_readings_and_lanes_after_the_counts():
    report = _report()
    report.readings["unconfigured"] = {"readings": 1234, "lanes": 2}
    lines = _lines(report.summary())
    line = ("  of them, 1,234 readings of 2 lanes not in the configuration "
            "(each a location of its own, -unieke_id)")
    assert line in lines
    # It follows the counts it qualifies: after the kept, left-out and rejected lines.
    assert lines.index(line) == max(i for i, l in enumerate(lines)
                                    if l.startswith(("  kept", "  left out:", "  rejected:"))) + 1


def test_summary_says_nothing_of_unconfigured_lanes_when_there_are_none():
    report = _report()
    report.readings["unconfigured"] = {"readings": 0, "lanes": 0}
    assert "not in the configuration" not in report.summary()


def test_summary_names_the_most_jammed_locations():
    report = _report()
    report.top_jam_locations = [
        {"uniqueid": 398698145, "jam_minutes": 120, "name": "A14 km 94.7 (Parking Kruibeke), direction 1"},
        {"uniqueid": -957, "jam_minutes": 12, "name": "lane 957 (not in the configuration)"},
        {"uniqueid": 21, "jam_minutes": 3, "name": None},
    ]
    lines = _lines(report.summary())
    start = lines.index("  most jam minutes (trafficjamindicator = 1):")
    assert lines[start + 1:start + 4] == [
        "      398698145:   120 minutes  A14 km 94.7 (Parking Kruibeke), direction 1",
        "           -957:    12 minutes  lane 957 (not in the configuration)",
        "             21:     3 minutes",
    ]


def test_summary_says_what_the_run_did_to_the_locations_table():
    report = _report()
    # docs/SEMANTICS.md's example: the first run with the real network's configuration.
    report.output["locations"] = {"table": "traffic.locations", "changed": True, "locations": 2389,
                                  "versions": 2389, "new_locations": 2389,
                                  "configurations": ["miv-config-2017-05-18.xml.gz"]}
    assert "  locations: 2,389 locations (2,389 new) in traffic.locations" in _lines(report.summary())
    # A lane moved by a later snapshot: more rows than locations, nothing new.
    report.output["locations"] = {"table": "/out/_locations", "changed": True, "locations": 3,
                                  "versions": 4, "new_locations": 0, "configurations": ["a", "b"]}
    assert "  locations: 3 locations (4 rows over configuration versions) in /out/_locations" in _lines(
        report.summary())
    # Both, with a thousands separator.
    report.output["locations"] = {"table": "t", "changed": True, "locations": 1200,
                                  "versions": 1201, "new_locations": 12}
    assert "  locations: 1,200 locations (12 new; 1,201 rows over configuration versions) in t" in _lines(
        report.summary())
    # A rerun of the same days: the table is left as it was.
    report.output["locations"] = {"table": "traffic.locations", "changed": False, "locations": 2389,
                                  "versions": 2389, "new_locations": 0}
    assert "  locations: 2,389 locations (unchanged) in traffic.locations" in _lines(report.summary())


def test_summary_names_the_table_its_commit_and_the_days_left_unchanged():
    report = _report()
    report.output.update(table="traffic.traffic_minutes", path="s3://b/curated", snapshot_id=42,
                         days_left_unchanged=["2020-04-07", "2020-04-09"])
    text = report.summary()
    assert "  output: traffic.traffic_minutes at s3://b/curated (iceberg, snapshot 42)" in _lines(text)
    assert "left unchanged: no raw readings  2020-04-07, 2020-04-09" in text
    # A folder's table: its name is its folder, said once.
    report.output.update(table="file:/data/curated", path="file:/data/curated")
    assert "  output: file:/data/curated (iceberg, snapshot 42)" in _lines(report.summary())


# --- what every report has ------------------------------------------------------------------


COMMON_FIELDS = {"run_id", "job_name", "arguments", "started_at", "status", "error", "finished_at",
                 "duration_seconds", "report_path"}


def test_the_transforms_report_is_the_common_one_and_its_own_fields():
    values = json.loads(_report().to_json())
    assert set(values) == COMMON_FIELDS | {"source", "readings", "output", "top_jam_locations",
                                           "quarantines_dropped", "days_replaced", "accounting_holds",
                                           "quality"}
    assert "lock_taken_over" not in values and "recovered_runs" not in values  # no lock any more


def test_the_days_replaced_are_written_as_iso_dates():
    report = _report()
    report.days_replaced = [dt.date(2020, 4, 7), dt.date(2020, 4, 9)]
    assert json.loads(report.to_json())["days_replaced"] == ["2020-04-07", "2020-04-09"]


def test_a_days_filed_report_is_the_run_with_that_days_partitions_and_outcomes_alone():
    """`_reports_by_day/day=`: what a run of two days files under each (a year's run filed
    its whole report 365 times, 2.1 MB each)."""
    report = _report()
    d7, d8, d9 = dt.date(2020, 4, 7), dt.date(2020, 4, 8), dt.date(2020, 4, 9)
    report.source = {"root": "/raw", "readings_per_file": {"/raw/a.parquet": 60, "/raw/b.parquet": 40}}
    report.output["per_partition"]["year=2020/month=4/day=8/hour=23"] = {"files": 1, "bytes": 5}
    report.days_replaced = [d7, d8]
    report.quality = {"ruleset": "rules.json", "checked": True, "rules": [
        {"name": "key_is_complete", "status": "passed",
         "days": [{"day": d7, "status": "passed"}, {"day": d8, "status": "passed"}]},
        {"name": "key_is_unique", "status": "skipped", "days": []}]}
    whole = json.loads(report.to_json())
    filed = {day: json.loads(text) for day, text in report.day_jsons([d7, d8, d9])}
    assert list(filed) == [d7, d8, d9]
    # Every field of the run as it is, but the readings per file.
    for day, values in filed.items():
        assert {key: value for key, value in values.items() if key not in ("source", "output", "quality")} == {
            key: value for key, value in whole.items() if key not in ("source", "output", "quality")}
        assert values["source"] == {"root": "/raw"}
        assert values["days_replaced"] == ["2020-04-07", "2020-04-08"]
        assert {key: value for key, value in values["output"].items() if key != "per_partition"} == {
            key: value for key, value in whole["output"].items() if key != "per_partition"}
    assert filed[d7]["output"]["per_partition"] == {"year=2020/month=4/day=7/hour=0": {"files": 1, "bytes": 1_000_000},
                                                    "year=2020/month=4/day=7/hour=1": {"files": 1, "bytes": 2_000_000}}
    assert filed[d8]["output"]["per_partition"] == {"year=2020/month=4/day=8/hour=23": {"files": 1, "bytes": 5}}
    assert filed[d9]["output"]["per_partition"] == {}
    assert [r["days"] for r in filed[d8]["quality"]["rules"]] == [[{"day": "2020-04-08", "status": "passed"}], []]
    assert [r["days"] for r in filed[d9]["quality"]["rules"]] == [[], []]
    assert filed[d8]["quality"]["ruleset"] == "rules.json"
    # The report itself is untouched.
    assert json.loads(report.to_json()) == whole and len(whole["quality"]["rules"][0]["days"]) == 2


class FakeConfig:
    run_id, job_name = None, "local-transform"

    def as_report(self):
        return {"start_date": "2020-04-07"}


def test_a_report_for_a_config_gets_a_new_run_id_unless_it_has_one():
    report = RunReport.for_config(FakeConfig())
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", report.run_id)
    assert (report.job_name, report.arguments, report.status) == ("local-transform", {"start_date": "2020-04-07"},
                                                                  "running")
    assert dt.datetime.fromisoformat(report.started_at).tzinfo == dt.timezone.utc
    given = FakeConfig()
    given.run_id = "jr_1"
    assert SummaryReport.for_config(given, days=["2020-04-07"]).run_id == "jr_1"
    assert new_run_id(dt.datetime(2020, 4, 8, 1, 2, 3, tzinfo=dt.timezone.utc)).startswith("20200408T010203Z-")


def test_running_marks_success_and_times_the_run():
    written = []
    report = Report("r1", "job", {}, "2020-04-08T01:00:00+00:00")
    with report.running(then=lambda: written.append(report.status)):
        assert report.status == "running"
    assert (report.status, report.error, written) == ("succeeded", None, ["succeeded"])
    assert report.duration_seconds >= 0 and report.finished_at >= report.started_at
    assert report.exit_status == 0


def test_running_marks_a_failure_with_the_errors_first_line_and_lets_it_go_on():
    written = []
    report = Report("r1", "job", {}, "2020-04-08T01:00:00+00:00")
    with pytest.raises(ValueError, match="no rows"):
        with report.running(then=lambda: written.append(report.status)):
            raise ValueError("  no rows to write\n(details)")
    assert (report.status, report.error, written) == ("failed", "no rows to write", ["failed"])
    assert report.finished_at is not None and report.exit_status == 1


def test_an_error_without_a_message_is_named_by_its_kind():
    report = Report("r1", "job", {}, "2020-04-08T01:00:00+00:00")
    with pytest.raises(KeyError):
        with report.running():
            raise KeyError()
    assert report.error == "KeyError"


def test_the_transforms_summary_starts_with_the_common_lines():
    report = _report()
    report.status, report.duration_seconds, report.error = "failed", 12.34, "no rows to write"
    report.report_path = "/out/_reports/run_date=2020-04-08/r1.json"
    lines = _lines(report.summary())
    assert lines[:3] == ["traffic-glue run r1: failed in 12.3 s", "  days 2020-04-07 .. 2020-04-07, semantics corrected",
                         "  error: no rows to write"]
    # The report's path is said once, as the run writes it (a progress line), not here too.
    assert not any("/out/_reports/" in line for line in lines)


def _summary_report() -> SummaryReport:
    report = SummaryReport("s1", "summary", {}, "2020-04-08T02:00:00+00:00", days=["2020-04-06", "2020-04-07"])
    report.status, report.duration_seconds = "succeeded", 4.21
    report.output = {"table": "traffic.daily_summary", "snapshot_id": 77, "rows": 1500, "locations": 40,
                     "rows_per_day": {"2020-04-06": 700, "2020-04-07": 800}, "curated_rows": 123456}
    report.report_path = "s3://c/summary/_reports/run_date=2020-04-08/s1.json"
    return report


def test_the_summarys_report_says_its_days_and_what_it_wrote():
    assert _lines(_summary_report().summary()) == [
        "traffic-glue daily summary s1: succeeded in 4.2 s",
        "  days 2020-04-06, 2020-04-07 (UTC)",
        "  curated rows read         123,456",
        "  summary rows written        1,500 (40 locations)",
        "    2020-04-06:      700 rows",
        "    2020-04-07:      800 rows",
        "  output: traffic.daily_summary (iceberg, snapshot 77)",
    ]


def test_the_summarys_report_of_no_days_and_of_a_failure():
    report = SummaryReport("s2", "summary", {}, "2020-04-08T02:00:00+00:00", status="failed",
                           error="--source_table traffic.x does not exist")
    assert _lines(report.summary()) == ["traffic-glue daily summary s2: failed", "  days none (UTC)",
                                        "  error: --source_table traffic.x does not exist"]
    values = json.loads(report.to_json())
    assert set(values) == COMMON_FIELDS | {"days", "output"}
    assert (values["days"], values["output"], values["status"]) == ([], {}, "failed")
