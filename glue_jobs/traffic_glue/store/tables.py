"""The tables the jobs write, all Apache Iceberg: the one place that opens or creates
them, knows their recorded mode, stages a run on a branch and commits it, and reads
their history.

A table is named by a catalog name (`--target_table database.table`: the Glue Data
Catalog on AWS, the local catalog on a laptop), by a folder (`--target_path`: a table of
a file-based catalog registered on the session for the folder's parent), or by both
(the catalog table, made at the folder if it is missing). `open_table` resolves what it
was given once, and refuses, in one line, a target it cannot use as given:

- a folder that holds a catalog's table (metadata `00001-<uuid>.metadata.json`, not `vN`): the
  table's name is needed, or the folder's catalog would start a second table there;
- a folder or catalog table in the old layouts (plain Parquet `year=/month=/...`
  folders, a Hive table): `python -m tools.table migrate` brings it in first.

A run writes on a branch of its own (`TableRun`: Iceberg's write-audit-publish) and
publishes by fast-forwarding `main` to it: one atomic commit, after which readers see
all of the run's changes or none, on a local disk and on S3 alike. A concurrent writer
makes the fast-forward fail, and the run with it, changing nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import types as T

from traffic_glue.store import catalog, storage

SEMANTICS_PROPERTY = "traffic-glue.semantics"
# Snapshot summary keys that tie a commit to its run (`python -m tools.table history`).
RUN_ID, RUN_DAYS, RUN_SEMANTICS = "traffic-glue.run-id", "traffic-glue.days", "traffic-glue.semantics"
RUN_BRANCH_PREFIX = "traffic_run_"
PATH_CATALOG_PREFIX = "traffic_path_"
SESSION_CATALOG = "spark_catalog"
_CATALOG_CLASS = "org.apache.iceberg.spark.SparkCatalog"
MIGRATE_COMMAND = "python -m tools.table migrate"
# Reads that only count and compare (the quality check's, the top jam locations'): a file
# is weighed as at least 1 MB when Iceberg packs files into a task, not 4 MB (its
# `read.split.open-file-cost`). An hour file of `athena` holds about 0.6 MB, so a task
# took 4 of them: 180 tasks over thirty days' 720 files. (A week's check, warm: 0.8 s
# in 11 tasks against 1.1-1.3 s in 42.) Not for a read that sums doubles: the daily
# summary's mean of an hour came out a last digit apart when its day was summarised
# alone and with its neighbours (tests/test_summary_job.py), its speeds added in
# another order once more groups shared a task.
COUNTING_READ = {"file-open-cost": str(1 << 20)}
# The most a task of a counting read of known files takes (`counting_read`): Iceberg's own
# target size of a split, the files weighed as Iceberg weighs them.
COUNTING_SPLIT_MAX = 128 << 20


def counting_read(file_bytes: Sequence[int], cores: int) -> dict[str, str]:
    """COUNTING_READ for a read of the files of `file_bytes`, its split size chosen: two
    tasks a core where the files are enough for them, at most COUNTING_SPLIT_MAX a task,
    each file weighed as Iceberg weighs it (at least the open cost). Left to Iceberg, its
    adaptive split size cuts a read of small files into splits of 16 MB: a year's 8,760
    hour files of 50 kB were 548 tasks of 16 files, and the quality check's aggregation of
    them took 7.5-11.7 s; in 69 tasks 3.8-4.5 s (docs/BENCHMARKS.md)."""
    cost = int(COUNTING_READ["file-open-cost"])
    weighed = sum(max(size, cost) for size in file_bytes)
    split = min(COUNTING_SPLIT_MAX, max(cost, -(-weighed // (2 * max(cores, 1)))))
    return {**COUNTING_READ, "split-size": str(split)}


class TableError(RuntimeError):
    """A table named by an argument cannot be used as given; nothing was changed."""


class ConcurrentWriteError(TableError):
    """Another writer committed while a run was writing: nothing of the run was published."""


class TableHistoryError(TableError):
    """A run or snapshot asked for is not in the table's history."""


