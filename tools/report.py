"""Pictures of days of the daily summary table, on demand (no Spark, no JVM).

    python -m tools.report --date 2020-04-07 [--to-date 2020-04-08] \
        [--summary data/daily_summary] [--out data/report] \
        [--locations data/curated/_locations | --configuration miv-config.xml.gz]

Reads the summary's Iceberg table at its folder with pyiceberg (its current snapshot,
only the files of the days asked for) and writes, per day, `traffic_<day>.html` with
its PNGs (`tools.pictures.render_day`). `make run` does the same for the days it ran.

The locations are named and placed on the map from the locations table (Iceberg, at
`_locations/` in the curated table's folder; per location the row of the latest
`valid_from`), or from a configuration file of the traffic centre (`--configuration`,
XML or gzipped XML). Without either, the pictures name ids only and the map is empty.

A day the summary table holds no rows of gets no page: when none of the days asked for
has rows, that is an error (exit status 1) naming the days the table holds; otherwise
the others get their pages and one line says which days have none.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

from pyiceberg.expressions import In
from pyiceberg.table import StaticTable

from tools.pictures import LocationInfo, location_info, names_from_location_rows, render_day
from traffic_glue.compute import configuration

DEFAULT_SUMMARY = "data/daily_summary"
DEFAULT_OUT = "data/report"
LOCATIONS_FOLDER = "_locations"  # in the curated table's folder
DEFAULT_CURATED = "curated"  # the curated table's folder beside the summary's (make run)
# The locations table's columns the pictures use (docs/SEMANTICS.md, "The locations table").
NAME_COLUMNS = ("location_id", "label", "road_name", "direction", "lane_group",
                "kilometre_point", "longitude", "latitude", "valid_from")
DAY_FORMAT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # what `--date` takes: YYYY-MM-DD only
MOST_STRETCHES = 3  # held days listed as stretches up to this many, else counted


class ReportError(RuntimeError):
    """A table or file is not where it was looked for, or not what it should be."""


def iceberg_table(folder: Path, missing: str) -> StaticTable:
    """The Iceberg table at `folder`: a file-based catalog's (`version-hint.text`) or a
    catalog's (numbered metadata files, the newest is current). `missing` says what to
    do when there is none."""
    metadata = folder / "metadata"
    hint = metadata / "version-hint.text"
    if hint.exists():
        return StaticTable.from_metadata(str(metadata / f"v{hint.read_text().strip()}.metadata.json"))
    found = sorted(metadata.glob("*.metadata.json"))
    if not found:
        raise ReportError(f"no {missing.format(folder=folder)}")
    return StaticTable.from_metadata(str(found[-1]))


def summary_table(folder: Path) -> StaticTable:
    return iceberg_table(folder, "summary table in {folder}: run the workflow first (make run), "
                                 "or give --summary the folder of the daily summary table")


def summary_rows(folder: Path, days: list[dt.date]) -> list[dict]:
    table = summary_table(folder)
    if table.current_snapshot() is None:
        return []
    wanted = In("day", {day.isoformat() for day in days})
    return table.scan(row_filter=wanted).to_arrow().to_pylist()


def held_days(folder: Path) -> list[dt.date]:
    """The days the summary table at `folder` holds rows of, ascending: from its day
    partitions' metadata as the summary job writes them, else from its `day` column."""
    table = summary_table(folder)
    if table.current_snapshot() is None:
        return []
    partitions = table.inspect.partitions()
    if "partition" in partitions.column_names and \
            "day" in {field.name for field in partitions.schema.field("partition").type}:
        counted = zip(partitions["partition"].to_pylist(), partitions["record_count"].to_pylist())
        return sorted({partition["day"] for partition, rows in counted if rows})
    return sorted(set(table.scan(selected_fields=("day",)).to_arrow()["day"].to_pylist()))


def stretches(days: list[dt.date]) -> str:
    """Ascending days as their runs of consecutive days (`2020-04-06..2020-04-07,
    2020-04-09`); more than MOST_STRETCHES runs as a count between the first and last day."""
    runs: list[list[dt.date]] = []
    for day in days:
        if runs and day - runs[-1][-1] == dt.timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    if len(runs) > MOST_STRETCHES:
        return f"{len(days):,} days from {days[0]} to {days[-1]}, not all consecutive"
    return ", ".join(str(run[0]) if len(run) == 1 else f"{run[0]}..{run[-1]}" for run in runs)


def what_is_held(folder: Path) -> str:
    """`the summary table in <folder> holds <days>`, for a message."""
    held = held_days(folder)
    return f"the summary table in {folder} holds " + (stretches(held) if held else "no rows")


