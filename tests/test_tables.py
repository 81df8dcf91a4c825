"""The table seam (`store/tables.py`): which targets it opens or refuses, a table's
recorded mode and added columns, a run's branch (nothing visible until the one commit,
a concurrent writer refused), and the history with its rollbacks.

Tables here are tiny (two columns, partitioned by one) and live in `tmp_path`, through
the file-based catalog of a folder; the catalog case is the jobs' tests' (test_s3 for
the Glue catalog, test_local_workflow for the local one).
"""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from tests.factories import frame
from traffic_glue.compute import schema as S
from traffic_glue.store import curated, locations, tables

SCHEMA = T.StructType([T.StructField("k", T.IntegerType()), T.StructField("part", T.IntegerType())])
SPEC = tables.TableSpec(kind="a test table", schema=SCHEMA, partitioned_by=("part",),
                        properties={"write.distribution-mode": "none"})


def _table(spark, tmp_path, name: str = "t") -> tables.IcebergTable:
    return tables.open_table(spark, SPEC, path=str(tmp_path / name))


def _rows(table: tables.IcebergTable, snapshot_id: int | None = None) -> list[tuple]:
    return sorted(tuple(r) for r in table.read(snapshot_id=snapshot_id).collect())


def _frame(spark, rows):
    return frame(spark, rows, SCHEMA)


def test_a_folder_opens_as_a_table_of_its_own_catalog_made_at_first_use(spark, tmp_path):
    table = _table(spark, tmp_path)
    assert table.identifier.startswith(tables.PATH_CATALOG_PREFIX) and table.identifier.endswith(".`t`")
    assert table.name == table.location == f"file:{tmp_path}/t"
    assert not table.in_catalog
    assert (table.exists(), table.recorded_mode(), (tmp_path / "t").exists()) == (False, None, False)

    assert table.create_if_missing("athena") is True
    assert table.create_if_missing("corrected") is False  # there already: the mode stays
    assert table.exists() and table.recorded_mode() == "athena"
    assert (tmp_path / "t" / "metadata" / "version-hint.text").is_file()
    properties = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table.identifier}").collect()}
    assert properties["format-version"] == "2"
    assert properties["write.parquet.compression-codec"] == "snappy"
    assert properties["write.distribution-mode"] == "none"
    assert properties[tables.SEMANTICS_PROPERTY] == "athena"
    table.record_mode("corrected")
    assert table.recorded_mode() == "corrected"


def test_an_older_table_gets_the_specs_new_columns_and_its_rows_read_null(spark, tmp_path):
    old = tables.open_table(spark, tables.TableSpec("old", T.StructType(SCHEMA.fields[:1])), path=str(tmp_path / "t"))
    old.create_if_missing()
    frame(spark, [(1,)], "k int").writeTo(old.identifier).append()
    newer = _table(spark, tmp_path)
    assert newer.create_if_missing() is False
    assert newer.read().columns == ["k", "part"]
    assert _rows(newer) == [(1, None)]


def _comments(table: tables.IcebergTable) -> dict[str, str | None]:
    """Each column's comment as `DESCRIBE TABLE` shows it (its rows before the partitions')."""
    found = {}
    for row in table.spark.sql(f"DESCRIBE TABLE {table.identifier}").collect():
        if not row["col_name"] or row["col_name"].startswith("#"):
            break
        found[row["col_name"]] = row["comment"]
    return found


def test_the_jobs_tables_are_made_with_a_comment_on_every_column(spark, tmp_path):
    minutes = tables.open_table(spark, curated.SPEC, path=str(tmp_path / "curated"))
    minutes.create_if_missing("corrected")
    described = _comments(minutes)
    assert list(described) == list(S.CURATED_TABLE_SCHEMA.fieldNames())
    assert [name for name, comment in described.items() if not comment] == []
    assert described["recordtimestamp"] == "Time of the measurement (tijd_waarneming), epoch seconds UTC"
    assert described["trafficjamindicator"] == (
        "Jam indicator from avgspeed3minutes: 1 jam (0 to 40 km/h), 0 flowing (above 40 to 250 km/h; "
        "athena: 41 to 250), -1 unknown (NULL or outside these bands)")
    assert described["hour"] == "Partition: the UTC hour of recordtimestamp, 0..23"
    # A comment with quotes reaches the table as written.
    names = tables.open_table(spark, locations.SPEC, path=str(tmp_path / "locations"))
    names.create_if_missing()
    assert _comments(names)["label"] == (
        "The location as people read it: 'A14 km 94.7 (Parking Kruibeke), direction 1'; "
        "'lane 957 (not in the configuration)'")


