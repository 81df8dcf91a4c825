"""The one `main` every job script runs (runtime/frame.py): exit statuses, what goes to
standard output and standard error, and what happens after a success; tried with a
fake job of its own (no Spark: its runtime is a stand-in)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from traffic_glue.runtime import frame, glue, memory
from traffic_glue.runtime.arguments import Argument, ArgumentError, Arguments, Config, whole


class Refused(RuntimeError):
    """An error the fake job expects: one line, exit status 1."""


class WrongTable(RuntimeError):
    """An error of the arguments the fake job finds only when it runs: exit status 2."""


ARGUMENTS = Arguments(
    Argument("JOB_NAME", attribute="job_name", required=True),
    Argument("rows", whole(minimum=0), 3, "rows to write"),
    Argument("fail", help="`refused`, `table`, `crash`, `memory` or `unfinished`"),
)


@ARGUMENTS.config
class FakeConfig(Config):
    pass


@dataclass
class FakeOutcome:
    rows: int
    exit_status: int = 0
    error_log: bool = False

    def summary(self) -> str:
        return f"fake: {self.rows} rows"


class FakeRuntime:
    def __init__(self):
        self.spark, self.committed = "spark", False

    def commit(self):
        self.committed = True


@pytest.fixture
def job():
    """A fake job's spec and what the frame did with it."""
    seen = {"runs": [], "after": [], "runtime": FakeRuntime(), "started": []}

    def run(spark, config):
        seen["runs"].append((spark, config.rows))
        if config.fail == "refused":
            raise Refused("no readings for 2020-04-07")
        if config.fail == "table":
            raise WrongTable("the table holds athena rows")
        if config.fail == "crash":
            raise ZeroDivisionError("a bug")
        if config.fail == "memory":  # the text of pyspark's error of a JVM out of heap
            raise RuntimeError("An error occurred while calling o9.count.\n: java.lang.OutOfMemoryError: Java heap space")
        if config.fail == "unfinished":
            return FakeOutcome(config.rows, exit_status=1, error_log=True)
        return FakeOutcome(config.rows)

    def start(config, argv):
        seen["started"].append((config.job_name, argv[0]))
        return seen["runtime"]

    seen["spec"] = frame.JobSpec(
        program="fake_job", usage="--JOB_NAME NAME [--rows N]", arguments=ARGUMENTS, run=run,
        expected_errors=(Refused,), argument_errors=(WrongTable,), start=start,
        after_success=lambda config, outcome: seen["after"].append((config.rows, outcome.rows)),
    )
    return seen


def main(job, *argv: str) -> int:
    return frame.main(job["spec"], ["fake_job.py", *argv])


def test_help_exits_0_and_runs_nothing(job, capsys):
    assert main(job, "--JOB_NAME", "j", "-h") == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: fake_job --JOB_NAME NAME [--rows N]\n\narguments:\n  --rows  (default: 3)\n")
    assert err == "" and job["started"] == [] and job["runs"] == []


@pytest.mark.parametrize("argv, line", [
    (["--rows", "x"], "fake_job: error: --rows must be a whole number >= 0, got 'x'\n"),
    (["--row", "2"], "fake_job: error: unknown argument --row; did you mean --rows?\n"),
])
def test_a_bad_argument_exits_2_with_one_line_before_the_runtime_starts(job, capsys, argv, line):
    assert main(job, "--JOB_NAME", "j", *argv) == 2
    assert capsys.readouterr() == ("", line)
    assert job["started"] == [] and job["runs"] == []


def test_a_missing_required_argument_exits_2(job, capsys):
    assert main(job, "--rows", "2") == 2
    assert capsys.readouterr().err == "fake_job: error: --JOB_NAME is required\n"


def test_success_prints_the_summary_then_tells_and_commits(job, capsys):
    assert main(job, "--JOB_NAME", "j", "--rows", "5") == 0
    assert capsys.readouterr() == ("fake: 5 rows\n", "")
    assert job["started"] == [("j", "fake_job.py")]
    assert job["runs"] == [("spark", 5)]  # the runtime's session
    assert job["after"] == [(5, 5)] and job["runtime"].committed


def test_an_expected_error_exits_1_with_one_line_and_nothing_after(job, capsys):
    assert main(job, "--JOB_NAME", "j", "--fail", "refused") == 1
    assert capsys.readouterr() == ("", "fake_job: error: no readings for 2020-04-07\n")
    assert job["after"] == [] and not job["runtime"].committed


def test_an_argument_error_found_by_the_run_exits_2(job, capsys):
    assert main(job, "--JOB_NAME", "j", "--fail", "table") == 2
    assert capsys.readouterr() == ("", "fake_job: error: the table holds athena rows\n")
    assert job["after"] == [] and not job["runtime"].committed


