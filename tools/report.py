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
"""

from __future__ import annotations

import argparse
import datetime as dt
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


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.report", description=__doc__.split("\n")[0])
    parser.add_argument("--date", required=True, type=dt.date.fromisoformat, help="UTC day YYYY-MM-DD")
    parser.add_argument("--to-date", type=dt.date.fromisoformat, help="last day (default: --date)")
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    last = args.to_date or args.date
    if last < args.date:
        print("report: error: --to-date is before --date", file=sys.stderr)
        return 2
    days = [args.date + dt.timedelta(days=n) for n in range((last - args.date).days + 1)]
    try:
        names = None
        if args.configuration:
            names = names_from_configuration(Path(args.configuration))
        elif args.locations:
            names = names_from_locations_table(Path(args.locations))
        pages = render_days(Path(args.summary), days, Path(args.out), names)
    except ReportError as error:
        print(f"report: error: {error}", file=sys.stderr)
        return 1
    for page in pages:
        print(f"pictures of {page.stem.removeprefix('traffic_')}: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