@dataclass(frozen=True)
class TableSpec:
    """What a kind of table holds: its schema, partitions and properties, and how a
    person names it in a message."""

    kind: str  # "the curated table"
    schema: T.StructType
    partitioned_by: tuple[str, ...] = ()
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Commit:
    """One change of what readers see: a run's commit, or a rollback."""

    made_current_at: dt.datetime
    snapshot_id: int  # what readers see after it
    before_snapshot_id: int | None  # what readers saw before it (restore it to undo)
    run_id: str | None  # the run that committed it (None: a rollback, or a commit of no run)
    rollback: bool  # `main` went back to an earlier snapshot, `snapshot_id`
    rollback_to_run: str | None  # the run whose commit made that snapshot (None: no run's)
    days: str | None  # the days the run wrote (None: a rollback)
    semantics: str | None  # the run's mode (None: a rollback)
    rows: int  # the table's rows after it
    current: bool  # the latest move of `main`: what readers see now


class Table(Protocol):
    """What the jobs, the dry run and the maintenance job ask of a table."""

    spec: TableSpec
    name: str  # as a person reads it: the catalog name, else the folder
    identifier: str  # Spark's name for it
    location: str | None  # its folder (None: a catalog table not made yet, no folder given)

    def exists(self) -> bool: ...
    def create_if_missing(self, mode: str | None = None) -> bool: ...
    def recorded_mode(self) -> str | None: ...
    def record_mode(self, mode: str) -> None: ...
    def read(self, where: Column | None = None, snapshot_id: int | None = None,
             options: dict[str, str] | None = None) -> DataFrame: ...
    def snapshot_id(self, ref: str = "main") -> int | None: ...
    def begin(self, run_id: str) -> "TableRun": ...
    def overwrite(self, rows: DataFrame, where: Column, properties: dict[str, str]) -> int | None: ...
    def history(self) -> list[Commit]: ...


def snapshot_properties(run_id: str, days: str | None = None, mode: str | None = None) -> dict[str, str]:
    """The write options that put the run's id, days and mode in its commits' summaries."""
    found = {RUN_ID: run_id, RUN_DAYS: days, RUN_SEMANTICS: mode}
    return {f"snapshot-property.{key}": value for key, value in found.items() if value is not None}


@contextlib.contextmanager
def session_settings(spark: SparkSession, settings: dict[str, str]):
    """`settings` on the session within the block, and its own values back after (unset
    where it had none): a workflow's or the tests' session runs other work too."""
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def open_table(spark: SparkSession, spec: TableSpec | None, *, table: str | None = None,
               path: str | None = None, argument: str = "target") -> "IcebergTable":
    """The table named by `--<argument>_table` and/or `--<argument>_path` (not created:
    `create_if_missing`, which needs `spec`); `TableError` names what cannot be used as
    given."""
    if not table and not path:
        raise TableError(f"--{argument}_path or --{argument}_table is required")
    location = storage.qualified(spark, path) if path else None
    if table:
        if spark.catalog.tableExists(table):
            info = catalog.describe(spark, table)
            if info.provider != "iceberg":
                raise TableError(
                    f"--{argument}_table {table} is a {info.provider or 'Hive'} table, not Iceberg: "
                    f"bring it in with {MIGRATE_COMMAND} --target_table {table}"
                )
            location = info.location
        elif not location:
            raise TableError(
                f"--{argument}_table {table} does not exist; give --{argument}_path too to create it there"
            )
        return IcebergTable(spark, spec, table, location, name=table)
    _refuse_old_layouts(spark, location, argument)
    return IcebergTable(spark, spec, path_table(spark, location), location, name=location)


# A file-based catalog names its metadata v<N>.metadata.json; a catalog's table
# <NNNNN>-<uuid>.metadata.json. The name, not `version-hint.text`, tells them apart: a run
# killed while the file-based catalog replaces its hint (delete, then rename; on S3 two
# requests) leaves no hint, and Iceberg then reads the highest v<N> (HadoopTableOperations).
_FILE_CATALOG_METADATA = re.compile(r"v\d+(\.gz)?\.metadata\.json")


def _refuse_old_layouts(spark: SparkSession, location: str, argument: str) -> None:
    metadata = f"{location.rstrip('/')}/metadata"
    names = [entry.path.rsplit("/", 1)[-1] for entry in storage.glob(spark, f"{metadata}/*.metadata.json")]
    if names and not any(_FILE_CATALOG_METADATA.fullmatch(name) for name in names):
        raise TableError(
            f"{location} holds an Iceberg table of a catalog: give its name as "
            f"--{argument}_table database.table (with --{argument}_path, or alone), not only its path"
        )
    if not storage.exists(spark, metadata) and storage.glob(spark, f"{location.rstrip('/')}/year=*"):
        raise TableError(
            f"{location} holds Parquet folders (year=...) and no Iceberg table: bring it in "
            f"with {MIGRATE_COMMAND} --target_path {location}"
        )