def names_from_locations_table(folder: Path) -> dict[int, LocationInfo]:
    """The locations table's names and positions, per location its latest row."""
    table = iceberg_table(folder, "locations table in {folder}: give --locations the folder of "
                                  "the locations table, or --configuration a configuration file")
    columns = {field.name for field in table.schema().fields}
    if "label" not in columns:
        raise ReportError(
            f"the locations table in {folder} holds no names (no `label` column: written "
            "before names were recorded); give --configuration a configuration file instead"
        )
    if table.current_snapshot() is None:
        return {}
    present = tuple(c for c in NAME_COLUMNS if c in columns)
    return names_from_location_rows(table.scan(selected_fields=present).to_arrow().to_pylist())


def names_from_configuration(path: Path) -> dict[int, LocationInfo]:
    """The names and positions of a configuration file's locations."""
    try:
        lanes = configuration.parse_configuration(path.read_bytes(), str(path))
        locations = configuration.locations_of(lanes, str(path))
    except OSError as error:
        raise ReportError(f"cannot read the configuration {path}: {error.strerror}") from None
    except configuration.ConfigurationError as error:
        raise ReportError(str(error)) from None
    return {location: location_info(where) for location, where in locations.items()}


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def names_beside(summary: Path, say=_warn) -> dict[int, LocationInfo]:
    """The names of the locations table where `make run` puts it (`curated/_locations`
    beside the summary's folder); none, said, when it is not there or holds no names:
    the pictures then name ids only."""
    folder = summary.parent / DEFAULT_CURATED / LOCATIONS_FOLDER
    if not (folder / "metadata").is_dir():
        say(f"report: no locations table in {folder}: the pictures name ids only")
        return {}
    try:
        return names_from_locations_table(folder)
    except ReportError as error:
        say(f"report: {error}; the pictures name ids only")
        return {}


def render_days(folder: Path, days: list[dt.date], out_dir: Path,
                names: dict[int, LocationInfo] | None = None) -> list[Path]:
    """One page per day (a day without rows gets a page saying so). `names` None: those
    of the locations table beside the summary (`names_beside`)."""
    rows = summary_rows(folder, days)
    if names is None:
        names = names_beside(folder)
    return [render_day(rows, day, out_dir, names=names) for day in days]


class Parser(argparse.ArgumentParser):
    """Bad arguments end in one line, `report: error: ...`, and status 2."""

    def error(self, message: str):
        self.exit(2, f"report: error: {message}\n")


def _day(parser: Parser, option: str, text: str | None) -> dt.date | None:
    """The day `text` names (YYYY-MM-DD); a parser error naming `option` otherwise."""
    if text is None:
        return None
    try:
        if DAY_FORMAT.fullmatch(text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    parser.error(f"{option} {text} is not a day (YYYY-MM-DD)")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(prog="python -m tools.report", description=__doc__.split("\n")[0])
    parser.add_argument("--date", required=True, help="UTC day YYYY-MM-DD")
    parser.add_argument("--to-date", help="last day (default: --date)")
    parser.add_argument("--summary", default=DEFAULT_SUMMARY,
                        help=f"the daily summary table's folder (default {DEFAULT_SUMMARY})")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"where the pages go (default {DEFAULT_OUT})")
    names = parser.add_mutually_exclusive_group()
    names.add_argument("--locations",
                       help="the locations table's folder, for names and positions (default: "
                            f"{DEFAULT_CURATED}/{LOCATIONS_FOLDER} beside the summary's folder, if there)")
    names.add_argument("--configuration",
                       help="a configuration file of the traffic centre (XML or .xml.gz), for "
                            "names and positions instead of the locations table")
    args = parser.parse_args(argv)
    args.date = _day(parser, "--date", args.date)
    args.to_date = _day(parser, "--to-date", args.to_date)
    if args.to_date is not None and args.to_date < args.date:
        parser.error("--to-date is before --date")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    last = args.to_date or args.date
    days = [args.date + dt.timedelta(days=n) for n in range((last - args.date).days + 1)]
    summary = Path(args.summary)
    try:
        rows = summary_rows(summary, days)
        measured = {row["day"] for row in rows}
        unmeasured = [day for day in days if day not in measured]
        if unmeasured == days:
            which = "that day" if len(days) == 1 else "those days"
            raise ReportError(f"no summary rows for {stretches(days)}: {what_is_held(summary)}; "
                              f"run the workflow for {which} first")
        if unmeasured:
            _warn(f"report: no summary rows for {stretches(unmeasured)} ({what_is_held(summary)}): "
                  f"no page for {'it' if len(unmeasured) == 1 else 'them'}")
        if args.configuration:
            names = names_from_configuration(Path(args.configuration))
        elif args.locations:
            names = names_from_locations_table(Path(args.locations))
        else:
            names = names_beside(summary)
        pages = [render_day(rows, day, Path(args.out), names=names) for day in days if day in measured]
    except ReportError as error:
        print(f"report: error: {error}", file=sys.stderr)
        return 1
    for page in pages:
        print(f"pictures of {page.stem.removeprefix('traffic_')}: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
