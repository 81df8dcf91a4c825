"""The transform's and the daily summary's arguments (jobs/transform_args.py,
jobs/summary_args.py): defaults, every bad value named, --help and the README's tables.
Where their days come from is tests/test_run_properties.py's."""

import dataclasses
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from traffic_glue.jobs import summary_args, transform_args
from traffic_glue.jobs.summary_args import parse_summary_args
from traffic_glue.jobs.transform_args import parse_job_args
from traffic_glue.runtime.arguments import ArgumentError, markdown_table

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "glue_jobs" / "traffic_transform.py"
# A source folder that exists: a local one that does not is refused before Spark starts.
BASE = ["script.py", "--JOB_NAME", "t", "--source_path", str(ROOT / "tests"), "--target_path", "out"]
DAYS = ["--start_date", "2020-04-07", "--end_date", "2020-04-08"]


def test_defaults():
    config = parse_job_args(BASE + DAYS)
    assert (config.semantics, config.source_format, config.late_hours, config.lookback_minutes) == (
        "corrected", "parquet", 24, 60)
    assert (config.start_date, config.end_date) == (dt.date(2020, 4, 7), dt.date(2020, 4, 8))
    assert config.locations is None and config.corrupt_files == "fail"


def test_every_option():
    config = parse_job_args(BASE + DAYS + [
        "--semantics", "athena", "--source_format", "json", "--late_hours", "6",
        "--lookback_minutes", "10", "--locations", "3159, 957,957", "--corrupt_files", "skip",
        # Glue's own arguments pass through untouched.
        "--TempDir", "s3://tmp/", "--enable-metrics", "true",
    ])
    assert (config.semantics, config.source_format, config.late_hours) == ("athena", "json", 6)
    assert config.lookback_minutes == 10 and config.locations == (957, 3159)
    assert config.corrupt_files == "skip"


def test_catalog_tables_in_place_of_paths():
    config = parse_job_args(["s", "--JOB_NAME", "t", "--source_table", "traffic.raw_measurements",
                             "--target_table", "traffic.traffic_minutes"] + DAYS)
    assert (config.source_table, config.target_table, config.source_path) == (
        "traffic.raw_measurements", "traffic.traffic_minutes", None)


@pytest.mark.parametrize("extra, named", [
    (["--semantics", "exact"], "--semantics"),
    (["--source_format", "csv"], "--source_format"),
    (["--late_hours", "-1"], "--late_hours"),
    (["--late_hours", "two"], "--late_hours"),
    (["--lookback_minutes", "19"], "--lookback_minutes"),   # corrected needs 20
    (["--locations", "957,abc"], "--locations"),
    (["--corrupt_files", "ignore"], "--corrupt_files"),
    (["--max_days", "1"], "--max_days"),                     # the range spans 2 days
])
def test_bad_values_are_named(extra, named):
    with pytest.raises(ArgumentError, match=named):
        parse_job_args(BASE + DAYS + extra)


@pytest.mark.parametrize("dates, named", [
    (["--start_date", "2020-04-08", "--end_date", "2020-04-07"], "--end_date 2020-04-07 is before"),
    (["--start_date", "2020-4-7", "--end_date", "2020-04-08"], "--start_date must be a date"),
    (["--start_date", "2020-02-30", "--end_date", "2020-03-01"], "--start_date is not a calendar date"),
    (["--start_date", "2020-04-07"], "--end_date is required"),
])
def test_bad_dates_are_named(dates, named):
    with pytest.raises(ArgumentError, match=named):
        parse_job_args(BASE + dates)


