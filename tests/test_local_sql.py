"""The local SQL shell: its statement splitter (no Spark), and its prompt and query
argument on a real Hive catalog.

As in test_local_workflow.py, everything that needs the catalog runs in ONE subprocess
(`scenario` below, this file run as a script): an embedded Derby catalog and a
Hive-enabled SparkSession cannot share the suite's session.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from tests.workflow_helpers import ROOT
from workflows import local_sql
from workflows.local_sql import scan_sql, split_statements

# --- the splitter -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "statements"), [
    ("SELECT 1", ["SELECT 1"]),
    ("SELECT 1;", ["SELECT 1"]),
    ("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
    (" ; ;SELECT 1;;  ", ["SELECT 1"]),
    ("", []),
    ("SELECT 'a;b' AS x; SELECT 2", ["SELECT 'a;b' AS x", "SELECT 2"]),
    ('SELECT "a;b", `c;d` FROM t', ['SELECT "a;b", `c;d` FROM t']),
    ("SELECT 'it\\'s; here'; SELECT 2", ["SELECT 'it\\'s; here'", "SELECT 2"]),
    ("SELECT 'it''s;' AS x;", ["SELECT 'it''s;' AS x"]),
    ("SELECT '-- not a comment' AS x", ["SELECT '-- not a comment' AS x"]),
    ("-- a comment; with a semicolon\nSELECT 1; -- and another\n", ["SELECT 1"]),
    ("-- only a comment", []),
    ("SELECT 1 -- one\n, 2 -- two; not a split\nFROM t", ["SELECT 1 \n, 2 \nFROM t"]),
    ("SELECT day,\n  count(*)\nFROM t;", ["SELECT day,\n  count(*)\nFROM t"]),
    ("SELECT 'a\nb'", ["SELECT 'a\nb'"]),
])
def test_statements_split_at_semicolons_outside_quotes_and_comments(text, statements):
    assert split_statements(text) == statements


def test_a_text_is_unfinished_inside_a_quote_or_after_a_line_ending_in_a_backslash():
    assert scan_sql("SELECT 'a;\n").unfinished
    assert scan_sql("SELECT `odd name\n").unfinished
    assert scan_sql("SELECT 'it\\'s\n").unfinished  # the escaped quote does not close it
    assert scan_sql("SELECT 1 \\\n").unfinished
    assert scan_sql("SELECT 1 \\  \n-- a comment line\n\n").unfinished
    assert not scan_sql("SELECT 1\n").unfinished
    assert not scan_sql("SELECT 'a;\nb'\n").unfinished
    assert not scan_sql("SELECT 1 \\\nFROM t\n").unfinished
    assert not scan_sql("SELECT 'a\\\\'\n").unfinished
    assert not scan_sql("SELECT 1 -- ends in \\\n").unfinished
    # The backslash that continues a line is not part of the statement.
    assert scan_sql("SELECT 1 \\\n  AS one;").statements == ["SELECT 1  \n  AS one"]
    # One that does not end its line is left to Spark.
    assert scan_sql("SELECT 1 \\ AS one").statements == ["SELECT 1 \\ AS one"]


@pytest.mark.parametrize("argv", [[], ["SELECT 1"]])
def test_without_a_catalog_it_stops_before_spark(tmp_path, capsys, argv):
    assert local_sql.main([*argv, "--catalog-dir", str(tmp_path)]) == 2
    assert f"no local catalog in {tmp_path}" in capsys.readouterr().err


@pytest.mark.parametrize("query", ["", " ; ", "-- nothing but a comment"])
def test_a_query_without_a_statement_stops_before_spark(tmp_path, capsys, query):
    (tmp_path / "metastore_db").mkdir()
    assert local_sql.main([query, "--catalog-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "local_sql: error: the query holds no statement\n"


# --- where the query comes from: the environment, a file, make (no Spark) --------------------

# Characters a shell or make would act on: backticks, $ and $(...), both quotes, #, \ and %.
# If make expanded it, $(error ...) would stop make and $$ would lose a $.
SHELL_BAIT = ("SELECT `odd $name`, \"$(whoami)\" AS who FROM t WHERE s = 'it''s `date`' # x; "
              "SELECT '$HOME' AS home, '$(error Q was expanded) $$' AS make, '\\ %' AS rest")


class _NoSpark:
    """Stands in for the session: the prompt's opening `SHOW DATABASES` finds nothing."""

    def sql(self, statement: str) -> _NoSpark:
        return self

    def collect(self) -> list:
        return []


