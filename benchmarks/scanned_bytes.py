"""What Athena would bill the seed's query for, measured on a landing's Parquet footers.

Athena bills the bytes it reads from S3 (docs/GLUE_VS_ATHENA.md has the price and its
source). On a Parquet landing partitioned by processing hour it reads only the folders
the query's partition filter keeps, and of their files only the column chunks of the
columns the query names, compressed as stored. So for a run over event days
[start, end] this sums, from the footers of the files in the processing-hour folders the
run reads (the same folders both implementations read: `tools.duckdb_reference`'s
`run_ranges` and `raw_files`, with the job's defaults of 60 lookback minutes and 24 late
hours):

- `file bytes`: the whole files (what a `SELECT *`, or a JSON landing, would read);
- `column bytes`: the compressed column chunks of the raw columns the seed's query names
  (`SEED_SQL`; the names are found in its text, not typed here);
- `pruned bytes`: the same, less the row groups whose `tijd_waarneming` statistics lie
  wholly outside the run's context range, which Athena can skip on the query's filter
  on that column (the job skips the same row groups; docs/BENCHMARKS.md).

Footers themselves (a few KB a file) are not counted. Nothing is run: no Spark, no
DuckDB, only the footers are read.

    python -m benchmarks.scanned_bytes --raw /tmp/gva/raw --start-date 2020-04-08 \\
        --end-date 2020-04-08 [--days-per-run 4] [--late-hours 24] [--lookback-minutes 60]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from tools import duckdb_reference
from traffic_glue.compute import schema  # importable once tools.duckdb_reference is

# The repository's rendition of the seed's Athena `INSERT INTO ... SELECT` (its `athena`
# mode, quirks included), whose raw column names are the columns Athena reads.
SEED_SQL = Path(duckdb_reference.SQL_DIR) / "athena.sql"
LOOKBACK_MINUTES = 60  # the job's and the seed's defaults (docs/SEMANTICS.md)
LATE_HOURS = 24
DECIMAL_TB = 10**12  # Athena's price is per TB; read here as 10^12 bytes


def _code(sql: str) -> str:
    """The SQL without its comments and string literals."""
    without_comments = re.sub(r"--[^\n]*", " ", sql)
    without_blocks = re.sub(r"/\*.*?\*/", " ", without_comments, flags=re.DOTALL)
    return re.sub(r"'(?:[^']|'')*'", "''", without_blocks)


def referenced_columns(sql: str, raw_columns: Sequence[str] = schema.RAW_COLUMNS) -> tuple[str, ...]:
    """The raw columns whose names appear as identifiers in `sql`, in the raw schema's order."""
    names = {token.lower() for token in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", _code(sql))}
    return tuple(column for column in raw_columns if column.lower() in names)


def seed_columns() -> tuple[str, ...]:
    return referenced_columns(SEED_SQL.read_text())


@dataclass(frozen=True)
class Scan:
    """What one run (or statement) would read."""

    start_date: date
    end_date: date
    folders: int
    files: int
    readings: int
    file_bytes: int
    column_bytes: int
    pruned_bytes: int

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1


def _overlaps(statistics, low: int, high: int) -> bool:
    """Whether a row group's values can hold one in [low, high); True without statistics."""
    if statistics is None or not statistics.has_min_max:
        return True
    return not (statistics.max < low or statistics.min >= high)


def scan(raw_root: str | Path, start_date: date, end_date: date, columns: Iterable[str],
         lookback_minutes: int = LOOKBACK_MINUTES, late_hours: int = LATE_HOURS) -> Scan:
    """The bytes a run over event days [start_date, end_date] reads (see the module's text)."""
    wanted = set(columns)
    ranges = duckdb_reference.run_ranges(start_date, end_date, lookback_minutes, late_hours)
    files = duckdb_reference.raw_files(raw_root, ranges["first_folder_hour"], ranges["folders_end"])
    readings = file_bytes = column_bytes = pruned_bytes = 0
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        file_bytes += Path(path).stat().st_size
        readings += metadata.num_rows
        for index in range(metadata.num_row_groups):
            group = metadata.row_group(index)
            chunks = [group.column(c) for c in range(group.num_columns)]
            chosen = sum(chunk.total_compressed_size for chunk in chunks if chunk.path_in_schema in wanted)
            column_bytes += chosen
            times = [chunk for chunk in chunks if chunk.path_in_schema == schema.OBSERVED_AT]
            if not times or _overlaps(times[0].statistics, ranges["context_start"], ranges["output_end"]):
                pruned_bytes += chosen
    folders = len({str(Path(path).parent) for path in files})
    return Scan(start_date, end_date, folders, len(files), readings, file_bytes, column_bytes, pruned_bytes)


def statements(start_date: date, end_date: date, days_per_statement: int) -> list[tuple[date, date]]:
    """The range cut into runs of at most `days_per_statement` days (the seed: 4)."""
    cuts, first = [], start_date
    while first <= end_date:
        last = min(end_date, first + timedelta(days=days_per_statement - 1))
        cuts.append((first, last))
        first = last + timedelta(days=1)
    return cuts


def _mb(value: float) -> str:
    return f"{value / 1e6:,.1f}"


def report(scans: Sequence[Scan], columns: Sequence[str], price_per_tb: float) -> str:
    lines = [f"columns the seed's query names ({len(columns)}, from {SEED_SQL.name}): {', '.join(columns)}",
             "run | days | folders | files | readings | file MB | column MB | pruned MB | "
             "column MB/day | pruned MB/day | $ at pruned"]
    for s in scans:
        lines.append(
            f"{s.start_date}..{s.end_date} | {s.days} | {s.folders} | {s.files} | {s.readings:,} | "
            f"{_mb(s.file_bytes)} | {_mb(s.column_bytes)} | {_mb(s.pruned_bytes)} | "
            f"{_mb(s.column_bytes / s.days)} | {_mb(s.pruned_bytes / s.days)} | "
            f"{max(s.pruned_bytes, 10 * 10**6) / DECIMAL_TB * price_per_tb:.5f}")
    if len(scans) > 1:
        total = Scan(scans[0].start_date, scans[-1].end_date, *(sum(getattr(s, f) for s in scans) for f in
                     ("folders", "files", "readings", "file_bytes", "column_bytes", "pruned_bytes")))
        lines.append(f"all {len(scans)} runs | {total.days} | {total.folders} | {total.files} | "
                     f"{total.readings:,} | {_mb(total.file_bytes)} | {_mb(total.column_bytes)} | "
                     f"{_mb(total.pruned_bytes)} | {_mb(total.column_bytes / total.days)} | "
                     f"{_mb(total.pruned_bytes / total.days)} | "
                     f"{sum(max(s.pruned_bytes, 10 * 10**6) for s in scans) / DECIMAL_TB * price_per_tb:.5f}")
    lines.append("(MB = 10^6 bytes; $ = pruned bytes, at least 10 MB a statement, at the given price per 10^12 bytes)")
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scanned_bytes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", required=True, help="the landing's root (year=/month=/day=/hour= folders)")
    parser.add_argument("--start-date", required=True, type=date.fromisoformat)
    parser.add_argument("--end-date", required=True, type=date.fromisoformat)
    parser.add_argument("--days-per-run", type=int, default=0,
                        help="cut the range into runs of this many days, as the seed's statements (4); 0: one run")
    parser.add_argument("--lookback-minutes", type=int, default=LOOKBACK_MINUTES)
    parser.add_argument("--late-hours", type=int, default=LATE_HOURS,
                        help="hours of folders read after the last day (24); with --lookback-minutes 0 "
                             "and --late-hours 0 a run reads its landed days alone")
    parser.add_argument("--price-per-tb", type=float, default=5.0, help="USD per TB scanned (default 5.0)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.end_date < args.start_date:
        print(f"--end-date {args.end_date} is before --start-date {args.start_date}", file=sys.stderr)
        return 2
    columns = seed_columns()
    cuts = (statements(args.start_date, args.end_date, args.days_per_run) if args.days_per_run > 0
            else [(args.start_date, args.end_date)])
    scans = [scan(args.raw, first, last, columns, args.lookback_minutes, args.late_hours) for first, last in cuts]
    print(report(scans, columns, args.price_per_tb))
    return 0


if __name__ == "__main__":
    sys.exit(main())