def test_an_outcome_that_is_no_success_exits_with_its_status_on_standard_error(job, capsys):
    assert main(job, "--JOB_NAME", "j", "--fail", "unfinished") == 1
    assert capsys.readouterr() == ("", "fake: 3 rows\n")
    assert job["after"] == [] and not job["runtime"].committed


def test_any_other_error_goes_on_with_its_traceback(job, capsys):
    with pytest.raises(ZeroDivisionError, match="a bug"):
        main(job, "--JOB_NAME", "j", "--fail", "crash")
    assert capsys.readouterr().err == "" and not job["runtime"].committed


def test_a_run_out_of_memory_exits_4_with_one_line_saying_what_to_give_it(job, capsys, monkeypatch):
    monkeypatch.setenv(memory.DRIVER_MEMORY_ENV, "1g")
    assert main(job, "--JOB_NAME", "j", "--fail", "memory") == memory.OUT_OF_MEMORY == 4
    assert capsys.readouterr() == ("", (
        "fake_job: error: out of memory: a Spark JVM ran out of memory (java.lang.OutOfMemoryError: "
        "Java heap space), with TRAFFIC_GLUE_DRIVER_MEMORY=1g: set TRAFFIC_GLUE_DRIVER_MEMORY=2g or more\n"))
    assert job["after"] == [] and not job["runtime"].committed


def test_days_resolved_by_the_job_and_their_errors_exit_2(job, capsys):
    def resolve(config):
        if config.rows == 0:
            raise ArgumentError("workflow run wr_1 sets only one of the run properties start_date/end_date")
        return config.__class__(**{**config.__dict__, "rows": config.rows * 10})

    spec = frame.JobSpec(**{**job["spec"].__dict__, "resolve": resolve})
    assert frame.main(spec, ["fake_job.py", "--JOB_NAME", "j", "--rows", "2"]) == 0
    assert job["runs"] == [("spark", 20)]
    assert frame.main(spec, ["fake_job.py", "--JOB_NAME", "j", "--rows", "0"]) == 2
    assert capsys.readouterr().err == (
        "fake_job: error: workflow run wr_1 sets only one of the run properties start_date/end_date\n")
    assert job["started"] == [("j", "fake_job.py")]  # not for the second


def test_a_spark_job_reads_its_arguments_through_glue(job, monkeypatch):
    asked = []

    def resolved_options(argv, names):
        asked.append(names)
        return {"JOB_NAME": "from-glue", "rows": "7"}

    monkeypatch.setattr(glue, "resolved_options", resolved_options)
    assert main(job, "--JOB_NAME", "j", "--rows", "1") == 0
    assert asked == [["JOB_NAME", "rows"]] and job["started"] == [("from-glue", "fake_job.py")]
    assert job["runs"] == [("spark", 7)]


def test_a_job_without_spark_has_no_runtime_and_reads_its_arguments_itself(job, monkeypatch, capsys):
    monkeypatch.setattr(glue, "resolved_options", lambda *_: pytest.fail("Glue's reader used"))
    spec = frame.JobSpec(**{**job["spec"].__dict__, "spark": False,
                            "start": lambda *_: pytest.fail("a runtime started")})
    assert frame.main(spec, ["fetch.py", "--JOB_NAME", "j", "--rows", "4"]) == 0
    assert job["runs"] == [(None, 4)] and job["after"] == [(4, 4)]
    assert capsys.readouterr().out == "fake: 4 rows\n"


# --- the four job scripts ------------------------------------------------------------------

SCRIPTS = {  # script -> its job's module (which holds SPEC)
    "traffic_transform.py": "traffic_glue.jobs.transform",
    "traffic_daily_summary.py": "traffic_glue.jobs.daily_summary",
    "traffic_table_maintenance.py": "traffic_glue.jobs.maintenance",
    "traffic_fetch_configuration.py": "traffic_glue.jobs.config_feed",
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_script_runs_its_jobs_spec_and_the_readme_holds_its_table(script, capsys):
    import importlib
    import runpy
    from pathlib import Path

    from traffic_glue.runtime.arguments import help_text, markdown_table

    root = Path(__file__).resolve().parents[1]
    spec = importlib.import_module(SCRIPTS[script]).SPEC
    assert spec.program == script.removesuffix(".py")
    main = runpy.run_path(str(root / "glue_jobs" / script), run_name="job_script")["main"]
    assert main([script, "--help"]) == 0
    assert capsys.readouterr().out == help_text(spec.program, spec.usage, spec.arguments) + "\n"
    assert markdown_table(spec.arguments) in (root / "README.md").read_text()
    assert spec.spark is (script != "traffic_fetch_configuration.py")  # a Python shell job
