"""An independent implementation of the daily summary in DuckDB SQL.

Written from `docs/SEMANTICS.md` ("The daily summary"), not from the Spark module, so
that the parity test (`tests/test_summary.py`) compares two readings of the
specification. The computation is `tools/sql/daily_summary.sql` over a view
`curated`; this module finds the curated Parquet files and runs it.

    python -m tools.duckdb_summary --curated DIR

prints one JSON object per summary row, ordered by uniqueid, day, hour.

A folder is read as plain Parquet files of curated rows: every visible `*.parquet` under
it. An Iceberg table's folder also keeps the files of older snapshots, so point it at an
export of the rows (as tests/test_summary_job.py does).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import duckdb

try:
    from traffic_glue.compute import schema
except ImportError:  # run as `python -m tools.duckdb_summary` from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "glue_jobs"))
    from traffic_glue.compute import schema

SQL = Path(__file__).resolve().parent / "sql" / "daily_summary.sql"

_DUCKDB_TYPES = {"IntegerType": "INTEGER", "LongType": "BIGINT", "DoubleType": "DOUBLE"}


def _hidden(path: Path, root: Path) -> bool:
    """Whether a file is invisible to Spark, Athena and crawlers: a name, or a folder
    under `root`, starting with `_` or `.` (`_reports/`, `_rejected/`, `_SUCCESS`)."""
    return any(part.startswith(("_", ".")) for part in path.relative_to(root).parts)


def curated_files(curated: str | os.PathLike) -> list[str]:
    """The Parquet files of a curated table folder (searched recursively: the
    `year=/month=/day=/hour=` layout), of one file, or matching a glob; sorted."""
    text = os.fspath(curated)
    if glob.has_magic(text):
        return sorted(glob.glob(text, recursive=True))
    root = Path(text)
    if root.is_file():
        return [text]
    if not root.is_dir():
        return []
    return sorted(str(p) for p in root.rglob("*.parquet") if p.is_file() and not _hidden(p, root))


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _create_curated(con, files: list[str]) -> None:
    """View `curated`: the files' rows. Only the files' own columns: the partition
    columns of the folder names are not read (the summary takes its hours from
    recordtimestamp)."""
    if files:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW curated AS SELECT * FROM read_parquet("
            f"{_sql_list(files)}, union_by_name = true, hive_partitioning = false)"
        )
        return
    # No file: an empty table, so the summary is empty.
    select = ", ".join(f'CAST(NULL AS {_DUCKDB_TYPES[type(f.dataType).__name__]}) AS "{f.name}"'
                       for f in schema.CURATED_SCHEMA.fields)
    con.execute(f"CREATE OR REPLACE TEMP VIEW curated AS SELECT {select} WHERE false")


def summary_rows(curated: str | os.PathLike, threads: int | None = None) -> list[dict]:
    """The daily summary of the curated rows in `curated` (a folder, a Parquet file or
    a glob), one dict per row, ordered by uniqueid, day, hour."""
    con = duckdb.connect()
    try:
        # day and hour are computed without it, but nothing should depend on the host's.
        con.execute("SET TimeZone = 'UTC'")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        _create_curated(con, curated_files(curated))
        result = con.execute(
            f"SELECT * FROM (\n{SQL.read_text()}\n) AS summary ORDER BY uniqueid, day, hour"
        )
        names = [column[0] for column in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]
    finally:
        con.close()


# --- command line ----------------------------------------------------------------------

def _parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.duckdb_summary", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--curated", required=True,
                        help="curated table folder (Parquet layout), Parquet file or glob")
    parser.add_argument("--threads", type=int)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    for row in summary_rows(args.curated, threads=args.threads):
        print(json.dumps(row, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