@pytest.fixture
def statements_run(tmp_path, monkeypatch) -> list[str]:
    """The statements `main` runs, recorded instead of run, on a catalog folder: no Spark."""
    from traffic_glue.runtime import session

    ran: list[str] = []
    monkeypatch.setattr(session, "local_spark_session", lambda **_: _NoSpark())
    monkeypatch.setattr(local_sql, "run_statement",
                        lambda spark, statement, limit: ran.append(statement))
    (tmp_path / "metastore_db").mkdir()
    return ran


def test_a_query_from_the_environment_is_taken_as_it_is(tmp_path, monkeypatch, statements_run):
    monkeypatch.setenv("TRAFFIC_GLUE_TEST_QUERY", SHELL_BAIT)
    argv = ["--query-from-env", "TRAFFIC_GLUE_TEST_QUERY", "--catalog-dir", str(tmp_path)]
    assert local_sql.main(argv) == 0
    assert statements_run == [
        "SELECT `odd $name`, \"$(whoami)\" AS who FROM t WHERE s = 'it''s `date`' # x",
        "SELECT '$HOME' AS home, '$(error Q was expanded) $$' AS make, '\\ %' AS rest",
    ]


def test_a_file_is_read_as_stdin_is_in_one_session(tmp_path, capsys, statements_run):
    queries = tmp_path / "queries.sql"
    queries.write_text("SELECT `a;b` FROM t WHERE x = \"$x\"\n"
                       "SELECT '`date`' AS d; SELECT \"it's\" AS s\n"
                       "-- $(rm -rf /) only a comment\n"
                       "SELECT 1 \\\n"
                       "  AS one\n"
                       "exit\n"
                       "SELECT 'after exit' AS never\n", encoding="utf-8")
    assert local_sql.main(["--file", str(queries), "--catalog-dir", str(tmp_path)]) == 0
    # A line's end ends a statement, `;` too; the backslash joins two lines; exit stops.
    assert statements_run == ["SELECT `a;b` FROM t WHERE x = \"$x\"",
                              "SELECT '`date`' AS d",
                              "SELECT \"it's\" AS s",
                              "SELECT 1  \n  AS one"]
    assert capsys.readouterr().err.count("same session") == 1


