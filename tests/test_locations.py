"""The locations table (docs/SEMANTICS.md, "The locations table"): a run's rows from the
configuration snapshots it used and its unconfigured lanes, the merge into the table,
and the table's two formats, on hand-made snapshots worked out by hand.
The job's use of it is in tests/test_job.py and tests/test_configured_locations.py."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from pyspark.sql import types as T

from tests.factories import frame
from tests.job_helpers import iceberg_table
from traffic_glue.compute import configuration as C
from traffic_glue.store import locations as L
from traffic_glue.store import curated as curated_table
from traffic_glue.store import storage, tables
from traffic_glue.compute.configuration import ConfiguredLane, Snapshot
from traffic_glue.runtime.report import RunReport

APRIL_1 = int(dt.datetime(2020, 4, 1, tzinfo=dt.timezone.utc).timestamp())  # 1585699200
NOON_7 = int(dt.datetime(2020, 4, 7, 12, tzinfo=dt.timezone.utc).timestamp())  # 1586260800
APRIL_9, APRIL_10 = APRIL_1 + 8 * 86400, APRIL_1 + 9 * 86400


def _lane(lane_id, road, kind, longitude, latitude, km=94.692) -> ConfiguredLane:
    return ConfiguredLane(lane_id=lane_id, lane_name=f"H437L{lane_id % 100:02d}", place="Parking Kruibeke",
                          road=road, unit_id=437, kilometre_point=km, lane_type=kind,
                          longitude=longitude, latitude=latitude)


# One cabinet (lve_nr 437) at the A14's km 94.692: both directions, a merging lane of
# direction 1 and a wrong-way lane of direction 2 (no location). Positions chosen so
# that the means are exact: (4.25 + 4.75) / 2 = 4.5, (51.0 + 51.5) / 2 = 51.25.
FIRST = Snapshot("miv-config-2020-04-01.xml.gz", dt.datetime(2020, 4, 1, tzinfo=dt.timezone.utc), (
    _lane(1201, "A0140001", "R10", 4.25, 51.0),
    _lane(1202, "A0140001", "R11", 4.75, 51.5),
    _lane(1203, "A0140002", "R10", 4.0, 51.2),
    _lane(1206, "A0140002", "TR10", 4.0, 51.2),
    _lane(1207, "A0140001", "R09", 4.1, 51.3),
))
# At 2020-04-07 12:00 lane 1202 moves to direction 2: (4.75 + 4.0) / 2 = 4.375, (51.5 + 51.2) / 2 = 51.35.
MOVED = Snapshot("miv-config-2020-04-07T120000Z.xml.gz", dt.datetime(2020, 4, 7, 12, tzinfo=dt.timezone.utc), (
    _lane(1201, "A0140001", "R10", 4.25, 51.0),
    _lane(1202, "A0140002", "R11", 4.75, 51.5),
    _lane(1203, "A0140002", "R10", 4.0, 51.2),
    _lane(1206, "A0140002", "TR10", 4.0, 51.2),
    _lane(1207, "A0140001", "R09", 4.1, 51.3),
))
DIRECTION_1 = C.location_id("A0140001|m94692|main")
DIRECTION_2 = C.location_id("A0140002|m94692|main")
MERGING_1 = C.location_id("A0140001|m94692|merge")
NAME_1 = "A14 km 94.7 (Parking Kruibeke), direction 1"
NAME_2 = "A14 km 94.7 (Parking Kruibeke), direction 2"


def _lanes(*lane_ids) -> list[dict]:
    kinds = {1201: "R10", 1202: "R11", 1203: "R10", 1207: "R09"}
    return [{"unieke_id": n, "beschrijvende_id": f"H437L{n % 100:02d}", "lane_type": kinds[n], "lve_nr": 437}
            for n in lane_ids]


def _row(location_id, label, road, direction, group, longitude, latitude, lanes, valid_from, valid_to,
         snapshot) -> dict:
    return {
        "location_id": location_id, "label": label, "road": road, "road_name": "A14",
        "direction": direction, "lane_group": group, "kilometre_point": 94.692,
        "place": "Parking Kruibeke", "longitude": longitude, "latitude": latitude, "lanes": lanes,
        "valid_from": valid_from, "valid_to": valid_to, "configuration": snapshot,
    }


def _first(valid_to) -> list[dict]:
    """FIRST's three locations (the TR lane 1206 is none), ending at `valid_to`."""
    return [
        _row(DIRECTION_1, NAME_1, "A0140001", 1, "main", 4.5, 51.25, _lanes(1201, 1202),
             APRIL_1, valid_to, FIRST.name),
        _row(MERGING_1, NAME_1 + ", merging and exit lanes", "A0140001", 1, "merge", 4.1, 51.3,
             _lanes(1207), APRIL_1, valid_to, FIRST.name),
        _row(DIRECTION_2, NAME_2, "A0140002", 2, "main", 4.0, 51.2, _lanes(1203), APRIL_1, valid_to,
             FIRST.name),
    ]


