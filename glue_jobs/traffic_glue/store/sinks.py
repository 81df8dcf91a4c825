"""The curated table's writers: one per table format, behind one interface.

A run hands its rows to a sink in two steps:

1. `stage(rows)`: the run's one pass over the data. Nothing a reader sees changes.
2. `publish(days)`: the staged rows replace exactly `days` (the run's days for which it
   read raw readings); every other day stays as it is. In each of those days an hour
   that has no staged row is removed.

`IcebergSink` stages on a branch of the table (Iceberg's write-audit-publish) and
publishes by fast-forwarding `main` to it: one atomic commit, after which readers see
all of the run's days or none of them, on a local disk and on S3 alike. A concurrent
writer makes the fast-forward fail, and the run with it, changing nothing.
`ParquetSink` stages in `_staging/` and publishes by swapping hour folders under a
journal and a lock (`publish`): atomic per hour on a local disk only.

Each table records the `--semantics` its rows were computed with.
"""

from __future__ import annotations

import datetime as dt
import functools
import re

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from traffic_glue.store import iceberg, publish, storage
from traffic_glue.compute import schema as S
from traffic_glue.store.publish import PartitionFiles, PublishResult

ICEBERG, PARQUET = "iceberg", "parquet"
TABLE_FORMATS = (ICEBERG, PARQUET)
SEMANTICS_PROPERTY = "traffic-glue.semantics"
# Snapshot summary keys that tie a commit to its run (`python -m tools.table history`).
RUN_ID, RUN_DAYS, RUN_SEMANTICS = "traffic-glue.run-id", "traffic-glue.days", "traffic-glue.semantics"
RUN_BRANCH_PREFIX = "traffic_run_"
# Beside a Parquet-format table's folders: what it holds (invisible to readers: `_`).
PARQUET_TABLE_FILE = "_table.json"


class TableFormatError(RuntimeError):
    """The target holds a table of another format, or of another `--semantics`."""


def days_filter(days: list[dt.date], hours: dict[dt.date, list[int]] | None = None):
    """Rows of `days` (of only `hours[day]` where given): ORs of equalities on the
    partition columns, which Spark prunes on and Iceberg takes as a delete filter."""
    year, month, day_, hour = (F.col(c) for c in S.EVENT_PARTITIONS)
    terms = []
    for day in days:
        term = (year == day.year) & (month == day.month) & (day_ == day.day)
        if hours is not None:
            term = term & hour.isin(hours[day])
        terms.append(term)
    return functools.reduce(lambda a, b: a | b, terms, F.lit(False))


def _hour_name(row) -> str:
    return publish.partition_name(tuple(int(row[k]) for k in S.EVENT_PARTITIONS))


def _day_of(name: str) -> dt.date:
    parts = dict(kv.split("=") for kv in name.split("/"))
    return dt.date(int(parts["year"]), int(parts["month"]), int(parts["day"]))