def test_a_missing_file_is_one_line_naming_it(tmp_path, capsys):
    missing = tmp_path / "no such.sql"
    assert local_sql.main(["--file", str(missing), "--catalog-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"local_sql: error: cannot read {missing}: No such file or directory\n")


def test_an_unset_query_variable_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TRAFFIC_GLUE_TEST_QUERY", raising=False)
    argv = ["--query-from-env", "TRAFFIC_GLUE_TEST_QUERY", "--catalog-dir", str(tmp_path)]
    assert local_sql.main(argv) == 2
    assert capsys.readouterr().err == (
        "local_sql: error: the environment variable TRAFFIC_GLUE_TEST_QUERY is not set\n")


def test_a_query_and_a_file_do_not_go_together(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        local_sql.main(["SELECT 1", "--file", "queries.sql", "--catalog-dir", str(tmp_path)])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "python -m workflows.local_sql: error: argument --file: not allowed with argument query")


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="no make on PATH")


def _make(*args: str) -> subprocess.CompletedProcess:
    """make in the project, `setup` taken as done (-o), outside any make running pytest."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    done = subprocess.run(["make", "--no-print-directory", "-o", "setup", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done


@needs_make
def test_make_sql_keeps_the_query_off_the_command_line():
    done = _make("-n", "sql", f"Q={SHELL_BAIT}")
    assert done.stdout.rstrip() == (
        ".venv/bin/python -m workflows.local_sql --query-from-env TRAFFIC_GLUE_SQL_QUERY")


@pytest.fixture
def stand_in_python(tmp_path) -> Path:
    """A `PY` for the Makefile that prints what the query tool would get: its arguments and
    the two variables make hands over."""
    script = tmp_path / "python"
    script.write_text(f"#!{sys.executable}\n"
                      "import json, os, sys\n"
                      "print(json.dumps([sys.argv[1:], os.environ.get('TRAFFIC_GLUE_SQL_QUERY'),\n"
                      "                  os.environ.get('TRAFFIC_GLUE_SQL_FILE')]))\n")
    script.chmod(0o755)
    return script


ODD_FILE_NAME = "my $(error F was expanded) \"queries\" `x` $$.sql"


@needs_make
@pytest.mark.parametrize(("given", "arguments", "query", "file"), [
    ([f"Q={SHELL_BAIT}"], ["--query-from-env", "TRAFFIC_GLUE_SQL_QUERY"], SHELL_BAIT, ""),
    ([f"F={ODD_FILE_NAME}"], [f"--file={ODD_FILE_NAME}"], "", ODD_FILE_NAME),
    ([], [], "", ""),  # the prompt
], ids=["Q", "F", "neither"])
def test_make_sql_hands_q_and_f_over_byte_for_byte(stand_in_python, given, arguments, query, file):
    done = _make("-s", "sql", f"PY={stand_in_python}", *given)
    assert json.loads(done.stdout) == [["-m", "workflows.local_sql", *arguments], query, file]


# --- on a catalog, in one subprocess ---------------------------------------------------------

PIPED = """\
SELECT 1 AS one;
SELECT 'a;b' AS text; SELECT 2 AS two
-- a comment line, then an empty one

SELECT nope FROM traffic.missing;
SELECT count(*) AS lanes FROM traffic.lanes
SELECT lane, name FROM traffic.lanes \\
  WHERE lane = 2;
SELECT 'first
second' AS two_lines;
CREATE TEMPORARY VIEW numbers AS SELECT id FROM range(3);
SELECT id FROM numbers ORDER BY id
exit
SELECT 'after exit' AS never;
"""


ENDLESS = "SELECT sum(hash(id)) FROM range(1000000000000)"


class _Stdin(io.StringIO):
    """stdin from a text: a terminal or a pipe, optionally Ctrl-C after its lines."""

    def __init__(self, text: str, tty: bool = False, interrupt: bool = False):
        super().__init__(text)
        self.tty, self.interrupt = tty, interrupt

    def isatty(self) -> bool:
        return self.tty

    def readline(self, *args) -> str:
        line = super().readline(*args)
        if not line and self.interrupt:
            raise KeyboardInterrupt
        return line


def scenario(work: Path) -> dict:
    """A small catalog, then the shell run as a user runs it: piped, at a terminal, with
    Ctrl-C, and with query arguments; counting the sessions each run asks for."""
    from traffic_glue.runtime import session
    from workflows import local_sql

    catalog = work / "catalog"
    temporary = Path(tempfile.gettempdir())  # the JVM's java.io.tmpdir too (/tmp)
    resources_before = {p.name for p in temporary.glob("*_resources")}
    spark = session.local_spark_session(app_name="test-local-sql", catalog_dir=str(catalog))
    spark.sql("CREATE DATABASE traffic")
    spark.sql("CREATE TABLE traffic.lanes USING parquet AS "
              "SELECT * FROM VALUES (1, 'a;b'), (2, NULL) AS t(lane, name)")

    real_session, sessions = session.local_spark_session, []

    def counted(*args, **kwargs):
        sessions.append(kwargs.get("catalog_dir"))
        return real_session(*args, **kwargs)

    session.local_spark_session = counted

    def ctrl_c_once_a_job_runs() -> None:
        """Ctrl-C as soon as the statement's Spark job runs (before it, at the prompt,
        Ctrl-C would end the shell without cancelling anything)."""
        tracker, deadline = spark.sparkContext.statusTracker(), time.monotonic() + 60
        while not tracker.getActiveJobsIds() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    def run(argv: list[str], stdin: io.StringIO | None = None, ctrl_c_in_a_job: bool = False) -> dict:
        sessions.clear()
        out, err = io.StringIO(), io.StringIO()
        sys.stdin = stdin or _Stdin("")
        if ctrl_c_in_a_job:
            threading.Thread(target=ctrl_c_once_a_job_runs, daemon=True).start()
        started = time.monotonic()
        try:
            with redirect_stdout(out), redirect_stderr(err):
                status = local_sql.main([*argv, "--catalog-dir", str(catalog)])
        finally:
            sys.stdin = sys.__stdin__
        return {"status": status, "stdout": out.getvalue(), "stderr": err.getvalue(),
                "sessions": list(sessions), "seconds": time.monotonic() - started}

    return {
        "piped": run([], _Stdin(PIPED)),
        "terminal": run([], _Stdin("SELECT 'a\nb' AS c;\nquit\n", tty=True)),
        "ctrl_c": run([], _Stdin("SELECT 3 AS three\n", interrupt=True)),
        # Hours of work unless Ctrl-C stops it.
        "ctrl_c_in_query": run([], _Stdin(f"{ENDLESS}\nSELECT 'after' AS never\n"), ctrl_c_in_a_job=True),
        "argument": run(["SELECT 1 AS one; SELECT 'x;y' AS two;"]),
        "argument_fails": run(["SELECT 1 AS first; SELECT nope; SELECT 3 AS third"]),
        "limited": run(["SELECT id FROM range(5)", "--limit", "2"]),
        "catalog": str(catalog),
        "resources_left_in_tmp": sorted({p.name for p in temporary.glob("*_resources")} - resources_before),
        "resources_in_catalog": (catalog / session.HIVE_RESOURCES_FOLDER).is_dir(),
    }


@pytest.fixture(scope="module")
def shell(tmp_path_factory):
    work = tmp_path_factory.mktemp("local_sql")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "glue_jobs"), str(ROOT)]),
               TRAFFIC_GLUE_LOG_LEVEL="ERROR")
    done = subprocess.run([sys.executable, __file__, str(work)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads((work / "result.json").read_text())


def _tables(stdout: str) -> list[tuple[list[str], str]]:
    """Each result printed: its table's lines, and the line after it."""
    results = re.findall(r"((?:^[+|].*\n)+)(?:only showing.*\n)?(\(.*\))\n$", stdout, flags=re.M)
    return [(table.splitlines(), after) for table, after in results]