def _moved(valid_to=None) -> list[dict]:
    return [
        _row(DIRECTION_1, NAME_1, "A0140001", 1, "main", 4.25, 51.0, _lanes(1201), NOON_7, valid_to,
             MOVED.name),
        _row(MERGING_1, NAME_1 + ", merging and exit lanes", "A0140001", 1, "merge", 4.1, 51.3,
             _lanes(1207), NOON_7, valid_to, MOVED.name),
        _row(DIRECTION_2, NAME_2, "A0140002", 2, "main", 4.375, 51.35, _lanes(1202, 1203), NOON_7,
             valid_to, MOVED.name),
    ]


def _unconfigured(lane_id) -> dict:
    return {
        "location_id": -lane_id, "label": f"lane {lane_id} (not in the configuration)", "road": None,
        "road_name": None, "direction": None, "lane_group": None, "kilometre_point": None, "place": None,
        "longitude": None, "latitude": None,
        "lanes": [{"unieke_id": lane_id, "beschrijvende_id": None, "lane_type": None, "lve_nr": None}],
        "valid_from": None, "valid_to": None, "configuration": None,
    }


def _key(row: dict) -> tuple:
    return row["location_id"], -(2**62) if row["valid_from"] is None else row["valid_from"]


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=_key)


def test_the_ids_are_those_of_the_keys():
    """docs/SEMANTICS.md gives one id by hand: the A14, direction 1, at Parking Kruibeke."""
    assert C.location_id("A0140001|m94692|main") == DIRECTION_1 == 398698145
    digest = hashlib.sha256(b"A0140002|m94692|main").digest()
    assert DIRECTION_2 == int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
    assert len({DIRECTION_1, DIRECTION_2, MERGING_1}) == 3


# --- a run's rows ---------------------------------------------------------------------------


def test_rows_of_one_snapshot_name_its_locations_without_the_wrong_way_lane():
    """A single file (no time): in force always, so valid_from and valid_to are open."""
    single = Snapshot("c.xml", None, FIRST.lanes)
    expected = [{**row, "valid_from": None, "configuration": "c.xml"} for row in _first(None)]
    assert _sorted(L.rows_of([single])) == _sorted(expected)
    assert 1206 not in [lane["unieke_id"] for row in L.rows_of([single]) for lane in row["lanes"]]


def test_two_snapshots_give_each_location_a_version_valid_until_the_next():
    expected = _sorted(_first(NOON_7) + _moved(None))
    assert _sorted(L.rows_of([FIRST, MOVED])) == expected
    assert _sorted(L.rows_of([MOVED, FIRST])) == expected  # whatever order they come in
    # A run that read only the later one does not know the earlier one.
    assert _sorted(L.rows_of([MOVED])) == _sorted(_moved(None))


def test_a_lane_no_snapshot_holds_is_a_row_of_its_own_without_a_version():
    rows = L.rows_of([FIRST], (957, 12))
    assert _sorted(rows) == _sorted(_first(None) + [_unconfigured(957), _unconfigured(12)])
    # Without a configuration, only such rows.
    assert L.rows_of([], (957,)) == [_unconfigured(957)]
    assert L.rows_of([]) == []


def test_label_of_takes_each_locations_latest_version():
    rows = L.rows_of([FIRST, MOVED], (957,)) + [
        {**_first(NOON_7)[0], "valid_from": APRIL_1 - 86400, "label": "an older name"},
    ]
    assert L.label_of(rows) == {
        DIRECTION_1: NAME_1, DIRECTION_2: NAME_2, MERGING_1: NAME_1 + ", merging and exit lanes",
        -957: "lane 957 (not in the configuration)",
    }


