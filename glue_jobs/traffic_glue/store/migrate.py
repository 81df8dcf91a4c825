"""Bringing a curated table of the old layouts in as an Iceberg table, its data files
kept where they are (`python -m tools.table migrate`).

Two old layouts hold the curated rows as Snappy Parquet files in Hive folders
`year=/month=/day=/hour=` (bigint values, the files without the partition columns):

- this job's earlier Parquet format, a folder with `_table.json` beside the hours
  (`{"format": "parquet", "semantics": ...}`: its mode) and its locations table in
  `_locations/` (Parquet files; both registered in the catalog with `--target_table`);
- the seed pipeline's table (Athena's `INSERT INTO ... SELECT`), a Hive table in the
  catalog, which computed the `athena` numbers.

`migrate` makes the Iceberg table as the jobs make theirs (`tables.IcebergTable.
create_if_missing`: the same schema, partitions, properties and mode) and imports the
files with Iceberg's `add_files` procedure, which reads each file's footer for its
metrics, takes the partition values from its folder and sets a name mapping, so the
files are read by column name. No data file is rewritten, moved or deleted; a run that
later replaces a day drops that day's old files from the table like any other.

`add_files` reads its source through a catalog table: with the folder as source
(`parquet`.`<folder>`) Spark would list the new table's own `metadata/` beside the
`year=` folders and refuse the mixed layout. A folder is therefore imported from a
temporary external table over it whose partitions are its `year=` folders; a Hive
table, renamed aside for the time of the import (its name goes to the Iceberg table),
from its own registered partitions, as Iceberg's `migrate` procedure would (that one
would take the Hive table's schema and properties instead of the seam's). The aside
and temporary tables are external: dropping them leaves the files.

Afterwards `_table.json` is deleted (the table property `traffic-glue.semantics` is the
one record of the mode from then on: `--replace_semantics` changes it, a second record
would go stale), and so are an earlier run's leftovers no reader needs (`_staging/`,
`_trash/`). A folder in the middle of an old publish (`_journal/`) or locked by an old
run (`_lock`) is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from traffic_glue.compute import modes
from traffic_glue.compute import schema as S
from traffic_glue.store import curated, locations, storage, tables

COMMAND = tables.MIGRATE_COMMAND  # "python -m tools.table migrate"
MODE_FILE = "_table.json"
# The seed pipeline computed Athena's numbers; a table without `_table.json` is its.
SEED_MODE = modes.ATHENA
# The earlier Parquet format's publish: a journal of a swap under way, a run's lock,
# and what a finished or crashed run may leave that no reader needs.
JOURNAL, LOCK, LEFTOVERS = "_journal", "_lock", ("_staging", "_trash")
TEMPORARY_DATABASE = "default"
ASIDE_SUFFIX = "_hive_before_iceberg"


class MigrateError(RuntimeError):
    """The target cannot be brought in as given. Refused before any change, or, if an
    import failed, undone (a locations table already brought in beside it stays so)."""


class ModeConflict(MigrateError):
    """`--semantics` is not the mode the old table recorded."""


@dataclass(frozen=True)
class MigrateResult:
    """What `migrate` made of an old table."""

    name: str  # the catalog name, or the folder
    target: str  # the arguments that name it for the jobs and tools.table
    mode: str
    files: int
    rows: int
    partitions: int
    locations: str | None = None  # the locations table brought in beside it

    def lines(self) -> list[str]:
        found = [
            f"migrated {self.name} to Iceberg in place: {self.files} data files, {self.rows} rows, "
            f"{self.partitions} hour partitions, mode {self.mode}; next: run the job with "
            f"{self.target} --semantics {self.mode} (python -m tools.table history {self.target} lists its commits)"
        ]
        if self.locations:
            found.append(f"migrated the locations table {self.locations} to Iceberg in place")
        return found


def is_old_layout(spark: SparkSession, location: str) -> bool:
    """True if `location` holds `year=` folders and no Iceberg table."""
    root = location.rstrip("/")
    return not storage.exists(spark, f"{root}/metadata") and bool(storage.glob(spark, f"{root}/year=*"))


def refusal_message(location: str | None = None, table: str | None = None) -> str:
    """What a job says, in one line, when its target is a table of the old layouts."""
    if table:
        return (f"--target_table {table} is a Hive table, not Iceberg: bring it in with "
                f"{COMMAND} --target_table {table}, then run again")
    return (f"{location} holds Parquet folders (year=...) and no Iceberg table: bring it in with "
            f"{COMMAND} --target_path {location}, then run again")


def migrate(spark: SparkSession, location: str | None = None, table: str | None = None,
            semantics: str | None = None) -> MigrateResult:
    """The curated table of the old layouts at `location` (a folder) and/or `table` (a
    Hive table in the catalog, or the name to give the folder's table there) as an
    Iceberg table of the same name and place, its mode `semantics` (default: what
    `_table.json` records, else the seed's). `MigrateError` (nothing changed) says why not."""
    if not location and not table:
        raise MigrateError("--target_path or --target_table is required")
    if semantics is not None and semantics not in modes.SEMANTICS:
        raise MigrateError(f"--semantics must be one of {', '.join(modes.SEMANTICS)}, got {semantics!r}")
    folder = storage.qualified(spark, location).rstrip("/") if location else None
    hive = False
    if table and spark.catalog.tableExists(table):
        provider, at = _describe(spark, table)
        if provider == "iceberg":
            raise MigrateError(f"{table} is an Iceberg table already: nothing to migrate")
        at = storage.qualified(spark, at).rstrip("/")
        if folder and folder != at:
            raise MigrateError(f"{table} is at {at}, not at --target_path {folder}")
        folder, hive = at, True
        _check_hive_table(spark, table)
    elif table and not folder:
        raise MigrateError(f"{table} does not exist in the catalog: give --target_path, the folder to bring in")
    _check_folder(spark, folder)
    _check_columns(spark, folder)
    mode = _mode(spark, folder, semantics)
    target = tables.IcebergTable(
        spark, curated.SPEC, table or tables.path_table(spark, folder), folder, name=table or folder
    )
    beside = _locations_beside(spark, folder, table)
    # The locations table first: were the curated table's import to fail after it, a
    # second `migrate` finds the curated table still to do, and the locations done.
    if beside is not None:
        _bring_in(spark, *beside, mode=None, partitioned=False)
    _bring_in(spark, target, hive, mode=mode, partitioned=True)
    for leftover in (MODE_FILE, *LEFTOVERS):
        storage.delete(spark, f"{folder}/{leftover}")
    files, rows, partitions = spark.sql(
        f"SELECT count(*), coalesce(sum(record_count), 0), count(DISTINCT partition) FROM {target.identifier}.files"
    ).first()
    return MigrateResult(
        name=target.name, target=f"--target_table {table}" if table else f"--target_path {folder}",
        mode=mode, files=int(files), rows=int(rows), partitions=int(partitions),
        locations=beside[0].name if beside else None,
    )


# --- what is there, checked before anything changes --------------------------------------


def _describe(spark: SparkSession, table: str) -> tuple[str, str]:
    """(provider, location) of a catalog table: "hive", "parquet" or "iceberg"."""
    details = _details(spark, table)
    return details.get("Provider", "hive").lower(), details.get("Location", "")


def _details(spark: SparkSession, table: str) -> dict[str, str]:
    return {
        row["col_name"].strip(): (row["data_type"] or "").strip()
        for row in spark.sql(f"DESCRIBE TABLE EXTENDED {table}").collect()
    }


def _check_hive_table(spark: SparkSession, table: str) -> None:
    if _details(spark, table).get("Type", "").upper() != "EXTERNAL":
        raise MigrateError(
            f"{table} is a managed table: the catalog would delete its files with it; make it "
            f"external first (ALTER TABLE {table} SET TBLPROPERTIES ('EXTERNAL'='TRUE'))"
        )
    partitions = tuple(c.name for c in spark.catalog.listColumns(table) if c.isPartition)
    if partitions != S.EVENT_PARTITIONS:
        raise MigrateError(f"{table} is partitioned by ({', '.join(partitions)}), not by "
                           f"({', '.join(S.EVENT_PARTITIONS)})")
    difference = column_differences(spark.table(table).schema, S.CURATED_TABLE_SCHEMA)
    if difference:
        raise MigrateError(f"{table}'s columns are not the curated table's: {difference}")


def _check_folder(spark: SparkSession, folder: str) -> None:
    if not storage.exists(spark, folder):
        raise MigrateError(f"no folder {folder}")
    if storage.exists(spark, f"{folder}/metadata"):
        raise MigrateError(f"{folder} holds an Iceberg table already (metadata/): nothing to migrate")
    if not storage.glob(spark, f"{folder}/year=*"):
        raise MigrateError(f"{folder} holds no year= folders: not a curated table of the old layouts")
    if storage.list_files(spark, f"{folder}/{JOURNAL}"):
        raise MigrateError(
            f"{folder} has a publish under way ({JOURNAL}/): an earlier version's run was cut short "
            "while swapping hours; run that version's job on it once (it finishes the swap), then migrate"
        )
    if storage.exists(spark, f"{folder}/{LOCK}"):
        raise MigrateError(
            f"{folder} is locked by a run of an earlier version ({LOCK}): wait for it, or delete the "
            "lock if no such run is writing, then migrate"
        )


def _check_columns(spark: SparkSession, folder: str) -> None:
    """The files' own columns (every footer's, merged) against the curated table's."""
    try:
        found = (spark.read.option("mergeSchema", "true").option("recursiveFileLookup", "true")
                 .parquet(f"{folder}/year=*").schema)
    except Exception as error:  # no file at all, or a column whose types do not merge
        raise MigrateError(f"cannot read the Parquet files under {folder}/year=*: {first_line(error)}") from None
    difference = column_differences(found, S.CURATED_SCHEMA, allowed=S.EVENT_PARTITIONS)
    if difference:
        raise MigrateError(f"the files under {folder} do not hold the curated table's columns: {difference}")


def column_differences(found: T.StructType, wanted: T.StructType, allowed: tuple[str, ...] = ()) -> str:
    """The columns `found` lacks, has besides `wanted` (and `allowed`), and types
    otherwise; "" if none."""
    have = {f.name: f.dataType.simpleString() for f in found.fields}
    want = {f.name: f.dataType.simpleString() for f in wanted.fields}
    parts = []
    missing = [name for name in want if name not in have]
    extra = [name for name in have if name not in want and name not in allowed]
    typed = [f"{name} {have[name]} (not {want[name]})" for name in want if name in have and have[name] != want[name]]
    for label, names in (("missing", missing), ("extra", extra), ("other types", typed)):
        if names:
            parts.append(f"{label}: {', '.join(names)}")
    return "; ".join(parts)


def _mode(spark: SparkSession, folder: str, semantics: str | None) -> str:
    path = f"{folder}/{MODE_FILE}"
    if not storage.exists(spark, path):
        return semantics or SEED_MODE
    try:
        recorded = storage.read_json(spark, path).get("semantics")
    except ValueError:
        recorded = None
    if recorded not in modes.SEMANTICS:
        raise MigrateError(f"{path} records no mode (semantics athena or corrected)")
    if semantics and semantics != recorded:
        raise ModeConflict(
            f"--semantics {semantics}, but the table's rows were computed with --semantics {recorded} "
            f"({path}): leave --semantics out"
        )
    return recorded


def _locations_beside(spark: SparkSession, folder: str, table: str | None):
    """(the locations table to make, whether it is a Hive table now) where the earlier
    Parquet format left one beside the curated table; None if there is none to bring in."""
    at = f"{folder}/{locations.FOLDER}"
    name = f"{table.rsplit('.', 1)[0]}.{locations.TABLE_NAME}" if table else None
    if name and spark.catalog.tableExists(name):
        provider, _ = _describe(spark, name)
        if provider == "iceberg":
            return None
        if _details(spark, name).get("Type", "").upper() != "EXTERNAL":
            raise MigrateError(f"{name} is a managed table: make it external first")
        spec = tables.TableSpec(kind="the locations table", schema=spark.table(name).schema)
        return tables.IcebergTable(spark, spec, name, at, name=name), True
    if storage.exists(spark, f"{at}/metadata") or not storage.glob(spark, f"{at}/*.parquet"):
        return None
    # Its own columns, whatever rule wrote it: the job replaces a table of an earlier schema.
    spec = tables.TableSpec(kind="the locations table", schema=spark.read.parquet(at).schema)
    return tables.IcebergTable(spark, spec, name or tables.path_table(spark, at), at, name=name or at), False


# --- the import ---------------------------------------------------------------------------


def _bring_in(spark: SparkSession, table: tables.IcebergTable, hive: bool, mode: str | None,
              partitioned: bool) -> None:
    """`table` made by the seam, the files imported from a catalog table over its folder:
    the Hive table itself, renamed aside, or a temporary one. On failure the Iceberg
    table is taken away again (its metadata only) and the Hive table restored."""
    digest = hashlib.sha1(table.location.encode()).hexdigest()[:12]
    source = (f"{table.identifier}{ASIDE_SUFFIX}" if hive
              else f"{TEMPORARY_DATABASE}.traffic_glue_migrate_{digest}")
    if hive:
        spark.sql(f"ALTER TABLE {table.identifier} RENAME TO {source}")
    else:
        _temporary_table(spark, source, table, partitioned)
    made = False
    try:
        made = table.create_if_missing(mode)
        if not table.exists():
            # CREATE TABLE IF NOT EXISTS found a table this session cannot read: a Hive
            # table in the Glue Data Catalog, which a session without Glue's Hive client
            # (a laptop's `--glue_warehouse`) does not see.
            raise MigrateError(
                f"{table.name}: the catalog holds a table of that name this session cannot read (a Glue "
                "Hive table?): delete its catalog entry (an EXTERNAL table's files stay), then migrate "
                "with --target_path and --target_table"
            )
        table.call("add_files", source_table=f"'{source}'")
    except Exception:
        if made:
            _unmake(spark, table)
        if hive:
            spark.sql(f"ALTER TABLE {source} RENAME TO {table.identifier}")
            source = ""
        raise
    finally:
        if source:
            spark.sql(f"DROP TABLE IF EXISTS {source}")  # external: its files stay


def _temporary_table(spark: SparkSession, name: str, table: tables.IcebergTable, partitioned: bool) -> None:
    columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in table.spec.schema.fields)
    partitions = f"PARTITIONED BY ({', '.join(S.EVENT_PARTITIONS)}) " if partitioned else ""
    spark.sql(f"DROP TABLE IF EXISTS {name}")  # one a cut-short migrate left: external too
    spark.sql(f"CREATE TABLE {name} ({columns}) USING parquet {partitions}LOCATION '{table.location}'")
    if partitioned:
        # The folder's `key=value` folders as partitions (`metadata/` is no partition).
        spark.sql(f"ALTER TABLE {name} RECOVER PARTITIONS")


def _unmake(spark: SparkSession, table: tables.IcebergTable) -> None:
    """Take away a table `migrate` made: its catalog entry and its `metadata/` (which
    `_check_folder` found absent), never the folder (a file-based catalog's DROP TABLE
    would delete all of it)."""
    if table.in_catalog and table.exists():  # an Iceberg table: without PURGE its files stay
        spark.sql(f"DROP TABLE {table.identifier}")
    storage.delete(spark, f"{table.location.rstrip('/')}/metadata")


def first_line(error: BaseException) -> str:
    """An error's message in one line (a JVM error's, without its stack trace)."""
    java = getattr(error, "java_exception", None)
    text = java.toString() if java is not None else str(error)
    return (text.strip().splitlines() or [type(error).__name__])[0]
