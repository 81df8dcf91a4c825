"""An independent implementation of the curated transform in DuckDB SQL.

Written from `docs/SEMANTICS.md` only, without
looking at the Spark job, so that the parity tests compare two readings of the
specification. The transform itself is SQL in `tools/sql/` (`athena.sql`,
`corrected.sql`, written like the original Athena `INSERT INTO ... SELECT`); this
module finds the processing-hour folders a run reads, types the raw values
(Parquet as typed, or JSON lines where any value may be a string), sets the run's
time range and runs the SQL. `seen_lanes` gives the lanes a run records in the
locations table (docs/SEMANTICS.md, "The locations table").

    python -m tools.duckdb_reference --raw DIR --start-date 2020-04-07 \
        --end-date 2020-04-07 --semantics athena --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

try:
    from traffic_glue import schema
except ImportError:  # run as `python -m tools.duckdb_reference` from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "glue_jobs"))
    from traffic_glue import schema

SQL_DIR = Path(__file__).resolve().parent / "sql"
SEMANTICS = ("athena", "corrected")
SOURCE_FORMATS = ("parquet", "json")
# The 20-minute window of `corrected` looks back 1140 s.
MIN_CORRECTED_LOOKBACK_MINUTES = 20

_DUCKDB_TYPES = {"IntegerType": "INTEGER", "LongType": "BIGINT", "StringType": "VARCHAR",
                 "DoubleType": "DOUBLE"}
_ARROW_TYPES = {"IntegerType": pa.int32(), "LongType": pa.int64(), "DoubleType": pa.float64()}

CURATED_ARROW_SCHEMA = pa.schema(
    [pa.field(f.name, _ARROW_TYPES[type(f.dataType).__name__])
     for f in schema.CURATED_TABLE_SCHEMA.fields]
)

# The raw columns the transform reads, with the type readings.sql expects.
_READ_COLUMNS = {
    schema.LANE_NAME: "VARCHAR",
    schema.LANE_ID: "INTEGER",
    schema.UNIT_ID: "INTEGER",
    schema.OBSERVED_AT: "BIGINT",
    schema.MODIFIED_AT: "TIMESTAMPTZ",
    schema.DEFECT: "INTEGER",
    schema.OCCUPANCY: "INTEGER",
    **{schema.intensity(k): "INTEGER" for k in schema.COUNTED_CLASSES},
    **{schema.arithmetic_speed(k): "INTEGER" for k in schema.COUNTED_CLASSES},
}
_MODIFIED_AT_TEXT = schema.MODIFIED_AT + "_text"


# --- the run's ranges (docs/SEMANTICS.md, "The run's time ranges") ----------------

def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def run_ranges(start_date: date, end_date: date, lookback_minutes: int, late_hours: int) -> dict:
    """Epoch seconds of the output and context ranges and of the folders read."""
    output_start = _midnight(start_date)
    output_end = _midnight(end_date + timedelta(days=1))
    context_start = output_start - timedelta(minutes=lookback_minutes)
    return {
        "output_start": _epoch(output_start),
        "output_end": _epoch(output_end),
        "context_start": _epoch(context_start),
        "first_folder_hour": _epoch(context_start.replace(minute=0, second=0, microsecond=0)),
        "folders_end": _epoch(output_end + timedelta(hours=late_hours)),
    }


def _check_arguments(start_date, end_date, semantics, source_format, lookback_minutes, late_hours):
    if semantics not in SEMANTICS:
        raise ValueError(f"semantics must be one of {SEMANTICS}, not {semantics!r}")
    if source_format not in SOURCE_FORMATS:
        raise ValueError(f"source_format must be one of {SOURCE_FORMATS}, not {source_format!r}")
    if end_date < start_date:
        raise ValueError(f"end_date {end_date} is before start_date {start_date}")
    if late_hours < 0:
        raise ValueError(f"late_hours must be >= 0, not {late_hours}")
    minimum = MIN_CORRECTED_LOOKBACK_MINUTES if semantics == "corrected" else 0
    if lookback_minutes < minimum:
        raise ValueError(f"lookback_minutes must be >= {minimum} in {semantics}, not {lookback_minutes}")


# --- the files read ---------------------------------------------------------------

def _partition_value(name: str, key: str) -> int | None:
    prefix = key + "="
    if not name.startswith(prefix):
        return None
    try:
        return int(name[len(prefix):])
    except ValueError:
        return None


def _subfolders(folder: Path, key: str):
    with os.scandir(folder) as entries:
        for entry in entries:
            value = _partition_value(entry.name, key)
            if value is not None and entry.is_dir():
                yield value, Path(entry.path)


def raw_files(raw_root: str | os.PathLike, first_hour: int, end_hour: int) -> list[str]:
    """Files in `<root>/year=/month=/day=/hour=` folders whose hour starts in
    [first_hour, end_hour) (epoch seconds), sorted; hidden files (`.`, `_`) skipped."""
    root = Path(raw_root)
    if not root.is_dir():
        return []
    first_day = datetime.fromtimestamp(first_hour, timezone.utc).date()
    last_day = datetime.fromtimestamp(end_hour - 1, timezone.utc).date()
    files = []
    for year, year_dir in _subfolders(root, "year"):
        if not first_day.year <= year <= last_day.year:
            continue
        for month, month_dir in _subfolders(year_dir, "month"):
            for day, day_dir in _subfolders(month_dir, "day"):
                try:
                    folder_day = date(year, month, day)
                except ValueError:
                    continue
                if not first_day <= folder_day <= last_day:
                    continue
                for hour, hour_dir in _subfolders(day_dir, "hour"):
                    if not 0 <= hour <= 23:
                        continue
                    start = _epoch(_midnight(folder_day) + timedelta(hours=hour))
                    if not first_hour <= start < end_hour:
                        continue
                    with os.scandir(hour_dir) as entries:
                        files.extend(e.path for e in entries
                                     if e.is_file() and not e.name.startswith((".", "_")))
    return sorted(files)


# --- typing the raw values -----------------------------------------------------------

def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _create_raw_source(con, files: list[str], source_format: str) -> None:
    """View `raw_source`: the raw files as read (Parquet typed, JSON all VARCHAR)."""
    if source_format == "json":
        columns = {name: "VARCHAR" for name in schema.RAW_COLUMNS}
        if files:
            spec = "{" + ", ".join(f"'{n}': '{t}'" for n, t in columns.items()) + "}"
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW raw_source AS SELECT * FROM read_json("
                f"{_sql_list(files)}, format = 'newline_delimited', columns = {spec}, "
                f"ignore_errors = true, hive_partitioning = false)"
            )
            return
    else:
        columns = {f.name: _DUCKDB_TYPES[type(f.dataType).__name__] for f in schema.RAW_SCHEMA.fields}
        if files:
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW raw_source AS SELECT * FROM read_parquet("
                f"{_sql_list(files)}, union_by_name = true, hive_partitioning = false)"
            )
            return
    # No file in the folders read: an empty source, so the run gives an empty table.
    select = ", ".join(f'CAST(NULL AS {t}) AS "{n}"' for n, t in columns.items())
    con.execute(f"CREATE OR REPLACE TEMP VIEW raw_source AS SELECT {select} WHERE false")


def _typed(column: str, source_type: str, target_type: str) -> str:
    """SQL turning a raw column as read into the type readings.sql expects (NULL when
    it does not parse)."""
    quoted = f'"{column}"'
    if target_type == "VARCHAR":
        return f"CAST({quoted} AS VARCHAR)"  # text as it came (beschrijvende_id)
    if source_type != "VARCHAR" and not source_type.startswith("TIMESTAMP"):
        # numbers as typed in Parquet; anything else (a DOUBLE, ...) as its text
        if source_type in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                           "USMALLINT", "UINTEGER", "UBIGINT") and target_type != "TIMESTAMPTZ":
            return f"TRY_CAST({quoted} AS {target_type})"
        quoted = f"TRY_CAST({quoted} AS VARCHAR)"
    elif source_type.startswith("TIMESTAMP"):
        if target_type == "TIMESTAMPTZ":
            return f"CAST({quoted} AS TIMESTAMPTZ)"
        if target_type == "BIGINT":
            return f"CAST(floor(epoch(CAST({quoted} AS TIMESTAMPTZ))) AS BIGINT)"
        quoted = f"CAST({quoted} AS VARCHAR)"
    parse = {"INTEGER": "text_integer", "BIGINT": "text_epoch_seconds",
             "TIMESTAMPTZ": "iso_instant"}[target_type]
    return f"{parse}({quoted})"


def _create_raw_readings(con, semantics: str) -> None:
    """View `raw_readings`: the columns the transform reads, typed. A column missing
    from every file reads as NULL, unless the run cannot do without it."""
    source_types = {name: typ for name, typ in
                    con.execute("SELECT column_name, column_type FROM (DESCRIBE raw_source)").fetchall()}
    essential = schema.ESSENTIAL_COLUMNS
    if semantics == "corrected":
        essential += schema.ESSENTIAL_FOR_DEDUPLICATION
    missing = [c for c in essential if c not in source_types]
    if missing:
        raise ValueError(f"the raw files lack the essential columns {missing}")
    selects = []
    for column, target_type in _READ_COLUMNS.items():
        if column not in source_types:
            selects.append(f'CAST(NULL AS {target_type}) AS "{column}"')
        else:
            selects.append(f'{_typed(column, source_types[column], target_type)} AS "{column}"')
    if schema.MODIFIED_AT in source_types:
        selects.append(f'CAST("{schema.MODIFIED_AT}" AS VARCHAR) AS "{_MODIFIED_AT_TEXT}"')
    else:
        selects.append(f'CAST(NULL AS VARCHAR) AS "{_MODIFIED_AT_TEXT}"')
    con.execute("CREATE OR REPLACE TEMP VIEW raw_readings AS SELECT "
                + ",\n    ".join(selects) + " FROM raw_source")


# --- the run ------------------------------------------------------------------------

def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


def _prepare(raw_root, start_date, end_date, semantics, source_format, lookback_minutes,
             late_hours, locations, threads):
    """A connection holding the run's views and variables, and the query of its rows."""
    _check_arguments(start_date, end_date, semantics, source_format, lookback_minutes, late_hours)
    ranges = run_ranges(start_date, end_date, lookback_minutes, late_hours)
    files = raw_files(raw_root, ranges["first_folder_hour"], ranges["folders_end"])

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for name in ("context_start", "output_start", "output_end"):
        con.execute(f"SET VARIABLE {name} = CAST({int(ranges[name])} AS BIGINT)")
    con.execute(_sql("macros.sql"))
    _create_raw_source(con, files, source_format)
    _create_raw_readings(con, semantics)
    con.execute(_sql("readings.sql"))

    query = _sql(f"{semantics}.sql")
    if locations is not None:
        wanted = ", ".join(str(int(location)) for location in locations)
        con.execute(f"SET VARIABLE locations = CAST([{wanted}] AS INTEGER[])")
        query = (f"SELECT * FROM (\n{query}\n) AS curated "
                 f"WHERE list_contains(getvariable('locations'), uniqueid)")
    return con, query


