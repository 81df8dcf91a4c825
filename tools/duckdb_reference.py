"""An independent implementation of the curated transform in DuckDB SQL.

Written from `docs/SEMANTICS.md` only, without
looking at the Spark job, so that the parity tests compare two readings of the
specification. The transform itself is SQL in `tools/sql/` (`athena.sql`,
`corrected.sql`, written like the original Athena `INSERT INTO ... SELECT`); this
module finds the processing-hour folders a run reads, types the raw values
(Parquet as typed, or JSON lines where any value may be a string), sets the run's
time range and runs the SQL.

`corrected` takes its locations from the traffic centre's configuration feed
(`mivconfig`, issue 18), given as `configuration`: one `.xml` or `.xml.gz` file, in
force for every reading, or a folder of dated snapshots
`*-YYYY-MM-DD[THHMMSSZ].xml[.gz]` (UTC), each in force from its time until the next
one's, the earliest also for every earlier reading. This module only reads the XML
(the standard library's parser) into text columns; the lane groups, location keys and
ids, the snapshots' spans and the join of readings to locations are SQL
(`tools/sql/configuration.sql`, which states the rule). In short: a lane's location is
`road|point|group` (its `Ident_8`, its reference point in metres or its coordinates,
and its lane group: `main` for R10 and up and S, `merge` for R09 and below, the
letters for other kinds, `unknown`), its id the key's SHA-256's first 31 bits; a `TR`
(wrong-way) lane's readings are left out as `wrong_way_lane`; a lane that no snapshot
in force holds is a location of its own, `-unieke_id`. Without a configuration every
lane is. Duplicates are resolved per (unieke_id, tijd_waarneming). `athena` is
unchanged (lve_nr groups, MAX(unieke_id) ids) and ignores the configuration.

`locations(configuration)` gives the locations a configuration defines, per snapshot
(key parts and lanes), and `unconfigured_lanes` the lanes of a run that none holds:
the parity tests hold the job's locations table to them. `reading_counts` counts a
run's readings per status (docs/SEMANTICS.md, "Step 1 and 2"), as the job's run
report does.

    python -m tools.duckdb_reference --raw DIR --start-date 2020-04-07 \
        --end-date 2020-04-07 --semantics corrected \
        --configuration-path tests/fixtures/network/miv-config-2017-05-18.xml.gz --out DIR
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import re
import shutil
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

try:
    from traffic_glue.compute import schema
except ImportError:  # run as `python -m tools.duckdb_reference` from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "glue_jobs"))
    from traffic_glue.compute import schema

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


# --- the configuration (issue 18: the locations of `corrected`) -------------------------

CONFIGURATION_ROOT = "mivconfig"
CONFIGURED_LANE = "meetpunt"
# The elements of a `meetpunt` the locations read, by the column configuration.sql
# expects them in.
_CONFIGURATION_ELEMENTS = {
    "beschrijvende_id": "beschrijvende_id",
    "volledige_naam": "volledige_naam",
    "ident_8": "Ident_8",
    "lve_nr": "lve_nr",
    "kmp_rsys": "Kmp_Rsys",
    "rijstrook": "Rijstrook",
    "lengtegraad": "lengtegraad_EPSG_4326",
    "breedtegraad": "breedtegraad_EPSG_4326",
}
CONFIGURATION_COLUMNS = ("configuration", "snapshot_time", "unieke_id", *_CONFIGURATION_ELEMENTS)
_SNAPSHOT_NAME = re.compile(r"(?:^|-)(\d{4}-\d{2}-\d{2})(?:T(\d{2})(\d{2})(\d{2})Z)?\.xml(?:\.gz)?$")
_XML_NAME = re.compile(r"\.xml(?:\.gz)?$")
_CONFIGURATION_SCHEMA = pa.schema([(name, pa.int64() if name == "snapshot_time" else pa.string())
                                   for name in CONFIGURATION_COLUMNS])


def _text(element) -> str | None:
    if element is None or element.text is None or not element.text.strip():
        return None
    return element.text.strip()


def _configuration_lanes(path: Path, snapshot_time: int | None) -> tuple[dict, ...]:
    """`_parsed_lanes` of the file as it is now: parsed once per content (a test suite
    or a benchmark asks for the same 4,254-lane documents again and again)."""
    status = path.stat()
    return _parsed_lanes(path, status.st_mtime_ns, status.st_size, snapshot_time)


@functools.lru_cache(maxsize=16)
def _parsed_lanes(path: Path, _mtime_ns: int, _size: int, snapshot_time: int | None) -> tuple[dict, ...]:
    """The lanes of one `mivconfig` document as text, one dict per `meetpunt`.

    The standard library's parser, not the job's (defusedxml): the reference reads the
    tests' and a developer's own files, and expat refuses the entity-expansion bombs
    itself; refusing hostile documents is the job's to test."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise ValueError(f"{path}: not well-formed XML ({error})") from None
    if root.tag != CONFIGURATION_ROOT:
        raise ValueError(f"{path}: its root is <{root.tag}>, not <{CONFIGURATION_ROOT}>")
    lanes = []
    for point in root.iter(CONFIGURED_LANE):
        lane_id = point.get("unieke_id")
        lanes.append({
            "configuration": path.name, "snapshot_time": snapshot_time,
            "unieke_id": lane_id.strip() if lane_id and lane_id.strip() else None,
            **{column: _text(point.find(tag)) for column, tag in _CONFIGURATION_ELEMENTS.items()},
        })
    if not lanes:
        raise ValueError(f"{path}: a <{CONFIGURATION_ROOT}> without any <{CONFIGURED_LANE}>")
    return tuple(lanes)


