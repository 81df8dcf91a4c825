"""Query the local catalog the workflow and the job use, as Athena would query Glue's.

    python -m workflows.local_sql "SELECT year, month, day, count(*) FROM traffic.traffic_minutes GROUP BY 1, 2, 3"
    python -m workflows.local_sql                  # a prompt: one Spark session for every statement
    python -m workflows.local_sql < queries.sql    # the same, one statement per line

Starting Spark and its catalog takes most of a query's time (15-30 s); in a running
session the first query on a table takes a few seconds, the next ones about one. So the
prompt (and a file on stdin) runs every statement in ONE session. A statement ends with
`;` or at the end of its line; a line ending in `\\` (or inside a quoted string)
continues on the next; `--` starts a comment. A query argument may hold several statements
separated by `;`: they run in order, in one session, and the first that fails stops the
rest.

Embedded Derby lets one process at a time open the catalog: not while a workflow runs.
"""

from __future__ import annotations

import argparse
import io
import signal
import sys
import threading
import time
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from workflows.local_runner import default_catalog_dir, describe_catalog_error

DEFAULT_LIMIT = 50
QUOTES = "'\"`"
QUIT_WORDS = frozenset({"exit", "quit"})
PROMPT, CONTINUATION_PROMPT = "sql> ", "...> "


# --- statements -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    statements: list[str]
    unfinished: bool  # ends inside a quoted string, or after a line-continuing backslash


def scan_sql(text: str) -> Scan:
    """`text` cut into statements at each `;` outside quoted strings and identifiers;
    `--` comments dropped, a backslash that ends a line joins it to the next."""
    pieces, current, quote, continued, i = [], [], None, False, 0
    while i < len(text):
        char = text[i]
        if quote:
            current.append(char)
            if char == "\\" and quote != "`" and i + 1 < len(text):  # '\'' is one quote
                current.append(text[i + 1])
                i += 1
            elif char == quote:
                quote = None
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif char == "\\" and not text[i + 1:].split("\n", 1)[0].strip():
            current.append(" ")
            continued = True
        elif char == ";":
            pieces.append("".join(current))
            current, continued = [], False
        else:
            current.append(char)
            quote = char if char in QUOTES else None
            continued = continued and char.isspace()
        i += 1
    pieces.append("".join(current))
    statements = [piece.strip() for piece in pieces if piece.strip()]
    return Scan(statements, unfinished=quote is not None or continued)


def split_statements(text: str) -> list[str]:
    """The statements of `text`, split at `;` outside quotes, comments and empty ones left out."""
    return scan_sql(text).statements


# --- running them -----------------------------------------------------------------------


def _elapsed(started: float) -> str:
    return f"{time.perf_counter() - started:.1f} s"


def run_statement(spark, statement: str, limit: int) -> None:
    """Run one statement and print its result as `DataFrame.show` does, then its time."""
    started = time.perf_counter()
    result = spark.sql(statement)
    if not result.columns:  # DDL and the like: nothing to show
        print(f"(done in {_elapsed(started)})\n", flush=True)
        return
    with redirect_stdout(io.StringIO()) as table:
        result.show(limit, truncate=False)
    took = _elapsed(started)
    text = table.getvalue().rstrip("\n")
    # show() prints one line per row (it escapes line breaks in values), after a header.
    rows = sum(line.startswith("|") for line in text.splitlines()) - 1
    count = f"first {rows} rows" if "only showing top" in text else f"{rows} row{'' if rows == 1 else 's'}"
    print(f"{text}\n({count} in {took})\n", flush=True)


def _error(error: BaseException, catalog_dir: Path) -> None:
    print(f"local_sql: error: {describe_catalog_error(error, str(catalog_dir))}", file=sys.stderr, flush=True)


def run_statements(spark, statements: list[str], limit: int, catalog_dir: Path) -> int:
    """A query argument's statements in order; the first that fails stops the rest."""
    for statement in statements:
        try:
            run_statement(spark, statement, limit)
        except Exception as error:  # a bad query or a locked catalog: one line, not a JVM trace
            _error(error, catalog_dir)
            return 1
    return 0


def _read_line(tty: bool, continuing: bool) -> str | None:
    """The next line of stdin with its line break, None at its end."""
    if tty:
        try:
            return input(CONTINUATION_PROMPT if continuing else PROMPT) + "\n"
        except EOFError:
            print()
            return None
    return sys.stdin.readline() or None


