"""`python -m tools.report` on the command line: which days get a page, and the one-line
errors for a day the summary table does not hold and for a date that is not a day. The
table is written by Spark (Iceberg, partitioned by day) and read back by the tool with
pyiceberg; the days it holds are chosen here by hand."""

import datetime as dt

import pytest

from tests.factories import frame
from tools import report
from traffic_glue.compute import summary as SUM
from traffic_glue.store import tables

# The summary table below holds 2020-04-06, 2020-04-07 and 2020-04-09: 2020-04-08 is a gap.
HELD = (dt.date(2020, 4, 6), dt.date(2020, 4, 7), dt.date(2020, 4, 9))
LOCATION = 9202


def _row(day: dt.date, hour: int, jam_minutes: int) -> tuple:
    values = {"uniqueid": LOCATION, "day": day, "hour": hour, "local_hour": (hour + 2) % 24,
              "minutes_measured": 60, "jam_minutes": jam_minutes, "long_jam_minutes": 0,
              "mean_speed": 90.0, "p15_speed": 70.0, "vehicles_class2": 10, "vehicles_class3": 2,
              "vehicles_class4": 1, "vehicles_class5": 1, "worst_avgspeed20": 70.0,
              "location": "A14 km 94.7"}
    return tuple(values[name] for name in SUM.TABLE_COLUMNS)


@pytest.fixture(scope="module")
def summary(spark, tmp_path_factory):
    """A summary table holding HELD, two hours a day, as the summary job partitions it."""
    folder = tmp_path_factory.mktemp("report_cli") / "daily_summary"
    rows = [_row(day, hour, jam_minutes=5) for day in HELD for hour in (7, 8)]
    (frame(spark, rows, SUM.TABLE_SCHEMA).writeTo(tables.path_table(spark, str(folder)))
     .partitionedBy(*SUM.SUMMARY_PARTITIONS).create())
    return folder


@pytest.fixture(scope="module")
def empty_summary(spark, tmp_path_factory):
    """A summary table created with no rows."""
    folder = tmp_path_factory.mktemp("report_cli_empty") / "daily_summary"
    (frame(spark, [], SUM.TABLE_SCHEMA).writeTo(tables.path_table(spark, str(folder)))
     .partitionedBy(*SUM.SUMMARY_PARTITIONS).create())
    return folder


@pytest.fixture(scope="module")
def unpartitioned_summary(spark, tmp_path_factory):
    """A table of summary rows of 2020-04-06 and 2020-04-09 that is not partitioned by day."""
    folder = tmp_path_factory.mktemp("report_cli_unpartitioned") / "daily_summary"
    rows = [_row(dt.date(2020, 4, 9), 7, 0), _row(dt.date(2020, 4, 6), 7, 0), _row(dt.date(2020, 4, 6), 8, 0)]
    frame(spark, rows, SUM.TABLE_SCHEMA).writeTo(tables.path_table(spark, str(folder))).create()
    return folder


def _run(capsys, *argv: str) -> tuple[int, list[str], list[str]]:
    status = report.main(list(argv))
    out, err = capsys.readouterr()
    return status, out.splitlines(), err.splitlines()


def test_the_days_the_table_holds(summary, empty_summary, unpartitioned_summary):
    assert report.held_days(summary) == list(HELD)
    assert report.held_days(empty_summary) == []
    # Not partitioned by day (not as the summary job writes it): read from the rows.
    assert report.held_days(unpartitioned_summary) == [dt.date(2020, 4, 6), dt.date(2020, 4, 9)]


def test_a_day_the_table_does_not_hold_is_an_error_naming_the_days_it_holds(summary, tmp_path, capsys):
    out = tmp_path / "pages"
    status, printed, said = _run(capsys, "--date", "2021-01-01", "--summary", str(summary), "--out", str(out))
    assert status == 1 and printed == []
    assert said == [f"report: error: no summary rows for 2021-01-01: the summary table in {summary} "
                    "holds 2020-04-06..2020-04-07, 2020-04-09; run the workflow for that day first"]
    assert not out.exists()