class IcebergSink:
    """The curated table as an Iceberg table (format version 2, identity partitions
    `year, month, day, hour`), in a catalog (`table`) or at a path (`location`)."""

    table_format = ICEBERG

    def __init__(self, spark: SparkSession, run_id: str, location: str | None, table: str | None = None):
        self.spark, self.run_id = spark, run_id
        self.location = storage.qualified(spark, location) if location else None
        self.identifier = table or iceberg.path_table(spark, self.location)
        self.branch = RUN_BRANCH_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", run_id)
        self._written: set[str] = set()
        self._head: int | None = None  # the branch's snapshot after the run's write

    # --- the table --------------------------------------------------------------------

    def exists(self) -> bool:
        return bool(self.spark.catalog.tableExists(self.identifier))

    def create_if_missing(self, semantics: str) -> bool:
        """Make the table, recording `semantics`; False if it was there already."""
        if self.exists():
            return False
        self.check_target()
        iceberg.create_table(
            self.spark, self.identifier, S.CURATED_TABLE_SCHEMA, self.location, S.EVENT_PARTITIONS,
            {
                # The job lays rows out itself (publish.layout_for_write): one file per hour.
                "write.distribution-mode": "none",
                SEMANTICS_PROPERTY: semantics,
            },
        )
        return True

    def check_target(self) -> None:
        """`TableFormatError` if the table cannot be made where it is to be."""
        if self.location:
            self._refuse_plain_parquet_folder()
            if self.identifier.startswith(iceberg.PATH_CATALOG_PREFIX):
                self._refuse_catalog_table_by_path()

    def _refuse_catalog_table_by_path(self) -> None:
        if iceberg.made_by_a_catalog(self.spark, self.location):
            raise TableFormatError(
                f"{self.location} holds an Iceberg table of a catalog: give its name as "
                "--target_table database.table (with --target_path, or alone), not only its path"
            )

    def _refuse_plain_parquet_folder(self) -> None:
        if storage.glob(self.spark, f"{self.location.rstrip('/')}/year=*"):
            raise TableFormatError(
                f"{self.location} holds a Parquet-format table (year=... folders) and no "
                "Iceberg metadata: give --table_format parquet, or another --target_path"
            )

    def recorded_semantics(self) -> str | None:
        if not self.exists():
            return None
        found = self.spark.sql(f"SHOW TBLPROPERTIES {self.identifier}").collect()
        return {row["key"]: row["value"] for row in found}.get(SEMANTICS_PROPERTY)

    def record_semantics(self, semantics: str) -> None:
        self.spark.sql(
            f"ALTER TABLE {self.identifier} SET TBLPROPERTIES ('{SEMANTICS_PROPERTY}'='{semantics}')"
        )

    def published_rows(self, days: list[dt.date]) -> DataFrame | None:
        if not self.exists():
            return None
        return self.spark.table(self.identifier).where(days_filter(days))

    # --- one run ----------------------------------------------------------------------

    def _procedure(self, name: str, *args: str) -> list:
        catalog = iceberg.catalog_of(self.identifier)
        table = iceberg.table_in_catalog(self.identifier)
        quoted = ", ".join([f"'{table}'", *args])
        return self.spark.sql(f"CALL {catalog}.system.{name}({quoted})").collect()

    def _branch_table(self) -> str:
        return f"{self.identifier}.`branch_{self.branch}`"

    def _properties(self, run_days: str, semantics: str) -> dict[str, str]:
        return {
            f"snapshot-property.{RUN_ID}": self.run_id,
            f"snapshot-property.{RUN_DAYS}": run_days,
            f"snapshot-property.{RUN_SEMANTICS}": semantics,
        }

    def stage(self, rows: DataFrame, run_days: str, semantics: str) -> None:
        """The run's rows on a branch of its own; `main`, which readers see, is untouched."""
        self.spark.sql(f"ALTER TABLE {self.identifier} CREATE BRANCH `{self.branch}`")
        (
            publish.layout_for_write(rows)
            .writeTo(self._branch_table())
            .options(**self._properties(run_days, semantics))
            .overwritePartitions()
        )
        head = self._head = self._ref(self.branch)
        # The hours this run's commit added files to (status 1: ADDED by that snapshot).
        self._written = {
            _hour_name(row)
            for row in self.spark.sql(
                f"SELECT data_file.partition AS p FROM {self.identifier}.entries "
                f"VERSION AS OF {head} WHERE status = 1 AND snapshot_id = {head}"
            ).select("p.*").collect()
        }

    def _ref(self, name: str) -> int | None:
        found = self.spark.sql(
            f"SELECT snapshot_id FROM {self.identifier}.refs WHERE name = '{name}'"
        ).first()
        return int(found[0]) if found else None

    def publish(self, days: list[dt.date], run_days: str, semantics: str) -> PublishResult:
        # The branch's hours: main's when the branch was made, with the run's replaced.
        hours_files = {
            _hour_name(row["partition"]): PartitionFiles(
                _hour_name(row["partition"]), int(row["file_count"]), int(row["bytes"])
            )
            for row in self.spark.sql(
                f"SELECT partition, file_count, total_data_file_size_in_bytes AS bytes "
                f"FROM {self.identifier}.partitions VERSION AS OF {self._head}"
            ).collect()
        }
        wanted = set(days)
        stale = sorted(p for p in hours_files.keys() - self._written if _day_of(p) in wanted)
        if stale:
            hours: dict[dt.date, list[int]] = {}
            for name in stale:
                hours.setdefault(_day_of(name), []).append(int(name.rsplit("=", 1)[1]))
            (
                self.spark.createDataFrame([], S.CURATED_TABLE_SCHEMA)
                .writeTo(self._branch_table())
                .options(**self._properties(run_days, semantics))
                .overwrite(days_filter(sorted(hours), hours))
            )
        # The one commit readers see: main moves to the branch's head, or, if another
        # writer moved main since the branch was made, nothing happens and this fails.
        self._procedure("fast_forward", "'main'", f"'{self.branch}'")
        self.abandon()
        written = sorted((hours_files[name] for name in self._written), key=lambda p: p.partition)
        return PublishResult(written=written, removed=stale, snapshot_id=self._ref("main"))

    def abandon(self) -> None:
        """Drop the run's branch (its files go with the next snapshot expiry)."""
        if self.exists():
            self.spark.sql(f"ALTER TABLE {self.identifier} DROP BRANCH IF EXISTS `{self.branch}`")