def _timed(after: str, rows: str) -> bool:
    return re.fullmatch(rf"\({rows} in \d+\.\d s\)", after) is not None


def test_a_catalog_session_leaves_no_hive_resources_folder_in_tmp(shell):
    # Hive's default: a `<session id>_resources` folder in /tmp per session, never removed.
    assert shell["resources_left_in_tmp"] == []
    assert shell["resources_in_catalog"] is True


def test_piped_statements_run_in_one_session_and_print_their_results(shell):
    run = shell["piped"]
    assert run["status"] == 0
    assert run["sessions"] == [shell["catalog"]]
    assert "sql>" not in run["stdout"]  # no prompt when stdin is not a terminal
    results = _tables(run["stdout"])
    expected = [
        ["+---+", "|one|", "+---+", "|1  |", "+---+"],
        ["+----+", "|text|", "+----+", "|a;b |", "+----+"],
        ["+---+", "|two|", "+---+", "|2  |", "+---+"],
        ["+-----+", "|lanes|", "+-----+", "|2    |", "+-----+"],
        ["+----+----+", "|lane|name|", "+----+----+", "|2   |NULL|", "+----+----+"],
        ["+-------------+", "|two_lines    |", "+-------------+", "|first\\nsecond|", "+-------------+"],
        ["+---+", "|id |", "+---+", "|0  |", "|1  |", "|2  |", "+---+"],
    ]
    assert [table for table, _ in results] == expected
    counts = ["1 row"] * 6 + ["3 rows"]
    assert all(_timed(after, rows) for (_, after), rows in zip(results, counts, strict=True))
    # The view's CREATE has no result to show, only its time; nothing runs after `exit`.
    assert re.search(r"^\(done in \d+\.\d s\)$", run["stdout"], flags=re.M)
    assert "after exit" not in run["stdout"] + run["stderr"]