COMMENTED = T.StructType([S.column("k", T.IntegerType(), "the key, in km/h"),
                          S.column("part", T.IntegerType(), "the part: 'p' \\ or \\n, not a new line")])


def test_an_older_tables_comments_are_set_in_one_metadata_commit_and_no_row_changes(spark, tmp_path):
    old = tables.open_table(spark, tables.TableSpec("old", T.StructType(SCHEMA.fields[:1])), path=str(tmp_path / "t"))
    old.create_if_missing()
    frame(spark, [(1,)], "k int").writeTo(old.identifier).append()
    snapshot = old.snapshot_id()

    def versions() -> int:  # of the table's metadata: one per commit
        return len(list((tmp_path / "t" / "metadata").glob("v*.metadata.json")))

    newer = tables.open_table(spark, tables.TableSpec("commented", COMMENTED), path=str(tmp_path / "t"))
    assert newer.create_if_missing() is False
    assert _comments(newer) == {"k": "the key, in km/h", "part": "the part: 'p' \\ or \\n, not a new line"}
    assert (_rows(newer), newer.snapshot_id()) == ([(1, None)], snapshot)
    # 1 made, 2 the row, 3 `part` added with its comment, 4 the comment of `k`.
    assert versions() == 4

    # Nothing missing: no commit at all.
    assert newer.create_if_missing() is False
    assert versions() == 4

    # A comment the spec words otherwise now is replaced, in one commit; the rest stays.
    reworded = T.StructType([S.column("k", T.IntegerType(), "the key, now in m/s"), COMMENTED["part"]])
    again = tables.open_table(spark, tables.TableSpec("reworded", reworded), path=str(tmp_path / "t"))
    assert again.create_if_missing() is False
    assert _comments(again) == {"k": "the key, now in m/s", "part": "the part: 'p' \\ or \\n, not a new line"}
    assert (_rows(again), again.snapshot_id(), versions()) == ([(1, None)], snapshot, 5)


def test_old_layouts_and_a_catalogs_folder_are_refused_in_one_line(spark, tmp_path):
    hour = tmp_path / "old" / "year=2020" / "month=4" / "day=7" / "hour=5"
    hour.mkdir(parents=True)
    (hour / "part-0.parquet").write_bytes(b"PAR1")
    with pytest.raises(tables.TableError) as refused:
        tables.open_table(spark, SPEC, path=str(tmp_path / "old"))
    assert str(refused.value) == (
        f"file:{tmp_path}/old holds Parquet folders (year=...) and no Iceberg table: bring it in "
        f"with python -m tools.table migrate --target_path file:{tmp_path}/old"
    )
    # A catalog's table: metadata named 00000-<uuid>.metadata.json, no version hint.
    metadata = tmp_path / "cataloged" / "metadata"
    metadata.mkdir(parents=True)
    (metadata / "00000-0a1b.metadata.json").write_text("{}")
    with pytest.raises(tables.TableError, match=r"holds an Iceberg table of a catalog: give its name as "
                                                r"--source_table database.table"):
        tables.open_table(spark, SPEC, path=str(tmp_path / "cataloged"), argument="source")
    with pytest.raises(tables.TableError, match=r"^--target_table db.missing does not exist; give "
                                                r"--target_path too to create it there$"):
        tables.open_table(spark, SPEC, table="db.missing")
    with pytest.raises(tables.TableError, match=r"^--target_path or --target_table is required$"):
        tables.open_table(spark, SPEC)