def path_table(spark: SparkSession, path: str) -> str:
    """The identifier of the Iceberg table at `path`, through a file-based catalog
    registered on this session for the path's parent folder (the table's `metadata/` and
    `data/` are then under the path itself). Such a catalog commits by renaming a file,
    atomic on a local disk but not on S3: on AWS the jobs write through the Glue catalog."""
    parent, _, name = path.rstrip("/").rpartition("/")
    if not parent or not name:
        raise TableError(f"a table's folder needs a parent folder and a name: {path!r}")
    catalog_name = PATH_CATALOG_PREFIX + hashlib.sha1(parent.encode()).hexdigest()[:12]
    key = f"spark.sql.catalog.{catalog_name}"
    if spark.conf.get(key, None) is None:
        spark.conf.set(key, _CATALOG_CLASS)
        spark.conf.set(f"{key}.type", "hadoop")
        spark.conf.set(f"{key}.warehouse", parent)
        # Read the table's current version at every use: another process (a rerun, a
        # rollback) may have committed since this long-lived session last looked.
        spark.conf.set(f"{key}.cache-enabled", "false")
    return f"{catalog_name}.`{name}`"


def _comment(column: T.StructField) -> str | None:
    """The column's comment: Spark's metadata key, which DDL and `DESCRIBE` use too."""
    return column.metadata.get("comment")


def _column_definition(column: T.StructField) -> str:
    """`name` type [COMMENT '...'] of DDL, the comment quoted as a Spark SQL string."""
    comment = _comment(column)
    quoted = comment.replace("\\", "\\\\").replace("'", "\\'") if comment else None
    return f"`{column.name}` {column.dataType.simpleString()}" + (f" COMMENT '{quoted}'" if quoted else "")