@pytest.mark.parametrize("argv, named", [
    (["s", "--source_path", "r", "--target_path", "o"], "JOB_NAME"),
    (["s", "--JOB_NAME", "t", "--target_path", "o"], "--source_path and --source_table"),
    (["s", "--JOB_NAME", "t", "--source_path", "r", "--source_table", "a.b", "--target_path", "o"],
     "--source_path and --source_table"),
    (["s", "--JOB_NAME", "t", "--source_path", "r"], "--target_path or --target_table"),
    (["s", "--JOB_NAME", "t", "--source_table", "raw", "--target_path", "o"], "--source_table must be database.table"),
])
def test_missing_or_conflicting_arguments_are_named(argv, named):
    with pytest.raises(ArgumentError, match=named):
        parse_job_args(argv + DAYS)


@pytest.mark.parametrize("extra, named", [
    (["--semantics", "exact"], "--semantics"),
    (["--start_date", "2020-04-08", "--end_date", "2020-04-07"], "--end_date"),
    (["--start_date", "2020-13-01", "--end_date", "2020-04-07"], "--start_date"),
])
def test_the_script_exits_non_zero_with_one_line_before_spark_starts(extra, named):
    argv = [sys.executable, str(SCRIPT), "--JOB_NAME", "t", "--source_path", "raw",
            "--target_path", "out"] + (extra if "--start_date" in extra else DAYS + extra)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("traffic_transform: error: ") and named in lines[0]
    assert done.stdout == ""


def test_the_script_names_a_missing_required_argument():
    argv = [sys.executable, str(SCRIPT), "--source_path", "raw", "--target_path", "out"] + DAYS
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "JOB_NAME" in done.stderr and len(done.stderr.splitlines()) == 1


# --- strict arguments, --help -------------------------------------------------------------


@pytest.mark.parametrize("extra, message", [
    (["--semantic", "athena"], "unknown argument --semantic; did you mean --semantics?"),
    (["--late-hours", "6"], "unknown argument --late-hours; did you mean --late_hours?"),
    (["--lookback_minute", "30"], "unknown argument --lookback_minute; did you mean --lookback_minutes?"),
    (["--colour", "blue"], "unknown argument --colour; see --help"),
])
def test_a_misspelled_argument_is_refused_naming_it_and_its_closest_match(extra, message):
    with pytest.raises(ArgumentError) as refused:
        parse_job_args(BASE + DAYS + extra)
    assert str(refused.value) == message


def test_the_script_refuses_an_unknown_argument_before_spark_starts():
    argv = [sys.executable, str(SCRIPT), *BASE[1:], *DAYS, "--semantic", "athena"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        "traffic_transform: error: unknown argument --semantic; did you mean --semantics?")


def test_every_argument_glue_passes_is_accepted_and_recorded():
    from workflows.template import load_template
    from tests.workflow_helpers import WORKFLOW, graph_of, transform_job

    template_arguments = [t for pair in transform_job(graph_of(load_template(WORKFLOW))).arguments
                          for t in pair]
    # What Glue adds to every run's sys.argv, and what tools.deploy run-job may send.
    glue_own = ["--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1", "--job-bookmark-option",
                "job-bookmark-disable", "--WORKFLOW_NAME", "wf", "--WORKFLOW_RUN_ID", "wr_1"]
    run_job_arguments = ["--start_date", "2020-04-07", "--end_date", "2020-04-08"]
    argv = ["script.py", *template_arguments, *glue_own, "--JOB_NAME", "t",
            "--target_path", "out", *run_job_arguments]
    config = parse_job_args(argv)
    assert config.given["datalake-formats"] == "iceberg" and config.given["JOB_ID"] == "j_1"
    assert config.given["conf"].startswith("spark.sql.session.timeZone=UTC --conf ")
    assert config.as_report()["given"]["start_date"] == "2020-04-07"
    assert config.as_report()["start_date"] == "2020-04-07"
    # On Glue the run id is Glue's job run id (getResolvedOptions hands it over itself).
    assert config.run_id == config.glue_job_run_id == "jr_1"
    assert config.configuration_path.startswith("s3://") and config.configuration_path.endswith("/configuration/")