def test_a_folders_table_whose_version_hint_a_killed_run_removed_still_opens_at_its_last_version(
        spark, tmp_path):
    """The file-based catalog replaces `version-hint.text` by delete-then-rename (two
    requests on S3): a run killed between them leaves no hint. Iceberg then reads the
    highest v<N>.metadata.json; the table is still the folder's table, not refused as a
    catalog's, and the next run writes on."""
    table = _table(spark, tmp_path)
    table.create_if_missing()
    table.overwrite(_frame(spark, [(1, 1)]), F.lit(True), tables.snapshot_properties("run-0"))
    table.overwrite(_frame(spark, [(2, 1)]), F.lit(True), tables.snapshot_properties("run-1"))
    metadata = tmp_path / "t" / "metadata"
    (metadata / "version-hint.text").unlink()
    assert sorted(p.name for p in metadata.glob("*.metadata.json")) == [
        "v1.metadata.json", "v2.metadata.json", "v3.metadata.json"]

    reopened = tables.open_table(spark, SPEC, path=str(tmp_path / "t"))
    assert _rows(reopened) == [(2, 1)]
    reopened.overwrite(_frame(spark, [(3, 1)]), F.lit(True), tables.snapshot_properties("run-2"))
    assert _rows(tables.open_table(spark, SPEC, path=str(tmp_path / "t"))) == [(3, 1)]
    assert (metadata / "version-hint.text").read_text().strip() == "4"


def test_a_partitions_files_add_up_and_the_last_to_add_one_updated_it():
    files = [tables.DataFile((1,), rows=10, bytes=100, added_by=7, sequence=2, metrics={}),
             tables.DataFile((2,), rows=1, bytes=10, added_by=4, sequence=1, metrics={}),
             tables.DataFile((1,), rows=5, bytes=50, added_by=9, sequence=3, metrics={}),
             tables.DataFile((1,), rows=2, bytes=20, added_by=3, sequence=1, metrics={})]
    assert tables.partitions_of(files) == {
        (1,): tables.PartitionFiles((1,), files=3, bytes=170, rows=17, updated_by=9),
        (2,): tables.PartitionFiles((2,), files=1, bytes=10, rows=1, updated_by=4),
    }
    assert tables.partitions_of([]) == {}


def test_a_snapshots_files_are_its_data_files_not_the_delete_files_a_delete_left(spark, tmp_path):
    """An Athena `DELETE` leaves position delete files beside the data files (merge on
    read): `files` lists the data files alone, as `partitions` counts them."""
    table = _table(spark, tmp_path)
    table.create_if_missing()
    spark.sql(f"ALTER TABLE {table.identifier} SET TBLPROPERTIES ('write.delete.mode'='merge-on-read')")
    written = table.overwrite(_frame(spark, [(1, 1), (2, 1), (3, 2)]), F.lit(True), tables.snapshot_properties("run-0"))
    spark.sql(f"DELETE FROM {table.identifier} WHERE k = 2")
    head = table.snapshot_id()
    deletes = spark.sql(f"SELECT count(*) FROM {table.identifier}.entries WHERE data_file.content = 1").first()[0]
    assert deletes == 1 and _rows(table) == [(1, 1), (3, 2)]

    run = table.begin("run-1")
    files = run.files(head)
    assert sorted((f.partition, f.rows, f.added_by) for f in files) == [((1,), 2, written), ((2,), 1, written)]
    # The data files' count, size and rows, as `partitions` has them (which dates (1,) by
    # the delete's snapshot: it added a delete file there).
    counted = {p: (f.files, f.bytes, f.rows) for p, f in run.partitions(head).items()}
    assert {p: (f.files, f.bytes, f.rows) for p, f in tables.partitions_of(files).items()} == counted


