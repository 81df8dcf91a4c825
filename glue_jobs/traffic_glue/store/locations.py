"""The locations table: what each `corrected` location id stands for, per configuration
version (docs/SEMANTICS.md, "The locations table").

A `corrected` row's `uniqueid` is its location's id: one carriageway at one point of
the configuration (`configuration.locations_of`), or `-unieke_id` for a lane the
configuration does not hold. This table names them: road, direction, kilometre point,
place, position, lanes, and the configuration snapshot that says so. It is written by
the transform job after the curated table, from the snapshots the run used:

- `rows_of`: the table's rows for the run's snapshots and unconfigured lanes (pure);
- `merge`: the table before the run plus those rows (pure);
- `LocationsStore`: where the table lives (beside the curated table) and how it is
  replaced, through the table seam (`tables`); `record` runs a run's update through it.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from traffic_glue.compute import configuration
from traffic_glue.store import frames, tables
from traffic_glue.compute import schema as S
from traffic_glue.compute.configuration import Snapshot

LOCATION_ID = "location_id"
LABEL = "label"
LANES = "lanes"
VALID_FROM, VALID_TO = "valid_from", "valid_to"
CONFIGURATION = "configuration"
LANE_TYPE = "lane_type"
FOLDER = "_locations"  # beside the curated table's data: invisible to its readers
TABLE_NAME = "locations"  # in the curated table's database

LANE_SCHEMA = T.StructType([
    T.StructField(S.LANE_ID, T.IntegerType()),
    T.StructField(S.LANE_NAME, T.StringType()),
    T.StructField(LANE_TYPE, T.StringType()),
    T.StructField(S.UNIT_ID, T.IntegerType()),
])
# One row per location and configuration version (`valid_from`).
LOCATIONS_SCHEMA = T.StructType([
    S.column(LOCATION_ID, T.IntegerType(),
             "The location's id: the uniqueid of its corrected rows in the curated table; -unieke_id for a lane "
             "not in the configuration"),
    S.column(LABEL, T.StringType(),
             "The location as people read it: 'A14 km 94.7 (Parking Kruibeke), direction 1'; "
             "'lane 957 (not in the configuration)'"),
    S.column("road", T.StringType(), "The road reference (Ident_8), e.g. A0140001"),
    S.column("road_name", T.StringType(),
             "The road as people say it where the reference allows (A14, A14 ramp 9402), else the reference"),
    S.column("direction", T.IntegerType(),
             "1 or 2 for a main carriageway (Ident_8 ending in 0001 / 0002: the road authority's two "
             "directions), else NULL"),
    S.column("lane_group", T.StringType(),
             "main (the carriageway), merge (merging and exit lanes), B (bus), P (hard shoulder), "
             "W (parking or other road), A (hatched area) or unknown"),
    S.column("kilometre_point", T.DoubleType(),
             "The reference point (Kmp_Rsys), km; NULL where the configuration has none"),
    S.column("place", T.StringType(), "The place's name (volledige_naam), the most common among its lanes"),
    S.column("longitude", T.DoubleType(), "WGS 84 longitude: the mean of its lanes' positions, six decimals"),
    S.column("latitude", T.DoubleType(), "WGS 84 latitude: the mean of its lanes' positions, six decimals"),
    S.column(LANES, T.ArrayType(LANE_SCHEMA),
             "Its lanes by unieke_id: unieke_id, beschrijvende_id, lane_type (the configuration's Rijstrook), "
             "lve_nr (the roadside cabinet)"),
    S.column(VALID_FROM, T.TimestampType(),
             "Start of this configuration version: its snapshot's time, UTC; NULL: unbounded (a single "
             "configuration file, or a lane not in the configuration)"),
    S.column(VALID_TO, T.TimestampType(),
             "End of this configuration version (excluded): the next snapshot's time the run read, UTC; "
             "NULL: open"),
    S.column(CONFIGURATION, T.StringType(),
             "The configuration snapshot's file name; NULL for a lane not in the configuration"),
])
_TIMES = (VALID_FROM, VALID_TO)


# --- the computation (plain rows: a few thousand) ---------------------------------------


def _epoch(moment) -> int | None:
    return None if moment is None else int(moment.timestamp())


def unconfigured_label(lane_id: int) -> str:
    return f"lane {lane_id} (not in the configuration)"


def rows_of(snapshots: list[Snapshot], unconfigured_lanes: tuple[int, ...] = ()) -> list[dict]:
    """The table's rows for a run: every location of every snapshot it used, valid from
    the snapshot's time (None: a single file, always) to the next snapshot's (None: the
    latest), times in epoch seconds; and a row per lane it read that no snapshot holds
    (`-unieke_id`, no version)."""
    rows = []
    ordered = sorted(snapshots, key=lambda s: _epoch(s.valid_from) or 0)
    for index, snapshot in enumerate(ordered):
        valid_to = _epoch(ordered[index + 1].valid_from) if index + 1 < len(ordered) else None
        for location in snapshot.locations.values():
            rows.append({
                LOCATION_ID: location.location_id,
                LABEL: location.label,
                "road": location.road,
                "road_name": location.road_name,
                "direction": location.direction,
                "lane_group": location.lane_group,
                "kilometre_point": location.kilometre_point,
                "place": location.place,
                "longitude": location.longitude,
                "latitude": location.latitude,
                LANES: [
                    {S.LANE_ID: lane.lane_id, S.LANE_NAME: lane.lane_name, LANE_TYPE: lane.lane_type,
                     S.UNIT_ID: lane.unit_id}
                    for lane in location.lanes
                ],
                VALID_FROM: _epoch(snapshot.valid_from),
                VALID_TO: valid_to,
                CONFIGURATION: snapshot.name,
            })
    for lane_id in unconfigured_lanes:
        rows.append({
            **{field.name: None for field in LOCATIONS_SCHEMA.fields},
            LOCATION_ID: configuration.unconfigured_location_id(lane_id),
            LABEL: unconfigured_label(lane_id),
            LANES: [{S.LANE_ID: lane_id, S.LANE_NAME: None, LANE_TYPE: None, S.UNIT_ID: None}],
        })
    return rows


def _key(row: dict) -> tuple:
    return row[LOCATION_ID], row[VALID_FROM] if row[VALID_FROM] is not None else -(2**62)


def merge(table: list[dict], run_rows: list[dict]) -> list[dict]:
    """The table after a run: `table` (rows as `rows_of` gives them) plus the run's rows.
    A row of the same location and version replaces the old one, except that a closed
    version stays closed: a run that did not read the next snapshot cannot know its end,
    so of two ends the earlier known one is kept. Merging the same rows again changes
    nothing; the order of runs does not matter."""
    merged = {_key(row): row for row in table}
    for row in run_rows:
        old = merged.get(_key(row))
        ends = [r[VALID_TO] for r in (old, row) if r is not None and r[VALID_TO] is not None]
        merged[_key(row)] = {**row, VALID_TO: min(ends) if ends else None}
    return [merged[key] for key in sorted(merged)]


def changes(before: list[dict], after: list[dict]) -> dict:
    """What the run report says of the table after a run."""
    known = {row[LOCATION_ID] for row in before}
    return {
        "locations": len({row[LOCATION_ID] for row in after}),
        "versions": len(after),
        "new_locations": len({row[LOCATION_ID] for row in after} - known),
        "configurations": sorted({row[CONFIGURATION] for row in after if row[CONFIGURATION]}),
    }


def record(store, run_rows: list[dict]) -> dict:
    """Merge the run's rows (`rows_of`) into the table `store` holds and replace it,
    unless that changes nothing (a rerun of the same days); what the report says of it."""
    before = store.read()
    after = merge(before, run_rows)
    changed = after != before
    if changed:
        store.write(after)
    return {"table": store.name, "changed": changed, **changes(before, after)}


def as_rows(table: DataFrame) -> list[dict]:
    """A table's rows as `rows_of` gives them (times as epoch seconds), sorted."""
    rows = table.select(
        *(F.col(name).cast("long").alias(name) if name in _TIMES else F.col(name)
          for name in LOCATIONS_SCHEMA.fieldNames())
    ).collect()
    return sorted((row.asDict(recursive=True) for row in rows), key=_key)