class IcebergTable:
    """An Iceberg table (format version 2, Snappy Parquet files) of a `TableSpec`."""

    def __init__(self, spark: SparkSession, spec: TableSpec | None, identifier: str, location: str | None,
                 name: str):
        self.spark, self.spec = spark, spec
        self.identifier, self.location, self.name = identifier, location, name

    @property
    def in_catalog(self) -> bool:
        """True for a catalog's table, False for a folder's."""
        return self._in_catalog

    @property
    def _in_catalog(self) -> bool:
        return not self.identifier.startswith(PATH_CATALOG_PREFIX)

    # --- the table ----------------------------------------------------------------------

    def exists(self) -> bool:
        return bool(self.spark.catalog.tableExists(self.identifier))

    def create_if_missing(self, mode: str | None = None) -> bool:
        """Make the table (recording `mode`) with the spec's column comments, or bring an
        older table to the spec: the columns it lacks added (their earlier rows read
        NULL), the comments it lacks or holds otherwise set; True if it was made."""
        if self.exists():
            found = {f.name: f for f in self.spark.table(self.identifier).schema.fields}
            for column in self.spec.schema.fields:
                if column.name not in found:
                    self.spark.sql(f"ALTER TABLE {self.identifier} ADD COLUMN {_column_definition(column)}")
            self._set_comments({
                f.name: _comment(f) for f in self.spec.schema.fields
                if f.name in found and _comment(f) and _comment(f) != _comment(found[f.name])
            })
            return False
        if self._in_catalog:
            self.spark.sql(f"CREATE DATABASE IF NOT EXISTS {self.identifier.rsplit('.', 1)[0]}")
        columns = ", ".join(_column_definition(f) for f in self.spec.schema.fields)
        partitions = self.spec.partitioned_by
        settings = {
            "format-version": "2",
            # As Parquet files are commonly written (and Athena reads): Iceberg's default is zstd.
            "write.parquet.compression-codec": "snappy",
            **self.spec.properties,
            **({SEMANTICS_PROPERTY: mode} if mode else {}),
        }
        self.spark.sql(
            f"CREATE TABLE IF NOT EXISTS {self.identifier} ({columns}) USING iceberg "
            + (f"PARTITIONED BY ({', '.join(partitions)}) " if partitions else "")
            + (f"LOCATION '{self.location}' " if self._in_catalog else "")
            + "TBLPROPERTIES (" + ", ".join(f"'{k}'='{v}'" for k, v in settings.items()) + ")"
        )
        return True

    def _set_comments(self, comments: dict[str, str]) -> None:
        """The columns' comments set in one commit of the table's metadata (Iceberg's
        field docs): no snapshot, no row changed; none when `comments` is empty."""
        if not comments:
            return
        update = self._iceberg_table().updateSchema()
        for name, comment in comments.items():
            update = update.updateColumnDoc(name, comment)
        update.commit()

    def recorded_mode(self) -> str | None:
        """The `--semantics` the table's rows were computed with (None: no table yet)."""
        if not self.exists():
            return None
        # The table's own properties, on the driver (`SHOW TBLPROPERTIES` is a query).
        found = self._iceberg_table().properties().get(SEMANTICS_PROPERTY)
        return str(found) if found is not None else None

    def record_mode(self, mode: str) -> None:
        self.spark.sql(f"ALTER TABLE {self.identifier} SET TBLPROPERTIES ('{SEMANTICS_PROPERTY}'='{mode}')")

    def read(self, where: Column | None = None, snapshot_id: int | None = None,
             options: dict[str, str] | None = None) -> DataFrame:
        """The table's rows (of `where`), as of `snapshot_id` or its current snapshot;
        `options`: Iceberg's read options (`COUNTING_READ`)."""
        reader = self.spark.read.options(**(options or {}))
        if snapshot_id is not None:
            reader = reader.option("snapshot-id", str(snapshot_id))
        rows = reader.table(self.identifier)
        return rows if where is None else rows.where(where)

    def snapshot_id(self, ref: str = "main") -> int | None:
        """The snapshot `ref` (a branch or tag) points at; None: no such ref (no commit
        yet). From the table's current metadata on the driver: a query of its `refs`
        table would run a Spark job, and a run asks several times."""
        table = self._iceberg_table()
        table.refresh()  # a catalog that caches tables (Glue's default) may hold an older version
        found = table.snapshot(ref)
        return int(found.snapshotId()) if found is not None else None

    def _iceberg_table(self):
        """Iceberg's own `Table` as the session's catalog gives it."""
        return storage.java_class(self.spark, "org.apache.iceberg.spark.Spark3Util").loadIcebergTable(
            self.spark._jsparkSession, self.identifier)

    def overwrite(self, rows: DataFrame, where: Column, properties: dict[str, str]) -> int | None:
        """`rows` in place of the table's rows of `where`, in one commit on `main`; the
        new snapshot's id."""
        rows.writeTo(self.identifier).options(**properties).overwrite(where)
        return self.snapshot_id()

    def replace(self, rows: DataFrame, properties: dict[str, str], read_snapshot: int | None) -> None:
        """Every row of the (unpartitioned) table replaced by `rows` in one commit, which
        fails, changing nothing, if anyone committed since `read_snapshot`."""
        options = dict(properties)
        if read_snapshot is not None:
            options.update({"isolation-level": "serializable", "validate-from-snapshot-id": str(read_snapshot)})
        rows.writeTo(self.identifier).options(**options).overwritePartitions()

    def replace_schema(self, rows: DataFrame, properties: dict[str, str]) -> None:
        """The table's schema and rows replaced in one commit (`REPLACE TABLE AS SELECT`),
        for a table an earlier version wrote with other columns; it keeps its location,
        properties and history."""
        (rows.writeTo(self.identifier).using("iceberg")
         .tableProperty("format-version", "2").tableProperty("write.parquet.compression-codec", "snappy")
         .options(**properties).createOrReplace())

    def call(self, procedure: str, **args: str) -> list:
        """`CALL <catalog>.system.<procedure>(table => ..., **args)` (values as SQL)."""
        first, _, rest = self.identifier.partition(".")
        catalog_name, table = (first, rest) if not self._in_catalog else (SESSION_CATALOG, self.identifier)
        named = ", ".join([f"table => '{table}'", *(f"{k} => {v}" for k, v in args.items())])
        return self.spark.sql(f"CALL {catalog_name}.system.{procedure}({named})").collect()

    def begin(self, run_id: str) -> "TableRun":
        return TableRun(self, run_id)

    def planned_partitions(self, wanted: list[dict[str, int]]) -> tuple[list[tuple], int | None, dict]:
        """The partitions of the current snapshot's files that match one of `wanted`
        (column: value equalities), the snapshot's id and its summary, from the table's
        metadata: manifests read on the driver, no Spark job (the dry run's question)."""
        table = self._iceberg_table()
        snapshot = table.currentSnapshot()
        if snapshot is None:
            return [], None, {}
        expressions = storage.java_class(self.spark, "org.apache.iceberg.expressions.Expressions")
        either, both = getattr(expressions, "or"), getattr(expressions, "and")
        condition = expressions.alwaysFalse()
        for equalities in wanted:
            term = expressions.alwaysTrue()
            for column, value in equalities.items():
                term = both(term, expressions.equal(column, value))
            condition = either(condition, term)
        found = []
        values = storage.java_class(self.spark, "java.lang.Object")._java_lang_class  # once, not per file
        tasks = table.newScan().filter(condition).planFiles()
        try:
            iterator = tasks.iterator()
            while iterator.hasNext():
                partition = iterator.next().file().partition()
                found.append(tuple(partition.get(i, values) for i in range(partition.size())))
        finally:
            tasks.close()
        return found, int(snapshot.snapshotId()), dict(snapshot.summary())

    # --- the table's history -------------------------------------------------------------

    def _snapshots(self) -> dict[int, dict]:
        return {
            int(row["snapshot_id"]): {
                "parent": int(row["parent_id"]) if row["parent_id"] is not None else None,
                "summary": dict(row["summary"] or {}),
            }
            for row in self.spark.sql(f"SELECT snapshot_id, parent_id, summary FROM {self.identifier}.snapshots").collect()
        }

    def history(self) -> list[Commit]:
        """Every time `main` moved, oldest first: a run's commit, or a rollback to an
        earlier snapshot; the last one is the only `current`."""
        snapshots = self._snapshots()
        moves = self.spark.sql(
            f"SELECT made_current_at, snapshot_id FROM {self.identifier}.history ORDER BY made_current_at"
        ).collect()
        commits: list[Commit] = []
        heads: set[int] = set()  # where `main` has been so far
        for row in moves:
            head = int(row["snapshot_id"])
            summary = snapshots.get(head, {}).get("summary", {})
            run_id = summary.get(RUN_ID)
            previous = commits[-1].snapshot_id if commits else None
            back = previous is not None and _went_back(snapshots, previous, head, heads)
            heads.add(head)
            commits.append(Commit(
                # collect() gives the host's local time; the history is told in UTC
                made_current_at=row["made_current_at"].astimezone(dt.timezone.utc).replace(tzinfo=None),
                snapshot_id=head,
                before_snapshot_id=previous if back else _base(snapshots, head, run_id),
                run_id=None if back else run_id,
                rollback=back,
                rollback_to_run=run_id if back else None,
                days=None if back else summary.get(RUN_DAYS),
                semantics=None if back else summary.get(RUN_SEMANTICS),
                rows=int(summary.get("total-records", 0)),
                current=len(commits) == len(moves) - 1,
            ))
        return commits

    def rollback_to_snapshot(self, snapshot_id: int) -> None:
        if snapshot_id not in self._snapshots():
            raise TableHistoryError(f"snapshot {snapshot_id} is not in {self.name}'s history")
        self.call("rollback_to_snapshot", snapshot_id=str(snapshot_id))

    def rollback_run(self, run_id: str) -> Commit:
        """Make the table read as it was before `run_id`'s commit; returns that commit."""
        commits = [c for c in self.history() if c.run_id == run_id]
        if not commits:
            raise TableHistoryError(f"run {run_id} made no commit in {self.name}'s history")
        commit = commits[0]
        if commit.before_snapshot_id is None:
            raise TableHistoryError(f"run {run_id} made the table's first snapshot: nothing to restore")
        self.rollback_to_snapshot(commit.before_snapshot_id)
        return commit

    def run_branches(self, older_than: str) -> list[str]:
        """The branches of runs (`TableRun`) committed before `older_than` (SQL time)."""
        return [
            row["name"] for row in self.spark.sql(
                f"SELECT r.name FROM {self.identifier}.refs r "
                f"JOIN {self.identifier}.snapshots s ON r.snapshot_id = s.snapshot_id "
                f"WHERE r.type = 'BRANCH' AND r.name LIKE '{RUN_BRANCH_PREFIX}%' "
                f"AND s.committed_at < TIMESTAMP '{older_than}'"
            ).collect()
        ]

    def drop_branch(self, name: str) -> None:
        self.spark.sql(f"ALTER TABLE {self.identifier} DROP BRANCH IF EXISTS `{name}`")