def test_a_runs_changes_are_invisible_until_its_one_commit(spark, tmp_path):
    table = _table(spark, tmp_path)
    table.create_if_missing()
    base = table.overwrite(_frame(spark, [(1, 1), (2, 2)]), F.lit(True), tables.snapshot_properties("run-0"))

    run = table.begin("2026-12-04T10:00 run/1")
    assert run.branch == "traffic_run_2026_12_04T10_00_run_1"
    head = run.overwrite_partitions(_frame(spark, [(3, 2), (4, 3)]), tables.snapshot_properties("run-1", "d", "corrected"))
    assert tables.added_by(run.partitions(head), head) == {(2,), (3,)}
    assert {p: (f.files, f.bytes > 0, f.updated_by) for p, f in run.partitions(head).items()} == {
        (1,): (1, True, base), (2,): (1, True, head), (3,): (1, True, head)}  # (1,) as main had it
    # Its files, with the snapshot that added each (main's file of (1,) is the base's).
    files = run.files(head)
    assert sorted((f.partition, f.rows, f.added_by) for f in files) == [
        ((1,), 1, base), ((2,), 1, head), ((3,), 1, head)]
    assert tables.partitions_of(files) == run.partitions(head)
    assert [f.metrics["k"]["upper_bound"] for f in sorted(files, key=lambda f: f.partition)] == [1, 3, 4]
    # The files of some partitions only: a filter on the columns `partition.<name>`.
    assert sorted(f.partition for f in run.files(head, F.col("partition.part") >= 2)) == [(2,), (3,)]
    assert [f.partition for f in run.files(head, F.col("partition.part") == 1)] == [(1,)]
    # Readers of main see nothing of the run yet.
    assert table.snapshot_id() == base and _rows(table) == [(1, 1), (2, 2)]
    assert _rows(table, snapshot_id=head) == [(1, 1), (3, 2), (4, 3)]

    published = run.publish()
    assert published == head == table.snapshot_id()
    assert _rows(table) == [(1, 1), (3, 2), (4, 3)]
    assert table.snapshot_id(run.branch) is None  # the branch is dropped
    summary = spark.sql(f"SELECT summary FROM {table.identifier}.snapshots WHERE snapshot_id = {head}").first()[0]
    assert (summary[tables.RUN_ID], summary[tables.RUN_DAYS], summary[tables.RUN_SEMANTICS]) == ("run-1", "d", "corrected")


def test_an_abandoned_run_leaves_main_and_no_branch(spark, tmp_path):
    table = _table(spark, tmp_path)
    table.create_if_missing()
    base = table.overwrite(_frame(spark, [(1, 1)]), F.lit(True), {})
    run = table.begin("run-2")
    run.overwrite(_frame(spark, []), F.col("part") == 1, {})
    run.abandon()
    run.abandon()  # twice: nothing left to drop
    assert table.snapshot_id() == base and _rows(table) == [(1, 1)]
    assert [r["name"] for r in spark.sql(f"SELECT name FROM {table.identifier}.refs").collect()] == ["main"]


def test_a_run_that_another_writer_beat_to_the_commit_says_so_and_changes_nothing(spark, tmp_path):
    table = _table(spark, tmp_path)
    table.create_if_missing()
    base = table.overwrite(_frame(spark, [(1, 1)]), F.lit(True), {})
    slow = table.begin("slow")
    slow.overwrite_partitions(_frame(spark, [(9, 1)]), {})
    other = table.overwrite(_frame(spark, [(5, 1)]), F.lit(True), {})  # commits first

    with pytest.raises(tables.ConcurrentWriteError) as lost:
        slow.publish()
    assert str(lost.value) == (
        f"another writer committed to {table.name} while this run was writing (main moved from "
        f"snapshot {base} to {other}): nothing of this run was published; run it again"
    )
    assert table.snapshot_id() == other and _rows(table) == [(5, 1)]
    slow.abandon()
    assert table.snapshot_id(slow.branch) is None