def as_frame(spark: SparkSession, rows: list[dict]) -> DataFrame:
    """`rows` as a DataFrame of `LOCATIONS_SCHEMA` (its comments too: a `REPLACE TABLE`
    writes them), one partition, in key order."""
    epoch = T.StructType([
        T.StructField(f.name, T.LongType()) if f.name in _TIMES else f for f in LOCATIONS_SCHEMA.fields
    ])
    frame = frames.driver_frame(spark, [tuple(row[name] for name in epoch.fieldNames()) for row in rows], epoch)
    return frame.select(
        *(F.timestamp_seconds(f.name).alias(f.name, metadata=f.metadata) if f.name in _TIMES else F.col(f.name)
          for f in LOCATIONS_SCHEMA.fields)
    )  # one partition: driver_frame's


def label_of(rows: list[dict]) -> dict[int, str]:
    """Each location id's label, from its latest version."""
    return {row[LOCATION_ID]: row[LABEL] for row in sorted(rows, key=_key)}


# --- where the table lives --------------------------------------------------------------


SPEC = tables.TableSpec(kind="the locations table", schema=LOCATIONS_SCHEMA)


class LocationsStore:
    """The table (Iceberg, unpartitioned) at `_locations/` in the curated table's folder:
    `<database>.locations` when the curated table is in a catalog, else a table at that
    folder. Replaced whole by one commit that fails, changing nothing, if another writer
    committed to it since it was read.

    A table of the earlier `lve_nr` rule (columns `lve_nr`, `first_seen`, ...) is
    replaced by a table of this schema in one commit (`REPLACE TABLE`): its rows stay
    readable in the table's history."""

    def __init__(self, spark: SparkSession, run_id: str, curated_table: tables.IcebergTable):
        self.spark, self.run_id = spark, run_id
        folder = f"{curated_table.location.rstrip('/')}/{FOLDER}" if curated_table.location else None
        name = f"{curated_table.identifier.rsplit('.', 1)[0]}.{TABLE_NAME}" if curated_table.in_catalog else None
        self.table = tables.open_table(spark, SPEC, table=name, path=folder)
        self.name = self.table.name
        self._read_snapshot: int | None = None
        self._old_schema = False

    def read(self) -> list[dict]:
        """The table's rows as of its current snapshot (none: no table, or no row yet)."""
        if not self.table.exists():
            return []
        if set(self.table.read().columns) != set(LOCATIONS_SCHEMA.fieldNames()):
            self._old_schema = True
            return []
        self._read_snapshot = self.table.snapshot_id()
        if self._read_snapshot is None:
            return []
        return as_rows(self.table.read(snapshot_id=self._read_snapshot))

    def write(self, rows: list[dict]) -> None:
        properties = tables.snapshot_properties(self.run_id)
        if self._old_schema:
            self.table.replace_schema(as_frame(self.spark, rows), properties)
            return
        self.table.create_if_missing()
        self.table.replace(as_frame(self.spark, rows), properties, self._read_snapshot)


def open_store(spark: SparkSession, run_id: str, curated_table: tables.IcebergTable) -> LocationsStore:
    """The locations table beside `curated_table`."""
    return LocationsStore(spark, run_id, curated_table)
