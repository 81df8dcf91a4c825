"""The locations table: one row per road section (`lve_nr`) with its published id, its
lanes and when each was seen (docs/SEMANTICS.md, "The locations table").

A `corrected` row's `uniqueid` is its section's `lve_nr` (`transforms.with_location_id`),
so no id depends on what a run reads; this table says what each id stands for and how
the section's lanes came and went. It is written by the transform job after the
curated table, from the same run:

- `seen_lanes`: the run's lanes, from the raw readings of its days (a transform);
- `merge`: the table before the run plus the run's lanes (a transform);
- `IcebergLocations`, `ParquetLocations`: where the table lives and how it is replaced,
  one class per table format, as `sinks` has for the curated table; `record` runs a
  run's update through either.
"""

from __future__ import annotations

import json

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from traffic_glue import iceberg, publish, storage
from traffic_glue import schema as S
from traffic_glue.config import CORRECTED, ICEBERG
from traffic_glue.sinks import RUN_ID
# The raw columns are typed as validation types them, so that a lane's time and ids
# mean here what they mean to the curated rows (`typed_readings` drops
# `beschrijvende_id`, which only this table needs).
from traffic_glue.validation import as_epoch_seconds, as_int

LOCATION_ID = "location_id"
LANES = "lanes"
FIRST_SEEN, LAST_SEEN = "first_seen", "last_seen"
FOLDER = "_locations"  # beside the curated table's data: invisible to its readers
TABLE_NAME = "locations"  # in the curated table's database

LANE_SCHEMA = T.StructType(
    [
        T.StructField(S.LANE_ID, T.IntegerType()),
        T.StructField(S.LANE_NAME, T.StringType()),
        T.StructField(FIRST_SEEN, T.TimestampType()),
        T.StructField(LAST_SEEN, T.TimestampType()),
    ]
)
# The table: one row per section, its lanes sorted by `unieke_id`.
LOCATIONS_SCHEMA = T.StructType(
    [
        T.StructField(LOCATION_ID, T.IntegerType()),
        T.StructField(S.UNIT_ID, T.IntegerType()),
        T.StructField(LANES, T.ArrayType(LANE_SCHEMA)),
        T.StructField(FIRST_SEEN, T.TimestampType()),
        T.StructField(LAST_SEEN, T.TimestampType()),
    ]
)
# A run's lanes (`seen_lanes`): one row per section and lane.
SEEN_LANES_SCHEMA = T.StructType([T.StructField(S.UNIT_ID, T.IntegerType()), *LANE_SCHEMA.fields])


# --- the computation ---------------------------------------------------------------


def _latest_name(time: str) -> Column:
    """The name of the latest sighting that carries one; of sightings tied on the time,
    the largest name."""
    name = F.col(S.LANE_NAME)
    return F.max_by(name, F.struct(name.isNotNull(), F.col(time), name))


def seen_lanes(raw: DataFrame, output_start: int, output_end: int) -> DataFrame:
    """The run's lanes, one row per (`lve_nr`, `unieke_id`): when a reading of the run's
    days `[output_start, output_end)` (epoch seconds) first and last reported the lane
    for that section, and the name (`beschrijvende_id`) the latest of them carries.

    Every reading whose lane and section are integers counts, whatever else it holds
    (defect, unknown occupancy, a duplicate, a bad speed): it says which section its
    lane reports for. So only those four columns are read.
    """
    name = F.col(S.LANE_NAME) if S.LANE_NAME in raw.columns else F.lit(None)
    typed = raw.select(
        as_int(raw, S.UNIT_ID).alias(S.UNIT_ID),
        as_int(raw, S.LANE_ID).alias(S.LANE_ID),
        as_epoch_seconds(raw, S.OBSERVED_AT).alias(S.OBSERVED_AT),
        name.cast("string").alias(S.LANE_NAME),
    )
    observed = F.col(S.OBSERVED_AT)
    in_days = (observed >= output_start) & (observed < output_end)
    # Two aggregations: per name first, whose buffers (two longs) Spark's hash
    # aggregation keeps, then over those few thousand rows for the latest name. One
    # aggregation that carries the name in its buffer makes Spark sort every reading
    # (a sort aggregate): 4x slower, 32 s of a seven-day run.
    per_name = (
        typed.where(F.col(S.UNIT_ID).isNotNull() & F.col(S.LANE_ID).isNotNull() & in_days)
        .groupBy(S.UNIT_ID, S.LANE_ID, S.LANE_NAME)
        .agg(F.min(observed).alias(_FIRST), F.max(observed).alias(_LAST))
    )
    return (
        per_name.groupBy(S.UNIT_ID, S.LANE_ID)
        .agg(
            _latest_name(_LAST).alias(S.LANE_NAME),
            F.timestamp_seconds(F.min(_FIRST)).alias(FIRST_SEEN),
            F.timestamp_seconds(F.max(_LAST)).alias(LAST_SEEN),
        )
        .select(*SEEN_LANES_SCHEMA.fieldNames())
    )


