"""tools.history: Spark's history server on the local sessions' event logs (`make history`).

The suite's sessions write no event logs (tests/conftest.py), so the served run is a tiny
job in a process of its own, with the project's local session and its event logs turned
on into a temporary folder. The history server then serves that folder on a free port of
127.0.0.1 and is asked for the application over its REST API and for its jobs page, and
stopped as Ctrl-C stops it. The session's event-log settings are tests/test_session.py's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests import listening
from tests.job_helpers import ROOT, job_env
from tools import history
from traffic_glue.runtime.session import EVENT_LOG_DIR, EVENT_LOG_ENV

APP_NAME = "traffic-glue-history-test"
# A job with a shuffle (two stages) and a SQL execution, then a clean stop that marks
# the application complete in its log.
TINY_JOB = f"""
from pyspark.sql import functions as F
from traffic_glue.runtime.session import local_spark_session
spark = local_spark_session(app_name={APP_NAME!r}, shuffle_partitions=2)
assert spark.range(1000).groupBy((F.col("id") % 7).alias("k")).count().count() == 7
print(spark.sparkContext.applicationId)
spark.stop()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((history.HOST, 0))
        return probe.getsockname()[1]


def get(url: str, timeout: float = 30) -> tuple[int, str, str]:
    """Status, final address (redirects followed) and body of a GET."""
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return answer.status, answer.url, answer.read().decode()


def wait_for_application(base: str, app_id: str, server: subprocess.Popen, output: Path,
                         limit: float = 120) -> list[dict]:
    """The server's application list, once it answers and lists `app_id`."""
    deadline = time.monotonic() + limit
    while True:
        assert server.poll() is None, "the history server stopped:\n" + output.read_text()[-3000:]
        try:
            applications = json.loads(get(f"{base}/api/v1/applications", timeout=5)[2])
            if any(application["id"] == app_id for application in applications):
                return applications
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet
        assert time.monotonic() < deadline, "the history server never listed the run:\n" + output.read_text()
        time.sleep(0.5)


def run_with_event_logs(events: Path) -> str:
    """The tiny job in a process of its own, logging its events into `events`; its app id."""
    done = subprocess.run([sys.executable, "-c", TINY_JOB], env=job_env(**{EVENT_LOG_ENV: str(events)}),
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()[-1]


def _ctrl_c_stops_it():
    # Started as from a terminal: SIGINT at its default (a shell's background job ignores
    # it, and the JVM would then too), so Ctrl-C's SIGINT to the group stops it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_the_history_server_shows_a_local_runs_spark_ui(tmp_path):
    events = tmp_path / "spark-events"
    app_id = run_with_event_logs(events)
    # One folder per application of zstd files (rolling, compressed), complete.
    [log] = history.event_logs(events)
    assert log.name == f"eventlog_v2_{app_id}"
    assert sorted(p.name for p in log.iterdir() if not p.name.startswith(".")) == [
        f"appstatus_{app_id}", f"events_1_{app_id}.zstd"]

    port = free_port()
    base = f"http://{history.HOST}:{port}"
    output = tmp_path / "server.log"
    with output.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "tools.history", "--log-dir", str(events), "--port", str(port)],
            cwd=ROOT, env=job_env(), stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_ctrl_c_stops_it)
    try:
        [application] = wait_for_application(base, app_id, server, output)
        assert output.read_text().splitlines()[:2] == [
            f"Spark history server: 1 application(s) in {events}",
            f"open {base} (ready in a few seconds); Ctrl-C stops it"]
        assert application["name"] == APP_NAME
        assert [attempt["completed"] for attempt in application["attempts"]] == [True]
        jobs = json.loads(get(f"{base}/api/v1/applications/{app_id}/jobs")[2])
        assert jobs and {job["status"] for job in jobs} == {"SUCCEEDED"}

        # The application's page: the server loads the log, then redirects to the page.
        status, url, page = get(f"{base}/history/{app_id}/jobs/")
        assert (status, url) == (200, f"{base}/history/{app_id}/jobs/")
        assert f"<title>{APP_NAME} - Spark Jobs</title>" in page
        assert app_id in page

        if listening.has_proc_net():
            # The server's own sockets (those of its process group, the JVM's): another
            # process may listen on the same port number on another address meanwhile.
            sockets = listening.listening(listening.process_group(server.pid))
            assert port in {number for _, number in sockets}, sockets
            assert {address for address, _ in sockets} <= listening.LOOPBACK, sockets

        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C
        assert server.wait(timeout=60) == 128 + signal.SIGINT
        assert "ERROR" not in output.read_text()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


# --- without a server -------------------------------------------------------------------


@pytest.mark.parametrize("entries", [None, [], [".hidden"]])
def test_without_event_logs_it_says_run_make_run_first_and_starts_nothing(tmp_path, capsys, entries):
    folder = tmp_path / "spark-events"
    if entries is not None:
        folder.mkdir()
        for name in entries:
            (folder / name).write_text("")
    assert history.main(["--log-dir", str(folder)]) == 1
    assert capsys.readouterr() == ("", f"history: no Spark event logs in {folder} yet: run `make run` first\n")


def test_a_taken_port_is_named_with_another_to_try(tmp_path, capsys):
    (tmp_path / "eventlog_v2_local-1").mkdir()
    with socket.socket() as taken:
        taken.bind((history.HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert history.main(["--log-dir", str(tmp_path), "--port", str(port)]) == 1
    assert capsys.readouterr() == ("", f"history: port {port} on 127.0.0.1 is taken (a history server "
                                       f"already?): make history HISTORY_PORT={port + 1}\n")


def test_the_logs_are_where_local_sessions_write_them(tmp_path):
    assert history.default_log_dir({}) == EVENT_LOG_DIR == ROOT / ".local" / "spark-events"
    assert history.default_log_dir({EVENT_LOG_ENV: str(tmp_path)}) == tmp_path
    assert history.default_log_dir({EVENT_LOG_ENV: "off"}) == EVENT_LOG_DIR  # earlier runs' logs


def test_the_command_is_pysparks_history_server_on_the_folder_and_loopback(tmp_path):
    import pyspark

    home = Path(pyspark.__file__).resolve().parent
    command, env = history.server_command(
        tmp_path / "events", 18123,
        environ={"SPARK_HOME": "/another/spark", "SPARK_HISTORY_OPTS": "-Dspark.history.retainedApplications=5"})
    assert command == [str(home / "bin" / "spark-class"), "org.apache.spark.deploy.history.HistoryServer"]
    assert os.access(command[0], os.X_OK)
    assert (env["SPARK_HOME"], env["SPARK_LOCAL_IP"]) == (str(home), "127.0.0.1")
    assert env["SPARK_HISTORY_OPTS"].split() == [
        f"-Dspark.history.fs.logDirectory={(tmp_path / 'events').as_uri()}",
        "-Dspark.history.ui.port=18123",
        "-Dspark.port.maxRetries=0",
        "-Dspark.history.fs.update.interval=3s",
        f"-Dlog4j2.configurationFile={history.LOG_CONFIG.as_uri()}",
        "-Dspark.history.retainedApplications=5",  # the user's own, last: they win
    ]
    assert history.LOG_CONFIG.is_file()