class ParquetSink:
    """The curated table as plain Parquet folders `year=/month=/day=/hour=` (optionally
    registered in the catalog as `table`), published by `publish`'s journal and swap
    under the target's lock (`publish.TargetLock`, held by the job for the whole run)."""

    table_format = PARQUET

    def __init__(self, spark: SparkSession, run_id: str, location: str, table: str | None = None):
        self.spark, self.run_id, self.location, self.table = spark, run_id, location, table
        self.staging = publish.staging_dir(location, run_id)
        self._info = f"{location.rstrip('/')}/{PARQUET_TABLE_FILE}"

    def create_if_missing(self, semantics: str) -> bool:
        """Record `semantics` for a new table; False for a table already there."""
        self.check_target()
        if storage.exists(self.spark, self._info) or storage.glob(
            self.spark, f"{self.location.rstrip('/')}/year=*"
        ):
            return False
        self.record_semantics(semantics)
        return True

    def check_target(self) -> None:
        """`TableFormatError` if the folder holds an Iceberg table."""
        if storage.exists(self.spark, f"{self.location.rstrip('/')}/metadata"):
            raise TableFormatError(
                f"{self.location} holds an Iceberg table (metadata/): give --table_format "
                "iceberg, or another --target_path"
            )

    def recorded_semantics(self) -> str | None:
        if not storage.exists(self.spark, self._info):
            return None
        return storage.read_json(self.spark, self._info).get("semantics")

    def record_semantics(self, semantics: str) -> None:
        storage.write_json(self.spark, self._info, {"format": PARQUET, "semantics": semantics})

    def published_rows(self, days: list[dt.date]) -> DataFrame | None:
        if not storage.glob(self.spark, f"{self.location.rstrip('/')}/year=*"):
            return None
        table = self.spark.read.parquet(self.location)
        return table.select(
            *(F.col(f.name).cast(f.dataType) for f in S.CURATED_TABLE_SCHEMA.fields)
        ).where(days_filter(days))

    def stage(self, rows: DataFrame, run_days: str, semantics: str) -> None:
        publish.write_staged(rows, self.staging)

    def publish(self, days: list[dt.date], run_days: str, semantics: str) -> PublishResult:
        parts = [p for day in days for p in publish.day_partitions(day, day)]
        result = publish.publish(self.spark, self.location, self.run_id, parts)
        storage.delete(self.spark, self.staging)  # hours staged for days left unchanged
        return result

    def abandon(self) -> None:
        storage.delete(self.spark, self.staging)
