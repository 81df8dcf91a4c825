"""The run report: exact accounting and a summary a traffic engineer can read."""

import json

from traffic_glue.counting import ReadingCounts
from traffic_glue.report import RunReport
from traffic_glue.statuses import ReadingStatus as RS


def _report() -> RunReport:
    report = RunReport("r1", "job", {"start_date": "2020-04-07", "end_date": "2020-04-07",
                                     "semantics": "corrected"}, "2020-04-08T01:00:00+00:00")
    # 100 read: 3 rejected, 2 outside the days, 4 defect, 1 unknown occupancy,
    # 90 passed step 1, of which 5 were duplicates -> 85 kept.
    statuses = {status: 0 for status in RS}
    statuses.update({RS.BAD_SPEED: 2, RS.BAD_LANE_ID: 1, RS.OUTSIDE_DAYS: 2, RS.DEFECT: 4,
                     RS.UNKNOWN_OCCUPANCY: 1, RS.DUPLICATE: 5, RS.KEPT: 85})
    report.count_readings(ReadingCounts(statuses, days_with_readings=(0,), output_rows=40))
    report.output = {"path": "/out", "rows": 40, "partitions": 2, "files": 2, "bytes": 3_000_000,
                     "max_files_per_partition": 1,
                     "per_partition": {"year=2020/month=4/day=7/hour=0": {"files": 1, "bytes": 1_000_000},
                                       "year=2020/month=4/day=7/hour=1": {"files": 1, "bytes": 2_000_000}}}
    report.top_jam_locations = [{"uniqueid": 957, "jam_minutes": 12}]
    return report


def test_accounting_is_exact():
    readings = _report().readings
    assert readings["filtered"] == {"outside_days": 2, "defect": 4, "unknown_occupancy": 1,
                                    "duplicate": 5}
    assert readings["rejected"] == {"bad_speed": 2, "bad_unieke_id": 1}
    assert (readings["kept"], readings["filtered_total"], readings["rejected_total"]) == (85, 12, 3)
    assert _report().accounting_holds  # 85 + 12 + 3 == 100


def test_accounting_that_does_not_add_up_is_flagged():
    report = _report()
    report.readings["read"] = 101
    assert json.loads(report.to_json())["accounting_holds"] is False


def test_summary_names_every_count_and_the_layout():
    text = _report().summary()
    for expected in ("readings read                 100", "kept                           85",
                     "left out: duplicate                 5", "rejected: bad_speed                 2",
                     "40 in 2 hour partitions, 2 files (3.0 MB; at most 1 per partition)",
                     "per hour partition   1..1 files, 1.00..2.00 MB",
                     "location    957:    12 minutes"):
        assert expected in text, expected
    assert "rejected readings are in" not in text  # no quarantine was written


def test_summary_names_the_table_format_its_commit_and_the_days_left_unchanged():
    report = _report()
    report.output.update(table_format="iceberg", snapshot_id=42, publish_seconds=1.25,
                         days_left_unchanged=["2020-04-07", "2020-04-09"])
    text = report.summary()
    assert "(iceberg, snapshot 42, published in 1.2 s)" in text
    assert "left unchanged: no raw readings  2020-04-07, 2020-04-09" in text