def test_history_names_each_runs_commit_and_a_rollback_restores_the_table_before_it(spark, tmp_path):
    table = _table(spark, tmp_path)
    table.create_if_missing()
    first = table.overwrite(_frame(spark, [(1, 1)]), F.lit(True), tables.snapshot_properties("run-a", "d1", "athena"))
    run = table.begin("run-b")
    run.overwrite_partitions(_frame(spark, [(2, 1)]), tables.snapshot_properties("run-b", "d1", "athena"))
    # Two commits of run-b on its branch: its base is still run-a's snapshot.
    run.overwrite_partitions(_frame(spark, [(3, 2)]), tables.snapshot_properties("run-b", "d1", "athena"))
    second = run.publish()

    commits = table.history()
    assert [(c.run_id, c.snapshot_id, c.before_snapshot_id, c.rows, c.current) for c in commits] == [
        ("run-a", first, None, 1, False), ("run-b", second, first, 2, True)]

    restored = table.rollback_run("run-b")
    assert restored.before_snapshot_id == first
    assert table.snapshot_id() == first and _rows(table) == [(1, 1)]
    with pytest.raises(tables.TableHistoryError, match="^run run-x made no commit in "):
        table.rollback_run("run-x")
    with pytest.raises(tables.TableHistoryError, match="made the table's first snapshot: nothing to restore"):
        table.rollback_run("run-a")
    with pytest.raises(tables.TableHistoryError, match=r"^snapshot 42 is not in .*'s history$"):
        table.rollback_to_snapshot(42)


def publish_run(table: tables.IcebergTable, run_id: str, days: str, *commits: list[tuple]) -> list[int]:
    """`run_id`'s commits (each replacing the partitions of its rows) on its branch, then
    its one commit on main; the snapshot of each commit."""
    run = table.begin(run_id)
    heads = [run.overwrite_partitions(_frame(table.spark, rows), tables.snapshot_properties(run_id, days, "athena"))
             for rows in commits]
    assert run.publish() == heads[-1]
    return heads


def _moves(table: tables.IcebergTable) -> list[tuple]:
    return [(c.run_id, c.rollback, c.rollback_to_run, c.snapshot_id, c.before_snapshot_id, c.days, c.semantics,
             c.rows, c.current) for c in table.history()]


def first_snapshot(table: tables.IcebergTable) -> int:
    """The empty snapshot the first run's branch was made on (a branch needs one; main
    never shows it)."""
    [found] = table.spark.sql(f"SELECT snapshot_id FROM {table.identifier}.snapshots WHERE parent_id IS NULL").collect()
    return int(found[0])


def test_history_marks_a_rollback_and_only_the_latest_move_of_main_is_current(spark, tmp_path):
    table = _table(spark, tmp_path)
    table.create_if_missing()
    [a] = publish_run(table, "run-a", "d1", [(1, 1)])
    [b] = publish_run(table, "run-b", "d2", [(2, 2)])  # adds part 2: 2 rows
    empty = first_snapshot(table)
    assert table.rollback_run("run-b").snapshot_id == b
    # main is back at run-a's snapshot: its second time there, a rollback, and the only current.
    assert _moves(table) == [
        ("run-a", False, None, a, empty, "d1", "athena", 1, False),
        ("run-b", False, None, b, a, "d2", "athena", 2, False),
        (None, True, "run-a", a, b, None, None, 1, True),
    ]

    [c] = publish_run(table, "run-c", "d3", [(3, 1), (4, 1)])  # from run-a's snapshot: part 1 replaced, 2 rows
    assert _moves(table) == [
        ("run-a", False, None, a, empty, "d1", "athena", 1, False),
        ("run-b", False, None, b, a, "d2", "athena", 2, False),
        (None, True, "run-a", a, b, None, None, 1, False),
        ("run-c", False, None, c, a, "d3", "athena", 2, True),
    ]
    times = [commit.made_current_at for commit in table.history()]
    assert times == sorted(times) and len(set(times)) == 4

    assert table.rollback_run("run-c").before_snapshot_id == a
    assert table.snapshot_id() == a and _rows(table) == [(1, 1)]
    assert _moves(table)[3:] == [
        ("run-c", False, None, c, a, "d3", "athena", 2, False),
        (None, True, "run-a", a, c, None, None, 1, True),
    ]
    # rollback_run takes a run's own commit, not a rollback to its snapshot (whose
    # before_snapshot_id, b or c, would bring a later run back).
    undone = table.rollback_run("run-a")
    assert (undone.snapshot_id, undone.before_snapshot_id, undone.rollback) == (a, empty, False)
    assert table.snapshot_id() == empty and _rows(table) == []
    assert _moves(table)[5:] == [(None, True, None, empty, a, None, None, 0, True)]  # no run made it