def test_a_range_the_table_holds_no_day_of_is_an_error(summary, tmp_path, capsys):
    out = tmp_path / "pages"
    status, _, said = _run(capsys, "--date", "2020-04-10", "--to-date", "2020-04-12",
                           "--summary", str(summary), "--out", str(out))
    assert status == 1
    assert said == [f"report: error: no summary rows for 2020-04-10..2020-04-12: the summary table in "
                    f"{summary} holds 2020-04-06..2020-04-07, 2020-04-09; run the workflow for those "
                    "days first"]
    assert not out.exists()


def test_a_table_without_rows_says_so(empty_summary, tmp_path, capsys):
    status, _, said = _run(capsys, "--date", "2020-04-07", "--summary", str(empty_summary),
                           "--out", str(tmp_path / "pages"))
    assert status == 1
    assert said == [f"report: error: no summary rows for 2020-04-07: the summary table in {empty_summary} "
                    "holds no rows; run the workflow for that day first"]


def test_a_range_with_a_gap_pages_the_held_days_and_names_the_gap(summary, tmp_path, capsys):
    out = tmp_path / "pages"
    status, printed, said = _run(capsys, "--date", "2020-04-07", "--to-date", "2020-04-09",
                                 "--summary", str(summary), "--out", str(out))
    assert status == 0
    assert printed == [f"pictures of 2020-04-07: {out / 'traffic_2020-04-07.html'}",
                       f"pictures of 2020-04-09: {out / 'traffic_2020-04-09.html'}"]
    assert said == [
        f"report: no summary rows for 2020-04-08 (the summary table in {summary} holds "
        "2020-04-06..2020-04-07, 2020-04-09): no page for it",
        f"report: no locations table in {summary.parent / 'curated' / '_locations'}: the pictures name ids only",
    ]
    assert sorted(p.name for p in out.glob("*.html")) == ["traffic_2020-04-07.html", "traffic_2020-04-09.html"]
    # Two hours of 5 jam minutes on 2020-04-09: its page's totals say 10.
    page = (out / "traffic_2020-04-09.html").read_text(encoding="utf-8")
    assert '<tr><th>jam minutes</th><td class="n">10</td></tr>' in page


@pytest.mark.parametrize("argv, message", [
    (["--date", "2020-4-7"], "--date 2020-4-7 is not a day (YYYY-MM-DD)"),
    (["--date", "20200407"], "--date 20200407 is not a day (YYYY-MM-DD)"),  # fromisoformat takes it
    (["--date", "2020-W15-2"], "--date 2020-W15-2 is not a day (YYYY-MM-DD)"),  # so does this
    (["--date", "2020-02-30"], "--date 2020-02-30 is not a day (YYYY-MM-DD)"),
    (["--date", "2020-04-07", "--to-date", "tomorrow"], "--to-date tomorrow is not a day (YYYY-MM-DD)"),
    (["--date", "2020-04-07", "--to-date", "2020-04-06"], "--to-date is before --date"),
    ([], "the following arguments are required: --date"),
])
def test_a_bad_date_is_one_line_and_status_2(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        report.main([*argv, "--summary", str(tmp_path), "--out", str(tmp_path / "pages")])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"report: error: {message}"]
    assert not (tmp_path / "pages").exists()


@pytest.mark.parametrize("days, text", [
    ([dt.date(2020, 4, 6)], "2020-04-06"),
    ([dt.date(2020, 4, 6), dt.date(2020, 4, 7), dt.date(2020, 4, 9)], "2020-04-06..2020-04-07, 2020-04-09"),
    # Across a month's end.
    ([dt.date(2020, 3, 31), dt.date(2020, 4, 1)], "2020-03-31..2020-04-01"),
    # Four runs are more than MOST_STRETCHES: counted instead.
    ([dt.date(2020, 4, d) for d in (1, 3, 5, 7, 8)], "5 days from 2020-04-01 to 2020-04-08, not all consecutive"),
])
def test_stretches_of_days(days, text):
    assert report.stretches(days) == text