def _snapshot_time(path: Path) -> int:
    """Epoch seconds from a snapshot's name: `...-2017-05-18.xml.gz` is 00:00 UTC that
    day, `...-2017-05-18T094100Z.xml.gz` that second."""
    match = _SNAPSHOT_NAME.search(path.name)
    if not match:
        raise ValueError(f"{path}: a snapshot's name must end in -YYYY-MM-DD[THHMMSSZ].xml[.gz]")
    day, hour, minute, second = match.groups()
    moment = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
    return _epoch(moment + timedelta(hours=int(hour or 0), minutes=int(minute or 0),
                                     seconds=int(second or 0)))


def read_configuration(configuration: str | os.PathLike) -> pa.Table:
    """The lanes of a configuration (a file, or a folder of dated snapshots), as the
    text table `configuration_source` of tools/sql/configuration.sql."""
    path = Path(configuration)
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and _XML_NAME.search(p.name) and not p.name.startswith((".", "_")))
        if not files:
            raise ValueError(f"{path}: no configuration snapshot (*-YYYY-MM-DD[THHMMSSZ].xml[.gz])")
        times = {}
        for file in files:
            times.setdefault(_snapshot_time(file), []).append(file.name)
        clashes = [names for names in times.values() if len(names) > 1]
        if clashes:
            raise ValueError(f"{path}: snapshots {clashes[0]} come into force at the same time")
        rows = [lane for file in files for lane in _configuration_lanes(file, _snapshot_time(file))]
    elif path.is_file():
        rows = list(_configuration_lanes(path, None))
    else:
        raise ValueError(f"{path}: no such configuration file or folder")
    return pa.Table.from_pylist(rows, schema=_CONFIGURATION_SCHEMA)


def _load_configuration(con, configuration: str | os.PathLike | None) -> None:
    """The views of tools/sql/configuration.sql over the configuration (none: every
    lane is a location of its own). Refuses values that do not parse, a lane twice in
    one snapshot and two locations with one id."""
    source = (read_configuration(configuration) if configuration is not None
              else _CONFIGURATION_SCHEMA.empty_table())
    con.register("configuration_arrow", source)
    con.execute("CREATE OR REPLACE TEMP TABLE configuration_source AS SELECT * FROM configuration_arrow")
    con.unregister("configuration_arrow")
    con.execute(_sql("configuration.sql"))
    problem = con.execute("""
        SELECT 'a lane (unieke_id ' || COALESCE(CAST(unieke_id AS VARCHAR), 'missing')
               || ') of ' || configuration || ' has a value that does not parse'
        FROM configured_lanes WHERE unparsable OR unieke_id IS NULL
        UNION ALL
        SELECT 'unieke_id ' || unieke_id || ' is configured twice in ' || configuration
        FROM configured_lanes GROUP BY configuration, unieke_id HAVING count(*) > 1
        UNION ALL
        SELECT 'locations ' || string_agg(DISTINCT location_key, ' and ') || ' have one id ' || location_id
        FROM configured_lanes WHERE location_key IS NOT NULL
        GROUP BY location_id HAVING count(DISTINCT location_key) > 1
        LIMIT 1
    """).fetchone()
    if problem:
        raise ValueError(f"configuration {configuration}: {problem[0]}")


