"""The arguments' declaration (runtime/arguments.py): one declaration gives the
configuration, the strict parser, --help and the README's table; tried here on a small
job of its own, with Glue's reader stood in for by one that records what it is asked."""

import dataclasses
import datetime as dt

import pytest

from traffic_glue.runtime.arguments import (
    Argument, ArgumentError, Arguments, Config, Group, at_least_one, boolean, both_or_neither, choice, date,
    exactly_one, help_text, markdown_table, plain_values, table_name, whole,
)

ARGUMENTS = Arguments(
    Argument("JOB_NAME", attribute="job_name", required=True),
    Group((Argument("source_path"), Argument("source_table", table_name)), exactly_one,
          "one is required", "where the readings are: a folder, or `database.table`"),
    Group((Argument("start_date", date), Argument("end_date", date)), both_or_neither,
          "yesterday", "the days", noun="date"),
    Argument("late_hours", whole(minimum=0), 24, "hours late"),
    Argument("mode", choice(("fast", "slow"), str.lower), "fast", "`fast` or `slow`"),
    Argument("verbose", boolean, False, "say more", flag=True),
    Argument("run_id", fallback="JOB_RUN_ID", shown="a new one", help="the run's id"),
    Argument("JOB_RUN_ID", attribute="glue_run_id", by_glue=True),
)


@ARGUMENTS.config
class FakeConfig(Config):
    """A configuration with a value of its own besides the arguments."""

    days: tuple[dt.date, ...] | None = None

    def check(self) -> None:
        if self.mode == "slow" and self.late_hours > 10:
            raise ArgumentError(f"--late_hours must be at most 10 with --mode slow, got {self.late_hours}")


BASE = ["job.py", "--JOB_NAME", "j", "--source_path", "raw"]


class Reader:
    """Glue's reader stood in for: the values of the names asked for, and which those were."""

    def __init__(self):
        self.asked = []

    def __call__(self, argv, names):
        self.asked.append(list(names))
        return plain_values(argv, names)


