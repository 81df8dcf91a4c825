"""Query the local catalog the workflow and the job use, as Athena would query Glue's.

    python -m workflows.local_sql "SELECT year, month, day, count(*) FROM traffic.traffic_minutes GROUP BY 1, 2, 3"
    python -m workflows.local_sql --query-from-env NAME  # the query is the text of variable NAME
    python -m workflows.local_sql                        # a prompt: one Spark session for every statement
    python -m workflows.local_sql --file queries.sql     # the same, reading the file
    python -m workflows.local_sql < queries.sql          # the same, reading stdin

Starting Spark and its catalog takes most of a query's time (15-30 s); in a running
session the first query on a table takes a few seconds, the next ones about one. So the
prompt (and a file, given or on stdin) runs every statement in ONE session. A statement
ends with `;` or at the end of its line; a line ending in `\\` (or inside a quoted string)
continues on the next; `--` starts a comment. A query (argument or variable) may hold
several statements separated by `;`: they run in order, in one session, and the first that
fails stops the rest.

`make sql Q='...'` hands `Q` over in an environment variable (`--query-from-env`), and
`make sql F=queries.sql` the file's name: the shell never parses their text, so backticks,
`$` and quotes reach Spark as typed.

Any number of prompts, queries and jobs can use the catalog at once: its metastore is
served by `traffic_glue.runtime.metastore` to every process on the folder.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import threading
import time
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

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


def _read_line(lines: TextIO, tty: bool, continuing: bool) -> str | None:
    """The next line of `lines` (at a terminal, after a prompt) with its line break, None
    at its end."""
    if tty:
        try:
            return input(CONTINUATION_PROMPT if continuing else PROMPT) + "\n"
        except EOFError:
            print()
            return None
    return lines.readline() or None


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


def interactive(spark, lines: TextIO, limit: int, catalog_dir: Path) -> int:
    """Statements from `lines` (stdin or a file), each run when its line ends, until their
    end, exit, quit or Ctrl-C. A bad statement prints one line and the next one runs."""
    tty = lines.isatty()
    if tty:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
    buffer, ctrl_c = "", CtrlC(spark)
    spark_handler = signal.signal(signal.SIGINT, ctrl_c)
    try:
        while True:
            line = _read_line(lines, tty, continuing=bool(buffer))
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
        description="Run SQL on the local catalog: the statements given, or those of a file or "
                    "stdin (a prompt at a terminal), all in one Spark session.")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("query", nargs="?",
                       help='e.g. "SHOW PARTITIONS traffic.raw_measurements"; several statements '
                            "separated by ;. Without it, --query-from-env or --file, statements "
                            "are read from stdin")
    given.add_argument("--query-from-env", "--query_from_env", metavar="NAME",
                       help="the query is the text of environment variable NAME, as it is "
                            "(make sql Q=... hands Q over this way, past the shell)")
    given.add_argument("--file", metavar="PATH",
                       help="read the statements from this file, as from stdin")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help=f"rows to show (default {DEFAULT_LIMIT})")
    parser.add_argument("--catalog-dir", "--catalog_dir", default=None,
                        help="local catalog (default $TRAFFIC_GLUE_CATALOG_DIR or .local/catalog)")
    return parser.parse_args(argv)


class InputError(Exception):
    """The query or file given cannot be read: its message is the one line to print."""


def given_query(args: argparse.Namespace) -> str | None:
    """The query of the argument or of the environment variable named; None when the
    statements come from a file or stdin."""
    if args.query_from_env is None:
        return args.query
    if args.query_from_env not in os.environ:
        raise InputError(f"the environment variable {args.query_from_env} is not set")
    return os.environ[args.query_from_env]


def read_file(path: str) -> io.StringIO:
    """The file's text, to read line by line as stdin is."""
    try:
        return io.StringIO(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        query = given_query(args)
        lines = read_file(args.file) if args.file is not None else sys.stdin
    except InputError as error:
        print(f"local_sql: error: {error}", file=sys.stderr)
        return 2
    catalog_dir = Path(args.catalog_dir or default_catalog_dir()).resolve()
    if not (catalog_dir / "metastore_db").is_dir():
        print(f"local_sql: error: no local catalog in {catalog_dir}: run "
              "python -m workflows.local_runner first (or give --catalog-dir)", file=sys.stderr)
        return 2
    statements = None if query is None else split_statements(query)
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
    return interactive(spark, lines, args.limit, catalog_dir)


if __name__ == "__main__":
    sys.exit(main())