def test_glues_conf_is_not_taken_for_the_configuration_path():
    """argparse, which getResolvedOptions uses, reads an unknown option that begins a
    known one as that one: `--conf` as `--configuration_path`."""
    conf = ["--conf", "spark.sql.session.timeZone=UTC --conf spark.x=y"]
    assert parse_job_args(BASE + DAYS + conf).configuration_path is None
    given = parse_job_args(BASE + DAYS + conf + ["--configuration_path", "s3://raw/configuration/"])
    assert given.configuration_path == "s3://raw/configuration/"
    assert given.given["conf"] == "spark.sql.session.timeZone=UTC --conf spark.x=y"


def test_help_prints_every_argument_and_starts_no_spark():
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "glue_jobs"),
                                           "JAVA_HOME": "/nonexistent"})
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("usage: traffic_transform --JOB_NAME NAME")
    for name in transform_args.ARGUMENTS.names:
        assert f"--{name}" in done.stdout, name
    assert "(default: corrected)" in done.stdout and "(default: 400)" in done.stdout
    assert "--table_format" not in done.stdout and "--lock_expiry_minutes" not in done.stdout


README_TABLE_ROWS = [  # the transform's, as the README shows them: argument and default
    ("`--source_path` / `--source_table`", "one is required"),
    ("`--target_path` / `--target_table`", "one is required"),
    ("`--replace_semantics`", "`false`"),
    ("`--start_date` / `--end_date`", "yesterday (UTC)"),
    ("`--semantics`", "`corrected`"),
    ("`--source_format`", "`parquet`"),
    ("`--late_hours`", "24"),
    ("`--lookback_minutes`", "60"),
    ("`--configuration_path`", "none"),
    ("`--locations`", "all"),
    ("`--max_days`", "400"),
    ("`--corrupt_files`", "`fail`"),
    ("`--quality_rules`", "the shipped ruleset"),
    ("`--dry_run`", "`false`"),
    ("`--metrics`", "`auto`"),
    ("`--log_level`", "`WARN`"),
    ("`--run_id`", "time and a random suffix"),
    ("`--catalog_dir`", "`.local/catalog`"),
    ("`--glue_warehouse`", "none"),
    ("`--run_properties_file`", "none"),
]


def test_the_readme_table_is_the_one_help_prints():
    table = markdown_table(transform_args.ARGUMENTS)
    assert table in (ROOT / "README.md").read_text()
    rows = [line.split(" | ")[:2] for line in table.splitlines()[2:]]
    assert [(names.removeprefix("| "), default) for names, default in rows] == README_TABLE_ROWS


def test_the_documented_defaults_are_the_values_a_run_gets():
    config = parse_job_args(BASE)
    assert (config.replace_semantics, config.semantics, config.source_format, config.late_hours,
            config.lookback_minutes, config.configuration_path, config.locations, config.max_days,
            config.corrupt_files, config.quality_rules, config.dry_run, config.metrics, config.log_level,
            config.run_id, config.catalog_dir, config.glue_warehouse, config.run_properties_file) == (
        False, "corrected", "parquet", 24, 60, None, None, 400, "fail", None, False, "auto", "WARN", None, None,
        None, None)


def test_the_configuration_has_an_attribute_per_argument_and_no_table_format():
    fields = [f.name for f in dataclasses.fields(transform_args.JobConfig)]
    assert fields == [
        "job_name", "source_path", "source_table", "target_path", "target_table", "replace_semantics",
        "start_date", "end_date", "semantics", "source_format", "late_hours", "lookback_minutes",
        "configuration_path", "locations", "max_days", "corrupt_files", "quality_rules", "dry_run",
        "metrics", "log_level", "run_id", "catalog_dir", "glue_warehouse", "run_properties_file",
        "glue_job_run_id", "workflow_name", "workflow_run_id", "given",
    ]