def curated_rows(raw_root: str, start_date: date, end_date: date, semantics: str = "corrected",
                 source_format: str = "parquet", lookback_minutes: int = 60, late_hours: int = 24,
                 locations: Sequence[int] | None = None, threads: int | None = None) -> pa.Table:
    """The curated rows of a run over event-time days [start_date, end_date], with the
    partition columns year, month, day, hour; sorted by uniqueid, recordtimestamp."""
    con, query = _prepare(raw_root, start_date, end_date, semantics, source_format,
                          lookback_minutes, late_hours, locations, threads)
    try:
        table = con.sql(f"SELECT * FROM (\n{query}\n) AS curated "
                        f"ORDER BY uniqueid, recordtimestamp").to_arrow_table()
    finally:
        con.close()
    return table.cast(CURATED_ARROW_SCHEMA)


# The lanes of the run's days, one row per (lve_nr, unieke_id): every reading of those
# days whose lane and section are integers, whatever else it holds; the name is that of
# the latest reading carrying one (ties: the largest).
_SEEN_LANES_SQL = """
WITH seen AS (
    SELECT lve_nr, unieke_id, tijd_waarneming, beschrijvende_id
    FROM readings
    WHERE lve_nr IS NOT NULL AND unieke_id IS NOT NULL
      AND tijd_waarneming >= getvariable('output_start')
      AND tijd_waarneming < getvariable('output_end')
),
named AS (
    SELECT lve_nr, unieke_id, beschrijvende_id
    FROM seen
    QUALIFY ROW_NUMBER() OVER (
        PARTITION BY lve_nr, unieke_id
        ORDER BY beschrijvende_id IS NOT NULL DESC, tijd_waarneming DESC, beschrijvende_id DESC
    ) = 1
)
SELECT
    seen.lve_nr,
    seen.unieke_id,
    ANY_VALUE(named.beschrijvende_id) AS beschrijvende_id,
    make_timestamp(MIN(seen.tijd_waarneming) * 1000000) AS first_seen,
    make_timestamp(MAX(seen.tijd_waarneming) * 1000000) AS last_seen
FROM seen
JOIN named USING (lve_nr, unieke_id)
GROUP BY seen.lve_nr, seen.unieke_id
"""