def _went_back(snapshots: dict[int, dict], previous: int, head: int, earlier_heads: set[int]) -> bool:
    """Whether `main`'s move from `previous` to `head` was a rollback. A commit, or a
    fast-forward over a run's branch, moves it to a new snapshot that descends from
    `previous`; any other move (back to where it was before, to an ancestor, off its
    line) is a rollback."""
    if head in earlier_heads:
        return True
    line, whole = _ancestors(snapshots, head)
    if previous in line:
        return False
    # An expired snapshot cuts the line: only a move to an ancestor of `previous` is sure.
    return whole or head in _ancestors(snapshots, previous)[0]


def _ancestors(snapshots: dict[int, dict], snapshot_id: int) -> tuple[set[int], bool]:
    """The snapshots `snapshot_id` descends from, and whether that line is whole (down
    to the table's first snapshot, none of it expired)."""
    found: set[int] = set()
    snapshot = snapshot_id
    while snapshot in snapshots:
        parent = snapshots[snapshot]["parent"]
        if parent is None:
            return found, True
        found.add(parent)
        snapshot = parent
    return found, False


def _base(snapshots: dict[int, dict], head: int, run_id: str | None) -> int | None:
    """The snapshot before the run's first commit (its commits are a chain on `main`)."""
    snapshot = head
    while run_id and snapshot in snapshots:
        parent = snapshots[snapshot]["parent"]
        if parent is None or snapshots.get(parent, {}).get("summary", {}).get(RUN_ID) != run_id:
            return parent
        snapshot = parent
    return snapshots.get(head, {}).get("parent")