_FIRST, _LAST = "_first_seconds", "_last_seconds"


def of_locations(lanes: DataFrame, locations: tuple[int, ...] | None, semantics: str) -> DataFrame:
    """The lanes of the sections whose rows a `--locations` run replaces: in `corrected`
    the sections whose id (their `lve_nr`) is given; in `athena`, whose ids are lane ids,
    the sections with a lane of a given id. Without `--locations`, all of them."""
    if not locations:
        return lanes
    wanted = list(locations)
    if semantics == CORRECTED:
        return lanes.where(F.col(S.UNIT_ID).isin(wanted))
    sections = lanes.where(F.col(S.LANE_ID).isin(wanted)).select(S.UNIT_ID)
    return lanes.join(sections.distinct(), S.UNIT_ID, "left_semi")


def merge(table: DataFrame | None, lanes: DataFrame) -> DataFrame:
    """The locations table after a run: `table` (None: there is none yet) plus the run's
    `lanes` (`seen_lanes`).

    Per section and lane: the earliest `first_seen`, the latest `last_seen`, the name of
    the later sighting (`_latest_name`). A section's id is its `lve_nr`, whatever the
    run read; sections the run did not see come out as they were. Merging the same
    lanes again changes nothing.
    """
    sightings = lanes.select(*SEEN_LANES_SCHEMA.fieldNames())
    if table is not None:
        known = table.select(S.UNIT_ID, F.explode(LANES).alias("lane")).select(S.UNIT_ID, "lane.*")
        sightings = sightings.unionByName(known)
    per_lane = sightings.groupBy(S.UNIT_ID, S.LANE_ID).agg(
        _latest_name(LAST_SEEN).alias(S.LANE_NAME),
        F.min(FIRST_SEEN).alias(FIRST_SEEN),
        F.max(LAST_SEEN).alias(LAST_SEEN),
    )
    sections = per_lane.groupBy(S.UNIT_ID).agg(
        # Struct order: unieke_id first, one entry per lane of the section.
        F.array_sort(F.collect_list(F.struct(*LANE_SCHEMA.fieldNames()))).alias(LANES),
        F.min(FIRST_SEEN).alias(FIRST_SEEN),
        F.max(LAST_SEEN).alias(LAST_SEEN),
    )
    return sections.select(
        F.col(S.UNIT_ID).alias(LOCATION_ID), S.UNIT_ID, LANES, FIRST_SEEN, LAST_SEEN
    ).select(*(F.col(f.name).cast(f.dataType) for f in LOCATIONS_SCHEMA.fields))


_MICROSECONDS = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"


def as_text(table: DataFrame) -> list[dict]:
    """The table's rows, sorted, with times as ISO text in the session's zone (UTC):
    compared exactly, unlike Python datetimes (local, and ambiguous an hour a year)."""
    text = F.to_json(F.struct(*table.columns), {"timestampFormat": _MICROSECONDS})
    return sorted((json.loads(row[0]) for row in table.select(text).collect()),
                  key=lambda row: row[S.UNIT_ID])


def changes(before: list[dict], after: list[dict]) -> dict:
    """What the run report says of the table after a run (`as_text` rows before and
    after it): how many sections, which are new, and which lanes it records under more
    than one `lve_nr` (lanes that moved)."""
    units_of_lane: dict[int, list[int]] = {}
    for row in after:
        for lane in row[LANES]:
            units_of_lane.setdefault(lane[S.LANE_ID], []).append(row[S.UNIT_ID])
    return {
        "sections": len(after),
        "new_sections": sorted({r[S.UNIT_ID] for r in after} - {r[S.UNIT_ID] for r in before}),
        "lanes_moved": [
            {S.LANE_ID: lane, S.UNIT_ID: sorted(units)}
            for lane, units in sorted(units_of_lane.items())
            if len(units) > 1
        ],
    }


def record(store, lanes: DataFrame) -> dict:
    """Merge the run's `lanes` into the table `store` holds and replace it, unless that
    changes nothing (a rerun of the same days); what the report says of it."""
    table = store.read()
    merged = merge(table, lanes).orderBy(S.UNIT_ID).cache()  # a few thousand rows
    try:
        before = [] if table is None else as_text(table)
        after = as_text(merged)
        if after != before:
            store.write(merged)
        return {"table": store.name, "changed": after != before, **changes(before, after)}
    finally:
        merged.unpersist()


