"""The local catalog's metastore server (traffic_glue.runtime.metastore): one per catalog
folder, shared, private, and gone once no process uses it.

These start Derby's network server (a small JVM, about a second) but no Spark session;
tests/test_shared_catalog.py has the sessions of two processes on it.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from traffic_glue.runtime import metastore
from traffic_glue.runtime.session import JARS_DIR


def _wait_until(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture
def short_idle(monkeypatch):
    monkeypatch.setenv(metastore.IDLE_ENV, "1")


def test_the_first_user_starts_the_server_and_the_next_one_shares_it(tmp_path, short_idle):
    catalog = tmp_path / "catalog"
    client = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        first = metastore.ensure(catalog, JARS_DIR, client_pid=client.pid)
        second = metastore.ensure(catalog, JARS_DIR, client_pid=os.getpid())
        assert (second["port"], second["pid"], second["password"]) == (
            first["port"], first["pid"], first["password"])
        assert metastore.running(catalog) == first
        assert sorted(int(p.name) for p in (catalog / metastore.CLIENTS).iterdir()) == sorted(
            [client.pid, os.getpid()])
        # What holds the password is its owner's only.
        for private in (catalog / metastore.STATE_FILE, catalog / "derby.properties"):
            assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
        assert first["password"] in (catalog / "derby.properties").read_text()
        settings = metastore.connection_conf(first)
        assert settings["spark.hadoop.javax.jdo.option.ConnectionURL"] == (
            f"jdbc:derby://127.0.0.1:{first['port']}/metastore_db;create=true")
        assert settings["spark.hadoop.javax.jdo.option.ConnectionUserName"] == "APP"
    finally:
        client.kill()
        client.wait()
        assert metastore.stop(catalog)
    assert not (catalog / metastore.STATE_FILE).exists()
    assert _wait_until(lambda: not metastore._alive(first["pid"]))
    assert metastore.stop(catalog) is False


def test_the_server_stops_itself_once_no_registered_process_is_alive(tmp_path, short_idle):
    catalog = tmp_path / "catalog"
    client = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    info = metastore.ensure(catalog, JARS_DIR, client_pid=client.pid)
    try:
        time.sleep(2.5)  # more than the idle time: the client is alive, the server stays
        assert metastore.running(catalog) == info
        client.kill()
        client.wait()
        assert _wait_until(lambda: not metastore._alive(info["pid"])), "the server outlived its users"
        assert _wait_until(lambda: not metastore._alive(info["keeper"]))
        assert not (catalog / metastore.STATE_FILE).exists()
        assert list((catalog / metastore.CLIENTS).iterdir()) == []
    finally:
        metastore.stop(catalog)


def test_a_removed_catalog_folder_ends_its_server(tmp_path, monkeypatch):
    monkeypatch.setenv(metastore.IDLE_ENV, "600")
    catalog = tmp_path / "catalog"
    info = metastore.ensure(catalog, JARS_DIR)  # this test's process: alive throughout
    subprocess.run(["rm", "-rf", str(catalog)], check=True)  # as `make clean` does
    assert _wait_until(lambda: not metastore._alive(info["pid"])), "the server outlived its folder"


def test_the_server_runs_in_a_small_jvm_of_the_c1_compiler_and_the_serial_collector(tmp_path):
    catalog = tmp_path / "catalog"
    info = metastore.ensure(catalog, JARS_DIR)  # this test's process: its client
    try:
        argv = Path(f"/proc/{info['pid']}/cmdline").read_bytes().decode().split("\0")
        assert argv[0] == "java" and argv[1:4] == ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
        assert "org.apache.derby.drda.NetworkServerControl" in argv
    finally:
        metastore.stop(catalog)


def test_a_stale_record_is_not_taken_for_a_server(tmp_path):
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (catalog / metastore.STATE_FILE).write_text(json.dumps(
        {"keeper": dead.pid, "pid": dead.pid, "port": 9, "password": "x"}))
    assert metastore.running(catalog) is None
    assert metastore.stop(catalog) is False


def test_a_server_that_cannot_start_is_one_line_naming_its_log(tmp_path):
    catalog = tmp_path / "catalog"
    with pytest.raises(metastore.MetastoreError) as raised:
        metastore.ensure(catalog, tmp_path / "no-jars-here")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"the local catalog's metastore server for {catalog} did not start: ")
    assert str(catalog / metastore.LOG_FILE) in message


def test_status_and_stop_say_what_they_found(tmp_path, capsys, short_idle):
    catalog = tmp_path / "catalog"
    assert metastore.main(["status", str(catalog)]) == 0
    assert capsys.readouterr().out == f"metastore: no server runs for {catalog}\n"
    info = metastore.ensure(catalog, JARS_DIR)
    try:
        assert metastore.main(["status", str(catalog)]) == 0
        assert capsys.readouterr().out == (
            f"metastore: the server of {catalog} runs on 127.0.0.1:{info['port']} (pid {info['pid']}) "
            f"for 1 process(es): {os.getpid()}\n")
    finally:
        assert metastore.main(["stop", str(catalog)]) == 0
    assert capsys.readouterr().out == f"metastore: stopped the server of {catalog}\n"