@pytest.mark.parametrize("removed, message", [
    # Iceberg is the only format: the arguments are gone, refused like any unknown one.
    (["--table_format", "iceberg"], "unknown argument --table_format; did you mean --source_format?"),
    (["--lock_expiry_minutes", "60"],
     "unknown argument --lock_expiry_minutes; did you mean --lookback_minutes?"),
])
def test_the_table_format_and_lock_expiry_arguments_are_unknown(removed, message):
    with pytest.raises(ArgumentError) as refused:
        parse_job_args(BASE + DAYS + removed)
    assert str(refused.value) == message


def test_the_script_refuses_the_table_format_argument_in_one_line():
    done = subprocess.run([sys.executable, str(SCRIPT), *BASE[1:], *DAYS, "--table_format", "iceberg"],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("traffic_transform: error: unknown argument --table_format; "
                           "did you mean --source_format?\n")


@pytest.mark.parametrize("argv, message", [
    (["--source_path", "/nonexistent/raw"], "--source_path /nonexistent/raw does not exist"),
    (["--source_path", "file:/nonexistent/raw"], "--source_path file:/nonexistent/raw does not exist"),
    (["--source_path", str(ROOT), "--configuration_path", "/nonexistent/c.xml"],
     "--configuration_path /nonexistent/c.xml does not exist"),
])
def test_a_local_path_that_is_not_there_is_refused_before_spark_starts(argv, message):
    with pytest.raises(ArgumentError) as refused:
        parse_job_args(["s", "--JOB_NAME", "t", "--target_path", "out", *argv])
    assert str(refused.value) == message


def test_a_path_on_s3_is_left_to_the_run():
    config = parse_job_args(["s", "--JOB_NAME", "t", "--target_path", "out", "--source_path", "s3://raw/x/",
                             "--configuration_path", "s3a://raw/configuration/"])
    assert (config.source_path, config.configuration_path) == ("s3://raw/x/", "s3a://raw/configuration/")


def test_dates_are_checked_again_when_the_run_resolves_them():
    config = parse_job_args(BASE + ["--max_days", "3"])
    with pytest.raises(ValueError, match="not resolved yet"):
        config.run_range()
    assert config.with_dates(dt.date(2020, 4, 7), dt.date(2020, 4, 9)).run_range().days == [
        dt.date(2020, 4, 7), dt.date(2020, 4, 8), dt.date(2020, 4, 9)]
    with pytest.raises(ArgumentError, match="span 4 days, more than --max_days 3"):
        config.with_dates(dt.date(2020, 4, 7), dt.date(2020, 4, 10))


# --- --dry_run, --log_level ------------------------------------------------------------------


@pytest.mark.parametrize("extra, dry_run", [
    ([], False),
    (["--dry_run"], True),  # alone, at the end
    (["--dry_run", "--semantics", "athena"], True),  # alone, before another argument
    (["--dry_run", "true"], True),  # as Glue passes it
    (["--dry_run", "false"], False),
])
def test_dry_run_may_be_given_alone_or_with_a_value(extra, dry_run):
    config = parse_job_args(BASE + DAYS + extra)
    assert config.dry_run is dry_run
    assert config.given.get("dry_run") == (None if not extra else ("false" if not dry_run else "true"))


def test_dry_run_takes_only_true_or_false():
    with pytest.raises(ArgumentError, match=r"--dry_run must be one of true, false, got 'yes'"):
        parse_job_args(BASE + DAYS + ["--dry_run", "yes"])


@pytest.mark.parametrize("given, level", [(None, "WARN"), ("info", "INFO"), ("DEBUG", "DEBUG"),
                                          ("ERROR", "ERROR")])
def test_log_level(given, level):
    extra = ["--log_level", given] if given else []
    assert parse_job_args(BASE + DAYS + extra).log_level == level


def test_a_log_level_spark_does_not_know_is_refused():
    with pytest.raises(ArgumentError, match=r"--log_level must be one of ERROR, WARN, INFO, DEBUG, got 'LOUD'"):
        parse_job_args(BASE + DAYS + ["--log_level", "loud"])


# --- the summary job's arguments -------------------------------------------------------------

SUMMARY_BASE = ["s.py", "--JOB_NAME", "s", "--source_path", "c", "--target_path", "s"]


def test_the_summary_jobs_defaults_and_dates():
    config = parse_summary_args(SUMMARY_BASE + DAYS)
    assert (config.job_name, config.source_path, config.target_path) == ("s", "c", "s")
    assert (config.start_date, config.end_date, config.days) == (dt.date(2020, 4, 7), dt.date(2020, 4, 8), None)
    assert config.as_report()["days"] is None and config.log_level == "WARN"
    resolved = config.with_days([dt.date(2020, 4, 8), dt.date(2020, 4, 7), dt.date(2020, 4, 8)])
    assert resolved.days == (dt.date(2020, 4, 7), dt.date(2020, 4, 8))
    assert resolved.as_report()["days"] == ["2020-04-07", "2020-04-08"]


@pytest.mark.parametrize("argv, message", [
    (["--start_date", "2020-04-07"], "--end_date is required when the other date is given"),
    # 2019-01-01 .. 2020-04-07: 365 + 31 + 29 + 31 + 7 = 463 days, both included
    (["--start_date", "2019-01-01", "--end_date", "2020-04-07"],
     "--start_date/--end_date span 463 days, more than --max_days 400"),
    (["--source_table", "a.b"], "exactly one of --source_path and --source_table is required"),
    (["--max_days", "3"], "unknown argument --max_days; see --help"),
])
def test_the_summary_jobs_bad_arguments_are_named(argv, message):
    with pytest.raises(ArgumentError) as refused:
        parse_summary_args(SUMMARY_BASE + argv)
    assert str(refused.value) == message


def test_every_argument_glue_passes_the_summary_job_is_accepted():
    from workflows.template import load_template
    from tests.workflow_helpers import WORKFLOW, graph_of, summary_job

    template_arguments = [t for pair in summary_job(graph_of(load_template(WORKFLOW))).arguments
                          for t in pair]
    glue_own = ["--JOB_ID", "j_2", "--JOB_RUN_ID", "jr_2", "--WORKFLOW_NAME", "wf",
                "--WORKFLOW_RUN_ID", "wr_1", "--JOB_NAME", "s"]
    config = parse_summary_args(["script.py", *template_arguments, *glue_own])
    assert config.source_table.endswith(".traffic_minutes")
    assert config.target_table.endswith(".daily_summary") and config.target_path.startswith("s3://")
    assert config.given["datalake-formats"] == "iceberg" and config.run_id == "jr_2"
    assert (config.workflow_name, config.workflow_run_id) == ("wf", "wr_1")


def test_the_readme_holds_the_summary_jobs_arguments_as_its_help_does():
    table = markdown_table(summary_args.ARGUMENTS)
    assert table in (ROOT / "README.md").read_text()
    assert [line.split(" | ")[0] for line in table.splitlines()[2:]] == [
        "| `--source_path` / `--source_table`", "| `--target_path` / `--target_table`",
        "| `--start_date` / `--end_date`", "| `--log_level`", "| `--run_id`", "| `--catalog_dir`",
        "| `--glue_warehouse`", "| `--run_properties_file`"]


def test_locations_may_name_unconfigured_lanes_by_their_negative_ids():
    """`-unieke_id` is the location of a lane the configuration does not hold; argparse
    would take a value starting with `-` for an option."""
    assert parse_job_args(BASE + DAYS + ["--locations", "-31,-957,5"]).locations == (-957, -31, 5)
    assert parse_job_args(BASE + DAYS + ["--locations", "-31"]).locations == (-31,)
    assert parse_job_args(BASE + DAYS + ["--locations=-31,7"]).locations == (-31, 7)
