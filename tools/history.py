"""Spark's history server on the local sessions' event logs: the Spark UI of a local run.

    python -m tools.history [--port 18080] [--log-dir FOLDER]    # what `make history` runs

Local sessions write Spark's event logs into `.local/spark-events/`, or
`$TRAFFIC_GLUE_EVENT_LOG_DIR` (`traffic_glue.runtime.session.event_log_conf`). This serves
them with the history server that pyspark's pip package ships (its `bin/spark-class` and
jars), on 127.0.0.1 only, in the foreground until Ctrl-C: every run's jobs, stages, tasks
and SQL plans, a running one's too (the folder is read again every few seconds). On Glue,
the job's `--enable-spark-ui` writes the logs to S3 instead.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from traffic_glue.runtime.session import EVENT_LOG_DIR, EVENT_LOG_ENV, event_log_dir

HOST = "127.0.0.1"
DEFAULT_PORT = 18080
SERVER_CLASS = "org.apache.spark.deploy.history.HistoryServer"
# How often the server looks for new and grown logs (Spark's default: 10 s).
UPDATE_INTERVAL = "3s"
LOG_CONFIG = Path(__file__).resolve().with_name("history_log4j2.properties")


def default_log_dir(environ=os.environ) -> Path:
    """Where local sessions write their event logs (the default folder when they are off)."""
    return event_log_dir(environ) or EVENT_LOG_DIR


def event_logs(folder: Path) -> list[Path]:
    """The applications' logs in `folder`: a file each, or a folder each (rolling logs)."""
    if not folder.is_dir():
        return []
    return sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))


def spark_home() -> Path:
    """pyspark's own installation: its `bin/spark-class` and `jars/`."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def server_command(folder: Path, port: int, environ=os.environ) -> tuple[list[str], dict[str, str]]:
    """The history server's command line and environment, serving `folder` on HOST:`port`."""
    home = spark_home()
    options = [
        f"-Dspark.history.fs.logDirectory={folder.resolve().as_uri()}",
        f"-Dspark.history.ui.port={port}",
        # The port asked for or an error: Spark would otherwise bind the next free one,
        # and the address printed would be wrong.
        "-Dspark.port.maxRetries=0",
        f"-Dspark.history.fs.update.interval={UPDATE_INTERVAL}",
        f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}",
    ]
    own = environ.get("SPARK_HISTORY_OPTS", "")  # after ours: a user's own settings win
    env = {
        **environ,
        # pyspark's Spark, whatever SPARK_HOME the shell has (spark-class would use it).
        "SPARK_HOME": str(home),
        # Spark's web UI binds to SPARK_LOCAL_IP (else every interface).
        "SPARK_LOCAL_IP": HOST,
        "SPARK_HISTORY_OPTS": " ".join([*options, own]).strip(),
    }
    return [str(home / "bin" / "spark-class"), SERVER_CLASS], env


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Jetty binds
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.history", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help=f"the event logs' folder (default: ${EVENT_LOG_ENV}, else {EVENT_LOG_DIR})")
    args = parser.parse_args(argv)
    folder = args.log_dir or default_log_dir()
    logs = event_logs(folder)
    if not logs:
        print(f"history: no Spark event logs in {folder} yet: run `make run` first", file=sys.stderr)
        return 1
    if port_in_use(args.port):
        print(f"history: port {args.port} on {HOST} is taken (a history server already?): "
              f"make history HISTORY_PORT={args.port + 1}", file=sys.stderr)
        return 1
    command, env = server_command(folder, args.port)
    print(f"Spark history server: {len(logs)} application(s) in {folder}")
    print(f"open http://{HOST}:{args.port} (ready in a few seconds); Ctrl-C stops it", flush=True)
    # The JVM takes this process's place: Ctrl-C stops it, and nothing is left running.
    os.execve(command[0], command, env)


if __name__ == "__main__":
    sys.exit(main())
