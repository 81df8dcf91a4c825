"""The local catalog's metastore, served to every process that uses the catalog at once.

Spark's Hive catalog keeps its metastore in Derby. Embedded, Derby lets one JVM open the
database: a `make sql` prompt left open made every job on the same catalog fail after
25 s. Here Derby's network server opens it once and serves any number of local sessions
over JDBC:

- the first session of a catalog folder starts the server (`ensure`), on a free port of
  127.0.0.1, with a password of its own in `derby.properties` (readable by its owner
  only), and records `{pid, port, password}` in `metastore_server.json` (the same);
- each session registers its process (`clients/<pid>`); the server's keeper
  (`python -m traffic_glue.runtime.metastore keep`) stops it when no registered process
  has been alive for `TRAFFIC_GLUE_METASTORE_IDLE_SECONDS` (300 s by default), so nothing
  lingers after the last `make run` or prompt;
- Iceberg's commits take Hive's commit lock in the metastore, so two processes committing
  to one table do not lose each other's commits; Hive's lock tables are made once per
  catalog (`ensure_lock_tables`).

    python -m traffic_glue.runtime.metastore status|stop [CATALOG_DIR]

On Glue the catalog is the Glue Data Catalog: none of this runs there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DERBY_VERSION = "10.14.2.0"  # the version pyspark 3.5.6 bundles (derby-10.14.2.0.jar)
SERVER_PACKAGE = f"org.apache.derby:derbynet:{DERBY_VERSION}"
CLIENT_PACKAGE = f"org.apache.derby:derbyclient:{DERBY_VERSION}"
CLIENT_DRIVER = "org.apache.derby.jdbc.ClientDriver"
# Derby's default schema is the user's name: APP is the one an embedded metastore used, so
# a catalog made before the server holds its tables where the server's sessions look.
USER = "APP"
STATE_FILE = "metastore_server.json"
LOG_FILE = "metastore_server.log"
LOCK_FILE = "metastore_server.lock"
CLIENTS = "metastore_clients"
LOCK_TABLES_MARKER = "metastore_lock_tables"
IDLE_ENV = "TRAFFIC_GLUE_METASTORE_IDLE_SECONDS"
IDLE_SECONDS = 300.0
START_TIMEOUT = 60.0
# The server's JVM: a small heap, the C1 compiler only and the serial collector. Its work
# is the metastore's few small queries; C2's compiler threads and G1's concurrent ones
# were most of its CPU: over tests/test_shared_catalog (a workflow run beside a prompt
# asking every second, then two writers), 13 CPU-s with the JVM's defaults, 4 with these,
# CPU a laptop's Spark runs got back.
SERVER_JVM_OPTIONS = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


class MetastoreError(RuntimeError):
    """The catalog's metastore server could not be started."""


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (an ended child its parent has not reaped is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_private(path: Path, text: str) -> None:
    """`text` into `path` at once, readable and writable by its owner only."""
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    draft.unlink(missing_ok=True)
    with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(text)
    os.replace(draft, path)


@contextlib.contextmanager
def _locked(catalog: Path):
    """One starter or stopper of `catalog`'s server at a time."""
    with open(catalog / LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def running(catalog: Path) -> dict | None:
    """The recorded server of `catalog`, if its keeper is alive and its port answers."""
    try:
        info = json.loads((catalog / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if _alive(info.get("keeper", info["pid"])) and _alive(info["pid"]) and _answers(info["port"]):
        return info
    return None


def _server_classpath(jars_dir: Path) -> str:
    import pyspark

    derby = Path(pyspark.__file__).parent / "jars" / f"derby-{DERBY_VERSION}.jar"
    return os.pathsep.join([str(jars_dir / f"derbynet-{DERBY_VERSION}.jar"), str(derby)])


def _last_lines(path: Path, count: int = 3) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return " / ".join(lines[-count:])


def ensure(catalog: Path, jars_dir: Path, client_pid: int | None = None) -> dict:
    """`catalog`'s server, started now if none runs; `client_pid` (this process by
    default) registered as a user of it until that process ends."""
    catalog.mkdir(parents=True, exist_ok=True)
    with _locked(catalog):
        info = running(catalog) or _start(catalog, jars_dir)
        clients = catalog / CLIENTS
        clients.mkdir(exist_ok=True)
        (clients / str(client_pid or os.getpid())).touch()
        return info


def _start(catalog: Path, jars_dir: Path) -> dict:
    port, password = _free_port(), secrets.token_urlsafe(24)
    # Derby reads derby.properties from its system home: the server's user and password.
    _write_private(catalog / "derby.properties", "\n".join([
        "derby.connection.requireAuthentication=true",
        "derby.authentication.provider=BUILTIN",
        f"derby.user.{USER}={password}",
        "derby.stream.error.file=" + str(catalog / "derby.log"),
        "",
    ]))
    (catalog / STATE_FILE).unlink(missing_ok=True)
    log = catalog / LOG_FILE
    with open(log, "ab") as out:
        keeper = subprocess.Popen(
            [sys.executable, "-m", "traffic_glue.runtime.metastore", "keep", str(catalog),
             "--port", str(port), "--classpath", _server_classpath(jars_dir)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            # Its own session: it outlives the process that started it, and that
            # process's Ctrl-C.
            start_new_session=True, cwd=catalog,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if keeper.poll() is not None:
            raise MetastoreError(
                f"the local catalog's metastore server for {catalog} did not start: "
                f"{_last_lines(log) or 'no output'} (its log: {log})")
        if (catalog / STATE_FILE).exists() and _answers(port):
            info = {"keeper": keeper.pid, "pid": None, "port": port, "password": password}
            info.update(json.loads((catalog / STATE_FILE).read_text()))
            _write_private(catalog / STATE_FILE, json.dumps(info))
            return info
        time.sleep(0.05)
    keeper.terminate()
    raise MetastoreError(f"the local catalog's metastore server for {catalog} did not answer on "
                         f"127.0.0.1:{port} within {START_TIMEOUT:.0f} s (its log: {log})")


def _live_clients(catalog: Path) -> list[int]:
    """The registered processes still alive; the others' registrations are removed."""
    live = []
    for entry in (catalog / CLIENTS).glob("*"):
        if entry.name.isdigit() and _alive(int(entry.name)):
            live.append(int(entry.name))
        else:
            entry.unlink(missing_ok=True)
    return live


def keep(catalog: Path, port: int, classpath: str, idle_seconds: float) -> int:
    """Run Derby's network server for `catalog` until it has had no live client for
    `idle_seconds` (or it ends); the keeper's own process, started by `ensure`."""
    server = subprocess.Popen(
        ["java", *SERVER_JVM_OPTIONS, f"-Dderby.system.home={catalog}", "-cp", classpath,
         "org.apache.derby.drda.NetworkServerControl", "start",
         "-h", "127.0.0.1", "-p", str(port), "-noSecurityManager"],
        stdin=subprocess.DEVNULL, cwd=catalog,
    )
    _write_private(catalog / STATE_FILE, json.dumps({"keeper": os.getpid(), "pid": server.pid, "port": port}))
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    idle_since = None
    while server.poll() is None:
        time.sleep(1.0)
        if not (catalog / LOCK_FILE).exists():  # the folder was removed (make clean)
            _stop_server(server)
            return 0
        if _live_clients(catalog):
            idle_since = None
            continue
        idle_since = idle_since or time.monotonic()
        if time.monotonic() - idle_since < idle_seconds:
            continue
        with _locked(catalog):
            if _live_clients(catalog):  # one registered while this waited for the lock
                idle_since = None
                continue
            _stop_server(server)
            (catalog / STATE_FILE).unlink(missing_ok=True)
            return 0
    # The server ended by itself (or failed to start: `ensure`, holding the lock, waits
    # for this process to end, so no lock here; a record of a dead server is ignored).
    (catalog / STATE_FILE).unlink(missing_ok=True)
    return server.returncode or 0


def _stop_server(server: subprocess.Popen, timeout: float = 20.0) -> None:
    server.terminate()
    try:
        server.wait(timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def stop(catalog: Path, timeout: float = 30.0) -> bool:
    """End `catalog`'s server now, if one runs; True if one did. Sessions still open on it
    lose their catalog."""
    if not (catalog / LOCK_FILE).exists():
        return False
    with _locked(catalog):
        info = running(catalog)
        if not info:
            return False
        os.kill(info["keeper"], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(info["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(info["pid"]):
            os.kill(info["pid"], signal.SIGKILL)
        (catalog / STATE_FILE).unlink(missing_ok=True)
        return True


def connection_conf(info: dict) -> dict[str, str]:
    """The metastore's JDBC settings for a Spark session over the server (Spark hides the
    password in its UI and event logs: its key names a password)."""
    return {
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby://127.0.0.1:{info['port']}/metastore_db;create=true",
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": CLIENT_DRIVER,
        "spark.hadoop.javax.jdo.option.ConnectionUserName": USER,
        "spark.hadoop.javax.jdo.option.ConnectionPassword": info["password"],
    }


def ensure_lock_tables(spark, catalog: Path, info: dict) -> None:
    """Hive's lock tables (HIVE_LOCKS, TXNS ...) in the metastore, once per catalog: Iceberg
    takes its commit lock there. DataNucleus does not make them; Hive 2.3's own
    `TxnDbUtil.prepDb` does (and fails when another session made them first)."""
    marker = catalog / LOCK_TABLES_MARKER
    if marker.exists():
        return
    jvm = spark._jvm
    conf = jvm.org.apache.hadoop.hive.conf.HiveConf()
    for key, value in connection_conf(info).items():
        conf.set(key.removeprefix("spark.hadoop."), value)
    with _locked(catalog):
        if marker.exists():
            return
        try:
            jvm.org.apache.hadoop.hive.metastore.txn.TxnDbUtil.prepDb(conf)
        except Exception as error:  # noqa: BLE001 - py4j's error: made already is fine
            if "already exists" not in str(error):
                raise
        marker.write_text("")


def main(argv: list[str]) -> int:
    import argparse

    default = os.environ.get("TRAFFIC_GLUE_CATALOG_DIR") or ".local/catalog"
    parser = argparse.ArgumentParser(
        prog="python -m traffic_glue.runtime.metastore",
        description="The local catalog's metastore server: started by the first session, "
                    "stopped when no session has used it for a while.")
    parser.add_argument("action", choices=["status", "stop", "keep"])
    parser.add_argument("catalog_dir", nargs="?", default=default,
                        help=f"the catalog folder (default {default})")
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--classpath", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    catalog = Path(args.catalog_dir).resolve()
    if args.action == "keep":
        idle = float(os.environ.get(IDLE_ENV, IDLE_SECONDS))
        return keep(catalog, args.port, args.classpath, idle)
    if args.action == "stop":
        print(f"metastore: stopped the server of {catalog}" if stop(catalog)
              else f"metastore: no server runs for {catalog}")
        return 0
    info = running(catalog)
    if info is None:
        print(f"metastore: no server runs for {catalog}")
    else:
        clients = _live_clients(catalog)
        print(f"metastore: the server of {catalog} runs on 127.0.0.1:{info['port']} (pid {info['pid']}) "
              f"for {len(clients)} process(es){': ' + ', '.join(map(str, clients)) if clients else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
