"""Two processes on one local catalog: a `make sql` prompt stays open while the workflow
(crawler, transform job into `--target_table`, summary) writes to it in another process,
and two processes commit to one Iceberg table; both succeed, and nothing is lost.

Every process is a subprocess of this test (the test itself starts no JVM): the workflow,
the prompt (kept open for both tests, and the first of the two writers) and the second
writer; the catalog's metastore is Derby's network server (`traffic_glue.runtime.metastore`),
which the first session starts and stops itself a few seconds after the last (conftest
sets the idle time).
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.job_helpers import wait_while_running
from tests.workflow_helpers import ROOT, WORKFLOW, table_names
from workflows.template import load_template

START, LANES = dt.date(2020, 4, 6), 5


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "glue_jobs"), str(ROOT)]),
                PYTHONUNBUFFERED="1", TRAFFIC_GLUE_LOG_LEVEL="ERROR",
                TRAFFIC_GLUE_METASTORE_IDLE_SECONDS="2")


def _run_workflow(work: Path, day: dt.date) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "workflows.local_runner", "--raw", str(work / "raw"),
         "--curated", str(work / "curated"), "--catalog-dir", str(work / "catalog"),
         "--start-date", day.isoformat(), "--end-date", day.isoformat()],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class _Prompt:
    """`python -m workflows.local_sql` reading statements from a pipe kept open."""

    def __init__(self, catalog: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workflows.local_sql", "--catalog-dir", str(catalog)],
            cwd=ROOT, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)

    def ask(self, statement: str, timeout: float = 180) -> list[str]:
        """The statement's output, up to the `(... in N s)` line after its result."""
        self.process.stdin.write(statement + ";\n")
        self.process.stdin.flush()
        out, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            out.append(line.rstrip("\n"))
            if line.startswith("(") and " in " in line:
                break
        self.seen += out
        return out

    def close(self) -> tuple[int, str]:
        self.process.stdin.write("exit\n")
        self.process.stdin.flush()
        self.process.stdin.close()
        status = self.process.wait(timeout=60)
        return status, self.process.stderr.read()


def _count(output: list[str]) -> int:
    # +-----+ / |n | / +-----+ / |  42| / +-----+ / (1 row in 0.3 s)
    return int(output[-3].strip("| "))


@pytest.fixture(scope="module")
def workflow_beside_a_prompt(tmp_path_factory):
    """The workflow run in a process of its own while a `make sql` prompt is open on its
    catalog from the crawl on, asked every second; the prompt stays open for the module's
    tests, then exits cleanly (status 0, no error on its stderr), and the catalog's server
    is stopped. What the run said, the prompt, and how often it answered during the run."""
    from tools.sample_data import SampleSpec, generate

    work = tmp_path_factory.mktemp("shared_catalog")
    raw, catalog = work / "raw", work / "catalog"
    generate(str(raw), SampleSpec(start_date=START, days=1, lanes=LANES))
    prompt = None
    try:
        run, started, answered = _run_workflow(work, START), time.monotonic(), 0
        said: list[str] = []
        threading.Thread(target=lambda: said.extend(run.stdout), daemon=True).start()
        # Once the crawler made the catalog (its metastore's tables and the raw table),
        # the prompt opens while the fetch and the transform job write the catalog.
        while not any(re.search(r"crawler \S+: SUCCEEDED", line) for line in said):
            assert run.poll() is None and time.monotonic() - started < 300, "".join(said)[-5000:]
            time.sleep(0.2)
        prompt = _Prompt(catalog)
        while run.poll() is None and time.monotonic() - started < 600:
            # The prompt answers while the workflow crawls and writes (no waiting).
            assert any("default" in line for line in prompt.ask("SHOW DATABASES")), prompt.seen
            answered += 1
            time.sleep(1)
        run.wait(timeout=600)
        time.sleep(0.5)  # the reader's last lines
        yield {"catalog": catalog, "run": run, "said": "".join(said), "prompt": prompt, "answered": answered}
        status, errors = prompt.close()
        assert status == 0, errors[-3000:]
        assert "ERROR" not in errors and "Exception" not in errors, errors[-3000:]
    finally:
        if prompt is not None and prompt.process.poll() is None:
            prompt.process.kill()
        subprocess.run([sys.executable, "-m", "traffic_glue.runtime.metastore", "stop",
                        str(catalog)], cwd=ROOT, env=_env(), timeout=60)


def test_a_sql_session_stays_open_while_the_workflow_writes_the_catalog(workflow_beside_a_prompt):
    run, out, prompt = (workflow_beside_a_prompt[k] for k in ("run", "said", "prompt"))
    _, curated_table = table_names(load_template(WORKFLOW))
    assert run.returncode == 0, out[-5000:]
    answered = workflow_beside_a_prompt["answered"]
    assert "job" in out and answered >= 1, f"the prompt answered {answered} times during the run"
    # The prompt's catalog sees the table the other process made, with its rows.
    assert _count(prompt.ask(f"SELECT count(*) AS n FROM {curated_table}")) > 0, prompt.seen


WRITER = """
import sys, time
from pathlib import Path
from traffic_glue.runtime import session
catalog, commits, marks = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
spark = session.local_spark_session(app_name="writer", catalog_dir=catalog)
(marks / "ready").touch()
deadline = time.monotonic() + 300
while not (marks / "go").exists():
    assert time.monotonic() < deadline, "never told to go"
    time.sleep(0.05)
for i in range(commits):
    spark.sql(f"INSERT INTO traffic.numbers VALUES (2, {i})")
"""


def test_two_processes_committing_to_one_iceberg_table_lose_no_commit(workflow_beside_a_prompt, tmp_path):
    """Iceberg's Hive lock is on over the server: without it (as over embedded Derby),
    two processes appending 8 rows each kept 11 of 16, every commit reported done. The
    workflow's prompt (still open: writer 1) makes the table; a second process (writer 2)
    opens a session on the same catalog; both then commit at the same time; once both
    are done, the prompt counts each writer's rows in the table the catalog names (its
    session caches no table: `iceberg.local_session_catalog_conf`)."""
    prompt, catalog, commits = workflow_beside_a_prompt["prompt"], workflow_beside_a_prompt["catalog"], 4
    assert prompt.ask("CREATE TABLE traffic.numbers (writer int, n int) USING iceberg")[-1].startswith(
        "(done in"), prompt.seen
    # Its log to a file: an undrained pipe would stop a writer holding the table's lock.
    log = tmp_path / "writer2.log"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(catalog), str(commits), str(tmp_path)],
                              cwd=ROOT, env=_env(), stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_while_running(writer, (tmp_path / "ready").exists, log, 300, "its session", 0.05)
        (tmp_path / "go").touch()
        for i in range(commits):
            assert prompt.ask(f"INSERT INTO traffic.numbers VALUES (1, {i})")[-1].startswith("(done in"), prompt.seen
        assert writer.wait(timeout=600) == 0, log.read_text()[-3000:]
    finally:
        if writer.poll() is None:
            writer.kill()
    counted = prompt.ask("SELECT writer, count(*) AS n FROM traffic.numbers GROUP BY writer ORDER BY writer")
    assert [line.replace(" ", "") for line in counted if line.startswith("|") and "writer" not in line] == [
        f"|1|{commits}|", f"|2|{commits}|"], prompt.seen