def test_a_rollback_to_a_snapshot_main_never_showed_is_marked_too(spark, tmp_path):
    table = _table(spark, tmp_path)
    table.create_if_missing()
    [a] = publish_run(table, "run-a", "d1", [(1, 1)])
    b1, b2 = publish_run(table, "run-b", "d2", [(2, 2)], [(3, 3)])  # main jumps from a to b2
    table.rollback_to_snapshot(b1)  # an ancestor of b2 that main never pointed at
    assert _moves(table) == [
        ("run-a", False, None, a, first_snapshot(table), "d1", "athena", 1, False),
        ("run-b", False, None, b2, a, "d2", "athena", 3, False),
        (None, True, "run-b", b1, b2, None, None, 2, True),
    ]


# Snapshot -> parent, by hand: 1 <- 2 <- 3 and 2 <- 4 (two lines from 2); 5 expired, 6 on it, 7 on 6.
LINES = {1: None, 2: 1, 3: 2, 4: 2, 6: 5, 7: 6}


@pytest.mark.parametrize("previous, head, earlier_heads, rollback", [
    (1, 2, {1}, False),  # a commit on main
    (1, 3, {1}, False),  # a fast-forward over a run's two commits
    (3, 2, {1, 3}, True),  # back to an ancestor main never pointed at
    (3, 1, {1, 3}, True),  # back to where main was
    (3, 4, {1, 3}, True),  # off main's line
    (2, 3, {1, 3, 2}, True),  # forward again to where main was before a rollback
    (1, 6, {1}, False),  # 6's line is cut at 5: not known to be off 1's line
    (7, 6, {7}, True),  # 6 is an ancestor of 7, though 6's line is cut
])
def test_a_move_of_main_is_a_rollback_unless_it_reaches_a_new_descendant(previous, head, earlier_heads, rollback):
    snapshots = {snapshot: {"parent": parent, "summary": {}} for snapshot, parent in LINES.items()}
    assert tables._went_back(snapshots, previous, head, earlier_heads) is rollback


def test_planned_partitions_come_from_the_metadata_alone(spark, tmp_path):
    table = _table(spark, tmp_path)
    table.create_if_missing()
    assert table.planned_partitions([{"part": 1}]) == ([], None, {})  # no snapshot yet
    snapshot = table.overwrite(_frame(spark, [(1, 1), (2, 2), (3, 3)]), F.lit(True), {})
    found, at, summary = table.planned_partitions([{"part": 1}, {"part": 3}, {"part": 7}])
    assert (sorted(found), at, summary["total-records"]) == ([(1,), (3,)], snapshot, "3")


@pytest.mark.parametrize("file_bytes, cores, split", [
    ([1_000] * 24, 2, 6 << 20),  # a day's 24 small hour files, weighed 1 MB each: 4 tasks of 6
    ([1_000] * 24, 16, 1 << 20),  # more cores than files: one file a task, not less
    ([600_000] * 720, 2, 128 << 20),  # thirty days: 180 MB a task, cut to 128 MB (6 tasks)
    ([50_000] * 8_760, 2, 128 << 20),  # a year of small files: 69 tasks of 128, not 548 of 16
    ([300 << 20, 100 << 20], 2, 100 << 20),  # big files weigh their size: 400 MB over 4
    ([], 2, 1 << 20),  # nothing to read
])
def test_a_counting_read_takes_two_tasks_a_core_of_at_most_128_mb(file_bytes, cores, split):
    assert tables.counting_read(file_bytes, cores) == {"file-open-cost": str(1 << 20), "split-size": str(split)}