# Per location and snapshot; a snapshot's validity as the locations table states it:
# from its own time (NULL: a single file) to the next snapshot's (NULL: open). The
# earliest is also in force before its time (configuration_spans), which the table
# does not repeat.
_LOCATIONS_SQL = """
WITH snapshots AS (
    SELECT
        configuration,
        snapshot_time AS valid_from,
        LEAD(snapshot_time) OVER (ORDER BY snapshot_time) AS valid_to
    FROM (SELECT DISTINCT configuration, snapshot_time FROM configuration_source)
    WHERE configuration IN (SELECT UNNEST(getvariable('snapshots_used')))
)
SELECT
    lanes.location_id,
    ANY_VALUE(lanes.location_key) AS key,
    ANY_VALUE(lanes.road) AS road,
    ANY_VALUE(lanes.point) AS point,
    ANY_VALUE(lanes.lane_group) AS lane_group,
    list(lanes.unieke_id ORDER BY lanes.unieke_id) AS lanes,
    snapshots.valid_from,
    snapshots.valid_to,
    lanes.configuration
FROM configured_lanes AS lanes
JOIN snapshots USING (configuration)
WHERE lanes.location_key IS NOT NULL
GROUP BY lanes.location_id, lanes.configuration, snapshots.valid_from, snapshots.valid_to
ORDER BY lanes.location_id, snapshots.valid_from NULLS FIRST
"""


def locations(configuration: str | os.PathLike, start_date: date | None = None,
              end_date: date | None = None, lookback_minutes: int = 60) -> list[dict]:
    """The locations a configuration defines, one dict per location and snapshot,
    sorted by (location_id, valid_from): location_id, key (`road|point|group`), road,
    point, lane_group, lanes (the sorted unieke_id of its lanes), valid_from and
    valid_to (epoch seconds: the snapshot's time, None for a single file; the next
    snapshot's time, None for the last) and configuration (the snapshot's file name).
    Wrong-way lanes are no location's.

    With `start_date` and `end_date`, only the snapshots a run over those days uses,
    those in force at some time of its context range (docs/SEMANTICS.md, "The
    configuration"): the last of them is then open (valid_to None), as a run that does
    not read the next snapshot records it."""
    con = duckdb.connect()
    try:
        con.execute(_sql("macros.sql"))
        con.execute("CREATE OR REPLACE TEMP VIEW readings AS "
                    "SELECT CAST(NULL AS INTEGER) AS unieke_id, CAST(NULL AS BIGINT) AS tijd_waarneming "
                    "WHERE false")
        _load_configuration(con, configuration)
        used = "SELECT configuration FROM configuration_spans"
        if start_date is not None:
            ranges = run_ranges(start_date, end_date or start_date, lookback_minutes, 0)
            used += (f" WHERE (valid_to IS NULL OR valid_to > {ranges['context_start']})"
                     f" AND (valid_from IS NULL OR valid_from < {ranges['output_end']})")
        con.execute(f"SET VARIABLE snapshots_used = (SELECT list(configuration) FROM ({used}))")
        return con.sql(_LOCATIONS_SQL).to_arrow_table().to_pylist()
    finally:
        con.close()


# The lanes of a run's kept readings that no snapshot in force held (each a location
# -unieke_id of its own), and how many kept readings they have: the run report's
# `readings.unconfigured`. Duplicates do not change which lanes; `readings` counts one
# per (unieke_id, tijd_waarneming).
_UNCONFIGURED_SQL = """
SELECT
    count(DISTINCT (unieke_id, tijd_waarneming)) AS readings,
    list(DISTINCT unieke_id ORDER BY unieke_id) FILTER (WHERE unieke_id IS NOT NULL) AS lanes
FROM located_readings
WHERE reject_reason IS NULL
  AND tijd_waarneming >= getvariable('context_start')
  AND tijd_waarneming < getvariable('output_end')
  AND rekendata_bezettingsgraad > -1
  AND defect = 0
  AND NOT wrong_way_lane
  AND location_id < 0
"""


def unconfigured_lanes(raw_root: str, start_date: date, end_date: date, source_format: str = "parquet",
                       lookback_minutes: int = 60, late_hours: int = 24,
                       configuration: str | os.PathLike | None = None) -> dict:
    """`corrected`: {"readings": kept readings of lanes no snapshot in force held,
    "lanes": those lanes' unieke_id, sorted}."""
    con, _ = _prepare(raw_root, start_date, end_date, "corrected", source_format,
                      lookback_minutes, late_hours, None, None, configuration)
    try:
        readings, lanes = con.execute(_UNCONFIGURED_SQL).fetchone()
        return {"readings": int(readings), "lanes": list(lanes or [])}
    finally:
        con.close()


# --- the run ------------------------------------------------------------------------

def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


def _prepare(raw_root, start_date, end_date, semantics, source_format, lookback_minutes,
             late_hours, locations, threads, configuration=None):
    """A connection holding the run's views and variables, and the query of its rows.
    `configuration` gives `corrected` its locations; `athena` does not read it."""
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
    _load_configuration(con, configuration if semantics == "corrected" else None)

    query = _sql(f"{semantics}.sql")
    if locations is not None:
        wanted = ", ".join(str(int(location)) for location in locations)
        con.execute(f"SET VARIABLE locations = CAST([{wanted}] AS INTEGER[])")
        query = (f"SELECT * FROM (\n{query}\n) AS curated "
                 f"WHERE list_contains(getvariable('locations'), uniqueid)")
    return con, query