def test_the_configuration_is_a_frozen_dataclass_with_an_attribute_per_argument():
    assert [(f.name, f.default) for f in dataclasses.fields(FakeConfig)][:-1] == [
        ("job_name", None), ("source_path", None), ("source_table", None), ("start_date", None),
        ("end_date", None), ("late_hours", 24), ("mode", "fast"), ("verbose", False), ("run_id", None),
        ("glue_run_id", None), ("days", None)]
    types = {f.name: f.type for f in dataclasses.fields(FakeConfig)}
    assert (types["late_hours"], types["mode"], types["verbose"]) == (int, str, bool)
    assert types["start_date"] == dt.date | None and types["source_table"] == str | None
    config = ARGUMENTS.parse(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.mode = "slow"


def test_defaults_and_every_value_read():
    assert ARGUMENTS.parse(BASE) == FakeConfig("j", "raw", None, None, None, 24, "fast", False, None, None)
    config = ARGUMENTS.parse(BASE + ["--start_date", "2020-04-07", "--end_date=2020-04-08", "--late_hours", "6",
                                     "--mode", "FAST", "--verbose", "--run_id", "r1"])
    assert (config.start_date, config.end_date, config.late_hours, config.mode, config.verbose, config.run_id) == (
        dt.date(2020, 4, 7), dt.date(2020, 4, 8), 6, "fast", True, "r1")


def test_every_argument_is_recorded_as_given_glues_too_and_left_out_of_equality():
    config = ARGUMENTS.parse(BASE + ["--verbose", "--TempDir", "s3://t/", "--JOB_RUN_ID", "jr_1"])
    assert config.given == {"JOB_NAME": "j", "source_path": "raw", "verbose": "true", "TempDir": "s3://t/",
                            "JOB_RUN_ID": "jr_1"}
    assert config == dataclasses.replace(config, given={})


def test_a_value_glue_gives_is_never_asked_for_and_fills_another_left_out():
    reader = Reader()
    config = ARGUMENTS.parse(BASE + ["--JOB_RUN_ID", "jr_1", "--late_hours", "3", "--conf", "x=y"], reader)
    # Asked: the job's arguments given; not JOB_RUN_ID (getResolvedOptions gives it itself).
    assert reader.asked == [["JOB_NAME", "source_path", "late_hours"]]
    assert (config.glue_run_id, config.run_id, config.late_hours) == ("jr_1", "jr_1", 3)
    assert ARGUMENTS.parse(BASE + ["--JOB_RUN_ID", "jr_1", "--run_id", "mine"]).run_id == "mine"


@pytest.mark.parametrize("extra, message", [
    (["--late-hours", "6"], "unknown argument --late-hours; did you mean --late_hours?"),
    (["--colour", "blue"], "unknown argument --colour; see --help"),
    (["--late_hours", "-1"], "--late_hours must be a whole number >= 0, got '-1'"),
    (["--mode", "quick"], "--mode must be one of fast, slow, got 'quick'"),
    (["--verbose", "yes"], "--verbose must be one of true, false, got 'yes'"),
    (["--source_table", "a.b"], "exactly one of --source_path and --source_table is required"),
    (["--start_date", "2020-04-07"], "--end_date is required when the other date is given"),
    (["--end_date", "2020-04-07"], "--start_date is required when the other date is given"),
    (["--start_date", "2020-02-30", "--end_date", "2020-03-01"], "--start_date is not a calendar date: '2020-02-30'"),
    (["--start_date", "7 April", "--end_date", "2020-03-01"], "--start_date must be a date YYYY-MM-DD, got '7 April'"),
    (["--mode", "slow", "--late_hours", "11"], "--late_hours must be at most 10 with --mode slow, got 11"),
])
def test_each_wrong_argument_is_named(extra, message):
    with pytest.raises(ArgumentError) as refused:
        ARGUMENTS.parse(BASE + extra)
    assert str(refused.value) == message


@pytest.mark.parametrize("argv, message", [
    (["job.py", "--source_path", "raw"], "--JOB_NAME is required"),
    (["job.py", "--JOB_NAME", "--source_path", "raw"], "--JOB_NAME is required"),  # no value
    (["job.py", "--JOB_NAME", "j"], "exactly one of --source_path and --source_table is required"),
    (["job.py", "--JOB_NAME", "j", "--source_table", "raw"], "--source_table must be database.table, got 'raw'"),
])
def test_what_is_required_is_named(argv, message):
    with pytest.raises(ArgumentError) as refused:
        ARGUMENTS.parse(argv)
    assert str(refused.value) == message


def test_at_least_one_takes_either_or_both():
    arguments = Arguments(Group((Argument("target_path"), Argument("target_table", table_name)), at_least_one,
                                "one is required", "where to"))

    @arguments.config
    class Target(Config):
        pass

    assert arguments.parse(["j", "--target_path", "o", "--target_table", "d.t"]) == Target("o", "d.t")
    assert arguments.parse(["j", "--target_table", "d.t"]) == Target(None, "d.t")
    with pytest.raises(ArgumentError, match=r"^--target_path or --target_table is required$"):
        arguments.parse(["j"])


def test_the_report_holds_plain_values():
    config = dataclasses.replace(
        ARGUMENTS.parse(BASE + ["--start_date", "2020-04-07", "--end_date", "2020-04-08"]),
        days=(dt.date(2020, 4, 7), dt.date(2020, 4, 8)))
    assert config.as_report() == {
        "job_name": "j", "source_path": "raw", "source_table": None, "start_date": "2020-04-07",
        "end_date": "2020-04-08", "late_hours": 24, "mode": "fast", "verbose": False, "run_id": None,
        "glue_run_id": None, "days": ["2020-04-07", "2020-04-08"],
        "given": {"JOB_NAME": "j", "source_path": "raw", "start_date": "2020-04-07", "end_date": "2020-04-08"},
    }


def test_the_table_lists_the_documented_rows_only():
    assert ARGUMENTS.names == ["source_path", "source_table", "start_date", "end_date", "late_hours", "mode",
                               "verbose", "run_id"]
    assert markdown_table(ARGUMENTS) == "\n".join([
        "| argument | default | meaning |",
        "|---|---|---|",
        "| `--source_path` / `--source_table` | one is required | where the readings are: a folder, or "
        "`database.table` |",
        "| `--start_date` / `--end_date` | yesterday | the days |",
        "| `--late_hours` | 24 | hours late |",
        "| `--mode` | `fast` | `fast` or `slow` |",
        "| `--verbose` | `false` | say more |",
        "| `--run_id` | a new one | the run's id |",
    ])


def test_help_is_the_same_rows_without_markdown():
    assert help_text("fake_job", "--JOB_NAME NAME", ARGUMENTS) == "\n".join([
        "usage: fake_job --JOB_NAME NAME",
        "",
        "arguments:",
        "  --source_path, --source_table  (default: one is required)",
        "      where the readings are: a folder, or database.table",
        "  --start_date, --end_date  (default: yesterday)",
        "      the days",
        "  --late_hours  (default: 24)",
        "      hours late",
        "  --mode  (default: fast)",
        "      fast or slow",
        "  --verbose  (default: false)",
        "      say more",
        "  --run_id  (default: a new one)",
        "      the run's id",
        "",
        "AWS Glue's own job parameters (--JOB_NAME, --TempDir, --conf, ...) are accepted.",
    ])


@pytest.mark.parametrize("argument, shown", [
    (Argument("a", required=True), "required"),
    (Argument("a"), "none"),
    (Argument("a", boolean, True), "`true`"),
    (Argument("a", whole(1), 7), "7"),
    (Argument("a", default="x"), "`x`"),
    (Argument("a", default="x", shown="all"), "all"),
])
def test_a_default_as_a_person_reads_it(argument, shown):
    assert argument.default_text == shown


@pytest.mark.parametrize("parse, text, value", [
    (whole(1), " 12", 12),
    (choice(("ERROR", "WARN"), str.upper), "warn", "WARN"),
    (boolean, "false", False),
    (date, "", None),
    (table_name, "", None),
    (table_name, "db_1.t_2", "db_1.t_2"),
])
def test_the_value_parsers(parse, text, value):
    assert parse("x", text) == value


def test_a_value_starting_with_a_dash_is_a_value():
    arguments = Arguments(Argument("locations", help="ids"))

    @arguments.config
    class Located(Config):
        pass

    assert arguments.parse(["j", "--locations", "-31,-957"]).locations == "-31,-957"