def seen_lanes(raw_root: str, start_date: date, end_date: date, semantics: str = "corrected",
               source_format: str = "parquet", lookback_minutes: int = 60, late_hours: int = 24,
               locations: Sequence[int] | None = None) -> list[dict]:
    """The lanes a run over [start_date, end_date] records in the locations table, sorted
    by (lve_nr, unieke_id): dicts of lve_nr, unieke_id, beschrijvende_id, first_seen,
    last_seen (naive UTC datetimes). With `locations`, only the sections whose rows the
    run replaces: `corrected` ids are lve_nr; `athena` ids are lane ids, so the sections
    holding such a lane."""
    con, _ = _prepare(raw_root, start_date, end_date, semantics, source_format,
                      lookback_minutes, late_hours, None, None)
    query = _SEEN_LANES_SQL
    if locations is not None:
        wanted = ", ".join(str(int(location)) for location in locations)
        if semantics == "corrected":
            chosen = f"lve_nr IN ({wanted})"
        else:
            chosen = f"lve_nr IN (SELECT lve_nr FROM ({query}) WHERE unieke_id IN ({wanted}))"
        query = f"SELECT * FROM ({query}) WHERE {chosen}"
    try:
        return con.sql(f"SELECT * FROM ({query}) ORDER BY lve_nr, unieke_id").to_arrow_table().to_pylist()
    finally:
        con.close()