def test_a_bad_statement_prints_one_line_and_the_next_ones_run(shell):
    errors = [line for line in shell["piped"]["stderr"].splitlines() if "error" in line]
    assert len(errors) == 1
    assert errors[0].startswith("local_sql: error: [TABLE_OR_VIEW_NOT_FOUND]")
    assert "`traffic`.`missing`" in errors[0]
    assert "|lanes|" in shell["piped"]["stdout"]  # the statement after it ran


def test_the_shell_says_once_that_the_session_is_reused_and_how_to_quit(shell):
    stderr = shell["piped"]["stderr"]
    assert stderr.count("same session") == 1
    assert re.search(r"ready in \d+\.\d s\. .*quit with exit, quit, Ctrl-D or Ctrl-C", stderr)


def test_at_a_terminal_it_prompts_and_quit_ends_it(shell):
    run = shell["terminal"]
    assert run["status"] == 0 and run["sessions"] == [shell["catalog"]]
    # The open quote continues the statement on a second prompt.
    assert run["stdout"].startswith("sql> ...> +----+\n|c   |\n+----+\n|a\\nb|\n+----+\n(1 row in ")
    assert run["stdout"].endswith(" s)\n\nsql> ")


def test_ctrl_c_ends_it_with_status_0(shell):
    run = shell["ctrl_c"]
    assert run["status"] == 0
    ((table, _),) = _tables(run["stdout"])
    assert table == ["+-----+", "|three|", "+-----+", "|3    |", "+-----+"]


def test_ctrl_c_during_a_query_cancels_it_and_ends_with_status_0(shell):
    run = shell["ctrl_c_in_query"]
    assert run["status"] == 0
    assert run["seconds"] < 60
    assert run["stderr"].endswith("\nlocal_sql: cancelled\n")
    assert "error" not in run["stderr"] and "never" not in run["stdout"]


def test_a_query_argument_runs_its_statements_in_one_session(shell):
    run = shell["argument"]
    assert run["status"] == 0 and run["sessions"] == [shell["catalog"]]
    assert [table[1:4] for table, _ in _tables(run["stdout"])] == [["|one|", "+---+", "|1  |"],
                                                                   ["|two|", "+---+", "|x;y|"]]
    assert run["stderr"] == ""


def test_in_a_query_argument_the_first_failing_statement_stops_the_rest(shell):
    run = shell["argument_fails"]
    assert run["status"] == 1
    assert [table[1] for table, _ in _tables(run["stdout"])] == ["|first|"]
    assert run["stderr"].startswith("local_sql: error: [UNRESOLVED_COLUMN")
    assert len(run["stderr"].splitlines()) == 1


def test_limit_caps_the_rows_shown_and_says_so(shell):
    ((table, after),) = _tables(shell["limited"]["stdout"])
    assert table[3:] == ["|0  |", "|1  |", "+---+"]
    assert "only showing top 2 rows" in shell["limited"]["stdout"]
    assert _timed(after, "first 2 rows")


if __name__ == "__main__":
    # The subprocess of `shell`: python tests/test_local_sql.py WORK_DIR
    work_dir = Path(sys.argv[1])
    outcome = scenario(work_dir)
    (work_dir / "result.json").write_text(json.dumps(outcome, indent=2))


def test_options_take_the_jobs_spelling_too():
    dashes = local_sql.parse_args(["--catalog-dir", "a", "--query-from-env", "Q"])
    underscores = local_sql.parse_args(["--catalog_dir", "a", "--query_from_env", "Q"])
    assert (dashes.catalog_dir, dashes.query_from_env) == (underscores.catalog_dir, underscores.query_from_env) == ("a", "Q")