# --- where the table lives --------------------------------------------------------------


def _folder(curated_location: str) -> str:
    return f"{curated_location.rstrip('/')}/{FOLDER}"


def _beside(curated_table: str) -> str:
    """The catalog name of the locations table: `locations` in the curated table's database."""
    return f"{curated_table.rsplit('.', 1)[0]}.{TABLE_NAME}"


class IcebergLocations:
    """The table as Iceberg (format version 2, unpartitioned), at `_locations/` in the
    curated table's folder: `<database>.locations` when the curated table is in a
    catalog, else a table at that path. Replaced by one commit that fails, changing
    nothing, if another writer committed to it since it was read."""

    def __init__(self, spark: SparkSession, run_id: str, curated_location: str, curated_table: str | None):
        self.spark, self.run_id = spark, run_id
        self.location = _folder(curated_location)
        if curated_table:
            self.identifier = self.name = _beside(curated_table)
        else:
            self.identifier, self.name = iceberg.path_table(spark, self.location), self.location
        self._read_snapshot: int | None = None

    def exists(self) -> bool:
        return bool(self.spark.catalog.tableExists(self.identifier))

    def read(self) -> DataFrame | None:
        """The table as of its current snapshot (None: no table, or no row yet)."""
        if not self.exists():
            return None
        current = self.spark.sql(
            f"SELECT snapshot_id FROM {self.identifier}.refs WHERE name = 'main'"
        ).first()
        if current is None:
            return None
        self._read_snapshot = int(current[0])
        return self.spark.sql(f"SELECT * FROM {self.identifier} VERSION AS OF {self._read_snapshot}")

    def _create(self) -> None:
        iceberg.create_table(self.spark, self.identifier, LOCATIONS_SCHEMA, self.location)

    def write(self, rows: DataFrame) -> None:
        self._create()
        options = {f"snapshot-property.{RUN_ID}": self.run_id}
        if self._read_snapshot is not None:
            # Any commit since the table was read (another run's) fails this one.
            options.update({
                "isolation-level": "serializable",
                "validate-from-snapshot-id": str(self._read_snapshot),
            })
        rows.coalesce(1).writeTo(self.identifier).options(**options).overwritePartitions()


class ParquetLocations:
    """The table as one Parquet folder, `_locations/` in the curated table's folder
    (registered as `<database>.locations` when the curated table is in a catalog),
    rewritten whole: staged beside it, then swapped in by renames under the curated
    table's journal (`publish`), which the next run finishes after a crash."""

    def __init__(self, spark: SparkSession, run_id: str, curated_location: str, curated_table: str | None):
        self.spark, self.curated_location = spark, curated_location
        self.location = _folder(curated_location)
        self.table = _beside(curated_table) if curated_table else None
        self.name = self.table or self.location
        # Not the run's own id: the curated table's publish of that id is still under way.
        self.swap_id = f"{run_id}-locations"

    def read(self) -> DataFrame | None:
        if not storage.glob(self.spark, f"{self.location}/*.parquet"):
            return None
        return self.spark.read.schema(LOCATIONS_SCHEMA).parquet(self.location)

    def write(self, rows: DataFrame) -> None:
        staged = f"{publish.staging_dir(self.curated_location, self.swap_id)}/{FOLDER}"
        rows.coalesce(1).write.mode("overwrite").option("compression", "snappy").parquet(staged)
        journal = {"run_id": self.swap_id, "replace": [FOLDER], "remove": []}
        storage.write_json(
            self.spark, f"{self.curated_location.rstrip('/')}/{publish.JOURNAL}/{self.swap_id}.json", journal
        )
        # The journal's own replay swaps the folder in, as it would after a crash.
        publish.recover(self.spark, self.curated_location)
        if self.table:
            self._register()

    def _register(self) -> None:
        self.spark.sql(f"CREATE DATABASE IF NOT EXISTS `{self.table.split('.')[0]}`")
        columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in LOCATIONS_SCHEMA.fields)
        self.spark.sql(
            f"CREATE EXTERNAL TABLE IF NOT EXISTS {self.table} ({columns}) STORED AS PARQUET "
            f"LOCATION '{self.location}' TBLPROPERTIES ('classification'='parquet')"
        )
        self.spark.sql(f"REFRESH TABLE {self.table}")


def open_store(spark: SparkSession, run_id: str, table_format: str, curated_location: str,
               curated_table: str | None):
    """The locations table beside a curated table of `table_format`."""
    kind = IcebergLocations if table_format == ICEBERG else ParquetLocations
    return kind(spark, run_id, curated_location, curated_table)