def _day_partitions(target_root: Path, start_date: date, end_date: date):
    day = start_date
    while day <= end_date:
        yield target_root / f"year={day.year}" / f"month={day.month}" / f"day={day.day}"
        day += timedelta(days=1)


def write_curated(raw_root: str, target_root: str, start_date: date, end_date: date,
                  semantics: str = "athena", source_format: str = "parquet",
                  lookback_minutes: int = 60, late_hours: int = 24,
                  locations: Sequence[int] | None = None, threads: int | None = None) -> dict:
    """The same rows written as snappy Parquet under
    `<target_root>/year=Y/month=M/day=D/hour=H/` (unpadded), replacing exactly the
    run's days. Returns {"rows": rows written, "seconds": wall time of the run}."""
    started = time.perf_counter()
    con, query = _prepare(raw_root, start_date, end_date, semantics, source_format,
                          lookback_minutes, late_hours, locations, threads)
    target = Path(target_root)
    try:
        for partition in _day_partitions(target, start_date, end_date):
            shutil.rmtree(partition, ignore_errors=True)
        target.mkdir(parents=True, exist_ok=True)
        target_sql = str(target).replace("'", "''")
        written = con.execute(
            f"COPY (\n{query}\n) TO '{target_sql}' (FORMAT parquet, COMPRESSION snappy, "
            f"PARTITION_BY ({', '.join(schema.EVENT_PARTITIONS)}), OVERWRITE_OR_IGNORE, "
            f"FILENAME_PATTERN 'part-{{uuid}}')"
        ).fetchone()[0]
    finally:
        con.close()
    return {"rows": int(written), "seconds": time.perf_counter() - started}


# --- command line ----------------------------------------------------------------------

def _parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.duckdb_reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", required=True, help="raw root (Firehose layout)")
    parser.add_argument("--start-date", required=True, type=date.fromisoformat)
    parser.add_argument("--end-date", type=date.fromisoformat, help="default: --start-date")
    parser.add_argument("--semantics", choices=SEMANTICS, default="corrected")
    parser.add_argument("--source-format", choices=SOURCE_FORMATS, default="parquet")
    parser.add_argument("--lookback-minutes", type=int, default=60)
    parser.add_argument("--late-hours", type=int, default=24)
    parser.add_argument("--locations", type=lambda s: [int(v) for v in s.split(",") if v.strip()],
                        help="comma-separated uniqueids")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", required=True, help="curated root to write")
    args = parser.parse_args(argv)
    args.end_date = args.end_date or args.start_date
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    result = write_curated(args.raw, args.out, args.start_date, args.end_date,
                           semantics=args.semantics, source_format=args.source_format,
                           lookback_minutes=args.lookback_minutes, late_hours=args.late_hours,
                           locations=args.locations, threads=args.threads)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