@dataclass(frozen=True)
class PartitionFiles:
    """One partition's data files as a snapshot lists them."""

    partition: object  # its values (a tuple), or as the caller names it
    files: int
    bytes: int
    rows: int = 0  # the rows its data files hold
    updated_by: int | None = None  # the snapshot that last added a file to it


@dataclass(frozen=True)
class DataFile:
    """One data file of a snapshot, as its manifest entry lists it."""

    partition: tuple  # its partition's values
    rows: int
    bytes: int
    added_by: int  # the snapshot that added it
    sequence: int  # that snapshot's data sequence number: later commits have higher ones
    metrics: dict[str, dict]  # per column: `value_count`, `null_value_count`, ... (None: none recorded)


def partitions_of(files: list[DataFile]) -> dict[tuple, PartitionFiles]:
    """`files` (`TableRun.files`) per partition, as `TableRun.partitions` gives them."""
    grouped: dict[tuple, list[DataFile]] = {}
    for file in files:
        grouped.setdefault(file.partition, []).append(file)
    return {
        partition: PartitionFiles(partition, len(group), sum(f.bytes for f in group), sum(f.rows for f in group),
                                  max(group, key=lambda f: f.sequence).added_by)
        for partition, group in grouped.items()
    }


def added_by(partitions: dict[tuple, PartitionFiles], snapshot_id: int) -> set[tuple]:
    """Of a snapshot's `partitions` (`TableRun.partitions`), those `snapshot_id`, the
    snapshot itself, added files to: the latest to add one to them (a snapshot's files
    come from it or from earlier ones)."""
    return {partition for partition, files in partitions.items() if files.updated_by == snapshot_id}