def test_rows_go_through_a_frame_unchanged(spark):
    rows = L.merge([], L.rows_of([FIRST, MOVED], (957,)))
    located = L.as_frame(spark, rows)
    assert located.schema.fieldNames() == L.LOCATIONS_SCHEMA.fieldNames()
    assert dict(located.dtypes)["valid_from"] == "timestamp"
    assert located.rdd.getNumPartitions() == 1
    assert L.as_rows(located) == rows


# --- the merge ------------------------------------------------------------------------------


def test_merge_into_no_table_is_the_runs_rows_in_key_order():
    run = L.rows_of([MOVED, FIRST], (957,))
    assert L.merge([], run) == _sorted(run) == _sorted(_first(NOON_7) + _moved() + [_unconfigured(957)])


def test_merge_replaces_a_row_of_the_same_location_and_version_and_keeps_the_others():
    old_name = {**_first(None)[0], "label": "A14 km 94.7, direction 1", "lanes": _lanes(1201)}
    elsewhere = {**_row(7, "somewhere else", "A0120001", 1, "main", 4.4, 51.2, [], APRIL_1, None,
                        "miv-config-2020-04-01.xml.gz"), "road_name": "A12"}
    table = _sorted([old_name, elsewhere, _unconfigured(957)])
    merged = L.merge(table, L.rows_of([FIRST], (957,)))
    # The run's version of DIRECTION_1 replaces the old one (its name and lanes);
    # a location the run did not see, and the unconfigured lane, stay.
    assert merged == _sorted(_first(None) + [elsewhere, _unconfigured(957)])
    assert len(merged) == 5


def test_a_known_end_stays_and_of_two_ends_the_earlier_is_kept():
    # A run that read a third snapshot (of April 10) knew MOVED's end.
    table = L.merge([], [{**row, "valid_to": APRIL_10} for row in _moved()])
    # A run that read FIRST and MOVED only does not know it: the end stays.
    assert L.merge(table, L.rows_of([FIRST, MOVED])) == _sorted(_first(NOON_7) + _moved(APRIL_10))
    # One that knows an earlier end (a snapshot of April 9): the earlier is kept.
    earlier = [{**row, "valid_to": APRIL_9} for row in _moved()]
    assert L.merge(table, earlier) == _sorted(_moved(APRIL_9))
    assert L.merge(L.merge([], earlier), table) == _sorted(_moved(APRIL_9))
    # FIRST's open end becomes known once a run reads MOVED.
    assert L.merge(L.rows_of([FIRST]), L.rows_of([FIRST, MOVED])) == _sorted(_first(NOON_7) + _moved())


def test_merge_is_idempotent_and_order_free():
    a = L.rows_of([FIRST], (957,))
    b = L.rows_of([FIRST, MOVED])
    c = [{**row, "valid_to": APRIL_10} for row in L.rows_of([MOVED])] + L.rows_of([], (12,))
    once = L.merge(L.merge(L.merge([], a), b), c)
    assert once == _sorted(_first(NOON_7) + _moved(APRIL_10) + [_unconfigured(957), _unconfigured(12)])
    assert L.merge(once, a) == L.merge(once, b) == L.merge(once, c) == once
    for order in ((b, c, a), (c, a, b), (c, b, a), (b, a, c), (a, c, b)):
        table = []
        for rows in order:
            table = L.merge(table, rows)
        assert table == once
    assert L.merge([], a + b + c) == L.merge([], c + b + a) == once


def test_changes_count_locations_versions_new_ids_and_configurations():
    before = L.merge([], L.rows_of([FIRST]))
    after = L.merge(before, L.rows_of([FIRST, MOVED], (957,)))
    assert L.changes(before, after) == {
        "locations": 4, "versions": 7, "new_locations": 1,  # -957
        "configurations": [FIRST.name, MOVED.name],
    }
    assert L.changes([], before) == {"locations": 3, "versions": 3, "new_locations": 3,
                                     "configurations": [FIRST.name]}
    assert L.changes(after, after)["new_locations"] == 0
    assert L.changes([], L.rows_of([], (957,))) == {"locations": 1, "versions": 1, "new_locations": 1,
                                                    "configurations": []}


# --- the two formats ------------------------------------------------------------------------


def _epoch(moment) -> int | None:
    """Iceberg's timestamptz reads as an aware UTC time; Parquet's INT96 as naive UTC."""
    if moment is None:
        return None
    return int(moment.replace(tzinfo=dt.timezone.utc).timestamp())