class CtrlC:
    """SIGINT while the shell runs: at the prompt, KeyboardInterrupt. During a statement,
    Spark's jobs are cancelled from another thread until the statement returns, and the
    shell then exits; a second Ctrl-C raises at once. (Raising in the py4j call the main
    thread waits on, as PySpark's own handler does, breaks its connection and prints
    pages of tracebacks.)"""

    def __init__(self, spark):
        self.spark, self.running, self.pressed = spark, False, False

    def __call__(self, signum, frame) -> None:
        if not self.running or self.pressed:
            raise KeyboardInterrupt
        self.pressed = True
        threading.Thread(target=self._cancel_jobs, daemon=True).start()

    def _cancel_jobs(self) -> None:
        while self.running:  # a statement may start more jobs after its first is cancelled
            try:
                self.spark.sparkContext.cancelAllJobs()
            except Exception:  # the JVM is going away: nothing is left to cancel
                return
            time.sleep(0.2)


def interactive(spark, limit: int, catalog_dir: Path) -> int:
    """Statements from stdin, each run when its line ends, until EOF, exit, quit or Ctrl-C.
    A bad statement prints one line and the next one runs."""
    tty = sys.stdin.isatty()
    if tty:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
    buffer, ctrl_c = "", CtrlC(spark)
    spark_handler = signal.signal(signal.SIGINT, ctrl_c)
    try:
        while True:
            line = _read_line(tty, continuing=bool(buffer))
            if line is not None:
                buffer += line
                scan = scan_sql(buffer)
                if scan.unfinished:
                    continue
            else:
                scan = scan_sql(buffer)
            buffer = ""
            for statement in scan.statements:
                if statement.lower() in QUIT_WORDS:
                    return 0
                ctrl_c.running = True
                try:
                    run_statement(spark, statement, limit)
                except Exception as error:
                    if not ctrl_c.pressed:
                        _error(error, catalog_dir)
                finally:
                    ctrl_c.running = False
                if ctrl_c.pressed:
                    print("\nlocal_sql: cancelled", file=sys.stderr)
                    return 0
            if line is None:
                return 0
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGINT, spark_handler)


# --- the command ------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflows.local_sql",
        description="Run SQL on the local catalog: the statements given, or a prompt reading "
                    "stdin that runs every statement in one Spark session.")
    parser.add_argument("query", nargs="?",
                        help='e.g. "SHOW PARTITIONS traffic.raw_measurements"; several statements '
                             "separated by ;. Without it, statements are read from stdin")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help=f"rows to show (default {DEFAULT_LIMIT})")
    parser.add_argument("--catalog-dir", default=None,
                        help="local catalog (default $TRAFFIC_GLUE_CATALOG_DIR or .local/catalog)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    catalog_dir = Path(args.catalog_dir or default_catalog_dir()).resolve()
    if not (catalog_dir / "metastore_db").is_dir():
        print(f"local_sql: error: no local catalog in {catalog_dir}: run "
              "python -m workflows.local_runner first (or give --catalog-dir)", file=sys.stderr)
        return 2
    statements = None if args.query is None else split_statements(args.query)
    if statements == []:
        print("local_sql: error: the query holds no statement", file=sys.stderr)
        return 2
    from traffic_glue.runtime.session import local_spark_session

    if statements:
        spark = local_spark_session(app_name="traffic-glue-sql", catalog_dir=str(catalog_dir))
        return run_statements(spark, statements, args.limit, catalog_dir)

    print("local_sql: starting Spark once; every statement then runs in the same session",
          file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        spark = local_spark_session(app_name="traffic-glue-sql", catalog_dir=str(catalog_dir))
        spark.sql("SHOW DATABASES").collect()  # opens the catalog now, not at the first query
    except KeyboardInterrupt:
        return 0
    except Exception as error:  # a locked catalog: no statement could run
        _error(error, catalog_dir)
        return 1
    print(f"local_sql: ready in {_elapsed(started)}. A statement ends with ; or at the end of its "
          "line (end a line with \\ to go on); quit with exit, quit, Ctrl-D or Ctrl-C.",
          file=sys.stderr, flush=True)
    return interactive(spark, args.limit, catalog_dir)


if __name__ == "__main__":
    sys.exit(main())