class TableRun:
    """A run's changes on a branch of its own (`traffic_run_<run id>`): `main`, which
    readers see, moves once, at `publish`, or not at all (`abandon`)."""

    def __init__(self, table: IcebergTable, run_id: str):
        self.table, self.run_id = table, run_id
        self.branch = RUN_BRANCH_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", run_id)
        self._created = False
        self._base: int | None = None

    @property
    def _on_branch(self) -> str:
        return f"{self.table.identifier}.`branch_{self.branch}`"

    @property
    def base_snapshot_id(self) -> int | None:
        """`main`'s snapshot when the run began its branch: what readers saw before it."""
        return self._base

    def branch_off(self) -> None:
        """Make the run's branch from `main` (once; the first write does it otherwise).
        A run makes it while its plan is built (0.3 s of a daily run)."""
        if not self._created:
            self.table.spark.sql(f"ALTER TABLE {self.table.identifier} CREATE BRANCH `{self.branch}`")
            self._created = True
            self._base = self.table.snapshot_id(self.branch)  # main's head the run began from

    def overwrite_partitions(self, rows: DataFrame, properties: dict[str, str]) -> int | None:
        """`rows` replace the partitions they hold, on the branch; the branch's snapshot."""
        self.branch_off()
        rows.writeTo(self._on_branch).options(**properties).overwritePartitions()
        return self.table.snapshot_id(self.branch)

    def overwrite(self, rows: DataFrame, where: Column, properties: dict[str, str]) -> int | None:
        """`rows` replace the rows of `where`, on the branch; the branch's snapshot."""
        self.branch_off()
        rows.writeTo(self._on_branch).options(**properties).overwrite(where)
        return self.table.snapshot_id(self.branch)

    def partitions(self, snapshot_id: int) -> dict[tuple, PartitionFiles]:
        """Every partition of `snapshot_id` with its files' count, size and rows, and the
        snapshot that last added a file to it (one read of the table's metadata, without
        the files' metrics: `files` has those)."""
        listed = self.table.spark.sql(
            f"SELECT partition, file_count, total_data_file_size_in_bytes AS bytes, record_count, "
            f"last_updated_snapshot_id FROM {self.table.identifier}.partitions VERSION AS OF {snapshot_id}"
        )
        return {
            tuple(row["partition"]): PartitionFiles(
                tuple(row["partition"]), int(row["file_count"]), int(row["bytes"]), int(row["record_count"]),
                int(row["last_updated_snapshot_id"]) if row["last_updated_snapshot_id"] is not None else None)
            for row in listed.collect()
        }

    def head(self) -> int | None:
        """The branch's snapshot: what `publish` would make current."""
        return self.table.snapshot_id(self.branch)

    def files(self, snapshot_id: int, where: Column | None = None) -> list[DataFile]:
        """Each data file of `snapshot_id` (of `where`, on the columns `partition.<name>`):
        its partition, rows, size, the snapshot that added it, and the metrics it recorded
        per column, from the table's metadata (one read of its `entries`: what the run's
        partitions and its quality check both need). Delete files (an Athena `DELETE`
        writes them) are not listed, as in `partitions`' file counts."""
        listed = self.table.spark.sql(
            f"SELECT data_file.partition AS partition, data_file.record_count AS rows, "
            f"data_file.file_size_in_bytes AS bytes, snapshot_id, sequence_number, readable_metrics "
            f"FROM {self.table.identifier}.entries VERSION AS OF {snapshot_id} "
            f"WHERE status < 2 AND data_file.content = 0"  # status 2: removed; content 0: data
        )
        return [
            DataFile(tuple(row["partition"]), int(row["rows"]), int(row["bytes"]), int(row["snapshot_id"]),
                     int(row["sequence_number"]), row["readable_metrics"].asDict(recursive=True))
            for row in (listed if where is None else listed.where(where)).collect()
        ]

    def read(self, where: Column | None = None, options: dict[str, str] | None = None) -> DataFrame:
        """The branch's rows (of `where`) as the run's writes left them: what `publish`
        would show; `options` as `IcebergTable.read`'s."""
        if not self._created:
            raise RuntimeError(f"run {self.run_id} has written nothing on its branch yet")
        return self.table.read(where, snapshot_id=self.table.snapshot_id(self.branch), options=options)

    def publish(self) -> int | None:
        """The one commit readers see: `main` moves to the branch's head, or, if another
        writer moved `main` since the branch was made, nothing happens and this fails.
        The branch is dropped; the new current snapshot's id."""
        try:
            self.table.call("fast_forward", branch="'main'", to=f"'{self.branch}'")
        except Exception as error:
            head = self.table.snapshot_id()
            if head == self._base:
                raise  # not another writer
            raise ConcurrentWriteError(
                f"another writer committed to {self.table.name} while this run was writing (main "
                f"moved from snapshot {self._base} to {head}): nothing of this run was published; "
                "run it again"
            ) from error
        self.abandon()
        return self.table.snapshot_id()

    def abandon(self) -> None:
        """Drop the run's branch (its files go with the next snapshot expiry)."""
        if self._created and self.table.exists():
            self.table.drop_branch(self.branch)
        self._created = False
