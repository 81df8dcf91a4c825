"""Pictures of days of the daily summary table, on demand (no Spark, no JVM).

    python -m tools.report --date 2020-04-07 [--to-date 2020-04-08] \
        [--summary data/daily_summary] [--out data/report]

Reads the summary's Iceberg table at its folder with pyiceberg (its current snapshot,
only the files of the days asked for) and writes, per day, `traffic_<day>.html` with
its PNGs (`tools.pictures.render_day`). `make run` does the same for the days it ran.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from pyiceberg.expressions import In
from pyiceberg.table import StaticTable

from tools.pictures import render_day

DEFAULT_SUMMARY = "data/daily_summary"
DEFAULT_OUT = "data/report"


class ReportError(RuntimeError):
    """The summary table is not where it was looked for."""


def summary_table(folder: Path) -> StaticTable:
    """The Iceberg table at `folder`: a file-based catalog's (`version-hint.text`) or a
    catalog's (numbered metadata files, the newest is current)."""
    metadata = folder / "metadata"
    hint = metadata / "version-hint.text"
    if hint.exists():
        return StaticTable.from_metadata(str(metadata / f"v{hint.read_text().strip()}.metadata.json"))
    found = sorted(metadata.glob("*.metadata.json"))
    if not found:
        raise ReportError(
            f"no summary table in {folder}: run the workflow first (make run), or give "
            "--summary the folder of the daily summary table"
        )
    return StaticTable.from_metadata(str(found[-1]))


def summary_rows(folder: Path, days: list[dt.date]) -> list[dict]:
    table = summary_table(folder)
    if table.current_snapshot() is None:
        return []
    wanted = In("day", {day.isoformat() for day in days})
    return table.scan(row_filter=wanted).to_arrow().to_pylist()


def render_days(folder: Path, days: list[dt.date], out_dir: Path) -> list[Path]:
    """One page per day (a day without rows gets a page saying so)."""
    rows = summary_rows(folder, days)
    return [render_day(rows, day, out_dir) for day in days]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.report", description=__doc__.split("\n")[0])
    parser.add_argument("--date", required=True, type=dt.date.fromisoformat, help="UTC day YYYY-MM-DD")
    parser.add_argument("--to-date", type=dt.date.fromisoformat, help="last day (default: --date)")
    parser.add_argument("--summary", default=DEFAULT_SUMMARY,
                        help=f"the daily summary table's folder (default {DEFAULT_SUMMARY})")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"where the pages go (default {DEFAULT_OUT})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    last = args.to_date or args.date
    if last < args.date:
        print("report: error: --to-date is before --date", file=sys.stderr)
        return 2
    days = [args.date + dt.timedelta(days=n) for n in range((last - args.date).days + 1)]
    try:
        pages = render_days(Path(args.summary), days, Path(args.out))
    except ReportError as error:
        print(f"report: error: {error}", file=sys.stderr)
        return 1
    for page in pages:
        print(f"pictures of {page.stem.removeprefix('traffic_')}: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