def curated_rows(raw_root: str, start_date: date, end_date: date, semantics: str = "corrected",
                 source_format: str = "parquet", lookback_minutes: int = 60, late_hours: int = 24,
                 locations: Sequence[int] | None = None, threads: int | None = None,
                 configuration: str | os.PathLike | None = None) -> pa.Table:
    """The curated rows of a run over event-time days [start_date, end_date], with the
    partition columns year, month, day, hour; sorted by uniqueid, recordtimestamp.
    `configuration`: the job's `--configuration_path` (a file or a folder of snapshots);
    without it every lane of `corrected` is a location of its own (-unieke_id)."""
    con, query = _prepare(raw_root, start_date, end_date, semantics, source_format,
                          lookback_minutes, late_hours, locations, threads, configuration)
    try:
        table = con.sql(f"SELECT * FROM (\n{query}\n) AS curated "
                        f"ORDER BY uniqueid, recordtimestamp").to_arrow_table()
    finally:
        con.close()
    return table.cast(CURATED_ARROW_SCHEMA)


# Each reading of the folders read counted once, by the first rule that applies
# (docs/SEMANTICS.md, "Step 1 and 2"). A JSON line that is not an object reads here as
# a row of NULLs, so `malformed_record` is counted as `bad_tijd_waarneming` (or not at
# all, where DuckDB skips the line). Readings that pass every rule before `duplicate`
# are candidates; in `corrected` each (unieke_id, tijd_waarneming) keeps one of them,
# the others are duplicates, whichever reading wins.
_READING_COUNTS_SQL = """
WITH judged AS (
    SELECT
        unieke_id,
        tijd_waarneming,
        CASE
            WHEN reject_reason = 'bad_tijd_waarneming' THEN reject_reason
            WHEN tijd_waarneming < getvariable('context_start')
              OR tijd_waarneming >= getvariable('output_end') THEN 'outside_days'
            WHEN reject_reason IS NOT NULL THEN reject_reason
            WHEN defect IS DISTINCT FROM 0 THEN 'defect'
            WHEN NOT COALESCE(rekendata_bezettingsgraad > -1, FALSE) THEN 'unknown_occupancy'
            WHEN wrong_way_lane AND {corrected} THEN 'wrong_way_lane'
        END AS status
    FROM located_readings
)
SELECT status, count(*) AS readings FROM judged WHERE status IS NOT NULL GROUP BY status
UNION ALL
SELECT 'kept', CASE WHEN {corrected} THEN count(DISTINCT (unieke_id, tijd_waarneming)) ELSE count(*) END
FROM judged WHERE status IS NULL
UNION ALL
SELECT 'duplicate', count(*) - count(DISTINCT (unieke_id, tijd_waarneming))
FROM judged WHERE status IS NULL AND {corrected}
"""


def reading_counts(raw_root: str, start_date: date, end_date: date, semantics: str = "corrected",
                   source_format: str = "parquet", lookback_minutes: int = 60, late_hours: int = 24,
                   configuration: str | os.PathLike | None = None) -> dict[str, int]:
    """The run's readings per status, as the run report counts them (`kept`, the
    left-out rules and the reject reasons): only statuses with readings."""
    con, _ = _prepare(raw_root, start_date, end_date, semantics, source_format,
                      lookback_minutes, late_hours, None, None, configuration)
    try:
        query = _READING_COUNTS_SQL.format(corrected="TRUE" if semantics == "corrected" else "FALSE")
        return {status: int(n) for status, n in con.execute(query).fetchall() if n}
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
                  locations: Sequence[int] | None = None, threads: int | None = None,
                  configuration: str | os.PathLike | None = None) -> dict:
    """The same rows written as snappy Parquet under
    `<target_root>/year=Y/month=M/day=D/hour=H/` (unpadded), replacing exactly the
    run's days. Returns {"rows": rows written, "seconds": wall time of the run}."""
    started = time.perf_counter()
    con, query = _prepare(raw_root, start_date, end_date, semantics, source_format,
                          lookback_minutes, late_hours, locations, threads, configuration)
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
    parser.add_argument("--configuration-path",
                        help="corrected: the configuration (mivconfig), a .xml[.gz] file or a "
                             "folder of dated snapshots; without it every lane is its own location")
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
                           locations=args.locations, threads=args.threads,
                           configuration=args.configuration_path)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