def _read(folder) -> list[tuple]:
    """The table's rows read without Spark: (location_id, version's file, lanes, from, to)."""
    rows = iceberg_table(folder).scan().to_arrow().to_pylist()
    return sorted(
        (r["location_id"], r["configuration"], [lane["unieke_id"] for lane in r["lanes"]],
         _epoch(r["valid_from"]), _epoch(r["valid_to"]))
        for r in rows
    )


def _summary(rows: list[dict]) -> list[tuple]:
    return sorted((r["location_id"], r["configuration"], [lane["unieke_id"] for lane in r["lanes"]],
                   r["valid_from"], r["valid_to"]) for r in rows)


def _digests(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _store(spark, run_id: str, curated: str):
    """The locations table beside the curated table at the folder `curated`."""
    return L.open_store(spark, run_id, curated_table.open_table(spark, path=curated))


def test_record_replaces_the_table_and_a_rerun_changes_nothing(spark, tmp_path):
    curated = storage.qualified(spark, str(tmp_path / "curated"))
    folder = tmp_path / "curated" / "_locations"
    store = _store(spark, "run-1", curated)
    said = L.record(store, L.rows_of([FIRST], ()))
    assert said == {"table": f"{curated}/_locations", "changed": True, "locations": 3, "versions": 3,
                    "new_locations": 3, "configurations": [FIRST.name]}
    assert _read(folder) == _summary(_first(None))
    # Read back through the store: every column as written.
    assert _store(spark, "reader", curated).read() == _sorted(_first(None))
    table = iceberg_table(folder)
    snapshot = table.current_snapshot().snapshot_id
    assert table.current_snapshot().summary["traffic-glue.run-id"] == "run-1"
    assert table.metadata.format_version == 2
    assert [f.name for f in table.schema().fields] == L.LOCATIONS_SCHEMA.fieldNames()
    before = _digests(folder)

    again = L.record(_store(spark, "run-2", curated), L.rows_of([FIRST], ()))
    assert again == {**said, "changed": False, "new_locations": 0}
    assert _digests(folder) == before  # not even a commit
    assert iceberg_table(folder).current_snapshot().snapshot_id == snapshot

    later = L.record(_store(spark, "run-3", curated), L.rows_of([FIRST, MOVED], (957,)))
    assert later == {"table": f"{curated}/_locations", "changed": True, "locations": 4, "versions": 7,
                     "new_locations": 1, "configurations": [FIRST.name, MOVED.name]}
    assert _read(folder) == _summary(_first(NOON_7) + _moved() + [_unconfigured(957)])
    assert iceberg_table(folder).current_snapshot().summary["traffic-glue.run-id"] == "run-3"
    # A run that read only the first snapshot again changes nothing: FIRST's end stays known.
    last = L.record(_store(spark, "run-4", curated), L.rows_of([FIRST], (957,)))
    assert last["changed"] is False and last["versions"] == 7
    assert _read(folder) == _summary(_first(NOON_7) + _moved() + [_unconfigured(957)])


def test_an_iceberg_write_fails_if_another_run_committed_since_the_read(spark, tmp_path):
    curated = storage.qualified(spark, str(tmp_path / "curated"))
    L.record(_store(spark, "run-1", curated), L.rows_of([FIRST], ()))
    slow = _store(spark, "run-2", curated)
    read = slow.read()
    L.record(_store(spark, "run-3", curated), L.rows_of([FIRST, MOVED], ()))
    with pytest.raises(Exception, match="[Ff]ound conflicting files"):
        slow.write(L.merge(read, L.rows_of([FIRST], (957,))))
    # run-3's versions stay; run-2 changed nothing (no -957).
    table = iceberg_table(tmp_path / "curated" / "_locations")
    assert _read(tmp_path / "curated" / "_locations") == _summary(_first(NOON_7) + _moved())
    assert table.current_snapshot().summary["traffic-glue.run-id"] == "run-3"


# The earlier `lve_nr` rule's table: a row per lve_nr, its lanes with first and last seen.
_SEEN_LANE = T.StructType([
    T.StructField("unieke_id", T.IntegerType()), T.StructField("beschrijvende_id", T.StringType()),
    T.StructField("first_seen", T.TimestampType()), T.StructField("last_seen", T.TimestampType()),
])
OLD_SCHEMA = T.StructType([
    T.StructField("location_id", T.IntegerType()), T.StructField("lve_nr", T.IntegerType()),
    T.StructField("lanes", T.ArrayType(_SEEN_LANE)),
    T.StructField("first_seen", T.TimestampType()), T.StructField("last_seen", T.TimestampType()),
])


def _old_schema_table(spark, tmp_path):
    """A locations table of the earlier `lve_nr` rule, with one section: the curated
    table's location and the locations table's folder."""
    curated = storage.qualified(spark, str(tmp_path / "curated"))
    folder = tmp_path / "curated" / "_locations"
    identifier = tables.path_table(spark, f"{curated}/{L.FOLDER}")
    spark.sql(f"CREATE TABLE {identifier} (location_id int, lve_nr int, "
              "lanes array<struct<unieke_id:int,beschrijvende_id:string,first_seen:timestamp,last_seen:timestamp>>, "
              "first_seen timestamp, last_seen timestamp) USING iceberg TBLPROPERTIES ('format-version'='2')")
    seen = dt.datetime.fromtimestamp(APRIL_1, dt.timezone.utc)
    frame(spark, [(18, 18, [(957, "H018L57", seen, seen)], seen, seen)], OLD_SCHEMA) \
        .writeTo(identifier).append()
    return curated, folder


def test_an_old_schema_iceberg_table_is_replaced_in_one_commit_keeping_its_history(spark, tmp_path):
    curated, folder = _old_schema_table(spark, tmp_path)
    old_snapshot = iceberg_table(folder).current_snapshot().snapshot_id

    said = L.record(_store(spark, "run-1", curated), L.rows_of([FIRST], ()))

    # The old table's rows do not count as locations of this rule: all three are new.
    assert said == {"table": f"{curated}/_locations", "changed": True, "locations": 3, "versions": 3,
                    "new_locations": 3, "configurations": [FIRST.name]}
    table = iceberg_table(folder)
    assert [f.name for f in table.schema().fields] == L.LOCATIONS_SCHEMA.fieldNames()
    assert _read(folder) == _summary(_first(None))
    assert table.current_snapshot().summary["traffic-glue.run-id"] == "run-1"
    # The old rows stay in the table's history.
    assert old_snapshot in [s.snapshot_id for s in table.snapshots()]
    history = table.scan(snapshot_id=old_snapshot).to_arrow().to_pylist()
    assert [(r["location_id"], r["lve_nr"], [lane["unieke_id"] for lane in r["lanes"]]) for r in history] \
        == [(18, 18, [957])]
    # The next run reads the new table as it is: a rerun changes nothing.
    again = L.record(_store(spark, "run-2", curated), L.rows_of([FIRST], ()))
    assert again["changed"] is False
    assert iceberg_table(folder).current_snapshot().snapshot_id == table.current_snapshot().snapshot_id


def test_an_old_schema_iceberg_table_is_replaced_by_one_commit(spark, tmp_path):
    """docs/SEMANTICS.md, "What a run records": `CREATE OR REPLACE`, one commit. Readers
    see the old table, then the new one with its rows; never a table of the new schema
    without them (nor does a run that dies in between leave one)."""
    curated, folder = _old_schema_table(spark, tmp_path)
    versions = len(iceberg_table(folder).metadata.metadata_log)

    L.record(_store(spark, "run-1", curated), L.rows_of([FIRST], ()))

    table = iceberg_table(folder)
    assert _read(folder) == _summary(_first(None))
    # Every table version since the old one holds the new rows.
    assert len(table.metadata.metadata_log) == versions + 1
    # The new schema's comments come with it, those of the times too.
    assert (table.schema().find_field("valid_to").doc
            == "End of this configuration version (excluded): the next snapshot's time the run read, UTC; NULL: open")


def test_the_report_summary_says_it_in_one_line():
    report = RunReport("r1", "job", {}, "2020-04-08T01:00:00+00:00")
    report.output = {"path": "/out", "locations": {
        "table": "traffic.locations", "changed": True, "locations": 2389, "versions": 2401,
        "new_locations": 12, "configurations": ["miv-config-2020-04-01.xml.gz", "miv-config-2020-04-07.xml.gz"]}}
    lines = [line for line in report.summary().splitlines() if "locations:" in line]
    assert lines == [
        "  locations: 2,389 locations (12 new; 2,401 rows over configuration versions) in traffic.locations"]
    report.output["locations"].update(versions=2389, new_locations=2389)
    assert "  locations: 2,389 locations (2,389 new) in traffic.locations" in report.summary()
    report.output["locations"].update(changed=False, new_locations=0)
    assert "  locations: 2,389 locations (unchanged) in traffic.locations" in report.summary()
