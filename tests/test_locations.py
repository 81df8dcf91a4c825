"""The locations table (docs/SEMANTICS.md, "The locations table"): a run's lanes, the
merge into the table, and the table's two formats, on inline rows worked out by hand.
The job's use of it is in tests/test_job.py."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality

from tests.factories import T0, raw_reading
from tests.job_helpers import iceberg_table
from traffic_glue import locations as L
from traffic_glue import publish, storage
from traffic_glue import schema as S
from traffic_glue.config import ATHENA, CORRECTED
from traffic_glue.report import RunReport

DAY_END = T0 + 86400  # the run's days: 2020-04-07


def _at(epoch: int) -> dt.datetime:
    """An instant for Spark (aware: a naive one would be read in this host's zone)."""
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)


def _raw(spark, rows: list[dict]):
    return spark.createDataFrame(rows, S.RAW_SCHEMA)


def _named(row: dict, name) -> dict:
    return {**row, S.LANE_NAME: name}


def _lanes(spark, rows):
    return spark.createDataFrame(
        [(unit, lane, name, _at(first), _at(last)) for unit, lane, name, first, last in rows],
        L.SEEN_LANES_SCHEMA,
    )


def _table(spark, sections):
    """Table rows from (lve_nr, [(lane, name, first, last), ...])."""
    rows = []
    for unit, lanes in sections:
        entries = [(lane, name, _at(first), _at(last)) for lane, name, first, last in lanes]
        rows.append((unit, unit, entries, min(e[2] for e in entries), max(e[3] for e in entries)))
    return spark.createDataFrame(rows, L.LOCATIONS_SCHEMA)


# --- a run's lanes ------------------------------------------------------------------------


def test_seen_lanes_records_each_section_a_lane_reports_for(spark):
    noon = T0 + 12 * 3600
    rows = [
        # Lane 957 reports for lve 18 until noon, then for lve 19 (at noon for both).
        raw_reading(957, 18, T0 + 600), raw_reading(957, 18, noon),
        raw_reading(957, 19, noon), raw_reading(957, 19, noon + 3600),
        # Defect and unknown-occupancy readings say where a lane reports all the same.
        raw_reading(50, 18, T0 + 60, defect=1), raw_reading(51, 18, T0 + 120, occupancy=-1),
        # Not the run's days: the lookback hour before, and the next day (a late folder).
        raw_reading(52, 18, T0 - 60), raw_reading(957, 18, DAY_END),
        # No section, or no lane: says nothing.
        {**raw_reading(53, 18, T0 + 60), S.UNIT_ID: None},
        {**raw_reading(54, 18, T0 + 60), S.LANE_ID: None},
    ]
    result = L.seen_lanes(_raw(spark, rows), T0, DAY_END)
    expected = _lanes(spark, [
        (18, 50, "H018L50", T0 + 60, T0 + 60),
        (18, 51, "H018L51", T0 + 120, T0 + 120),
        (18, 957, "H018L57", T0 + 600, noon),
        (19, 957, "H019L57", noon, noon + 3600),
    ])
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_seen_lanes_takes_the_name_of_the_latest_reading_that_has_one(spark):
    rows = [
        _named(raw_reading(11, 1, T0), "H001L10"),
        _named(raw_reading(11, 1, T0 + 60), "H001L11"),
        # The latest reading carries no name: the one before it names the lane.
        _named(raw_reading(11, 1, T0 + 120), None),
        # Two names at the latest time: the largest.
        _named(raw_reading(21, 2, T0), "H002L21"),
        _named(raw_reading(21, 2, T0 + 60), "H002L20"),
        _named(raw_reading(21, 2, T0 + 60), "H002L22"),
        # None at all.
        _named(raw_reading(31, 3, T0), None),
    ]
    result = L.seen_lanes(_raw(spark, rows), T0, DAY_END)
    expected = _lanes(spark, [
        (1, 11, "H001L11", T0, T0 + 120),
        (2, 21, "H002L22", T0, T0 + 60),
        (3, 31, None, T0, T0),
    ])
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_seen_lanes_reads_text_as_validation_does(spark):
    """JSON lines carry text: ids and the time parse as validation parses them
    (an ISO time with its offset; `12.5` is no integer)."""
    rows = [
        {S.LANE_NAME: "H001L11", S.LANE_ID: "11", S.UNIT_ID: "+1",
         S.OBSERVED_AT: "2020-04-07T02:00:00+02:00"},
        {S.LANE_NAME: "H001L11", S.LANE_ID: "11", S.UNIT_ID: "1", S.OBSERVED_AT: str(T0 + 60)},
        {S.LANE_NAME: "H001L12", S.LANE_ID: "12.5", S.UNIT_ID: "1", S.OBSERVED_AT: str(T0)},
    ]
    text = spark.createDataFrame(rows, ", ".join(
        f"{name} string" for name in (S.LANE_NAME, S.LANE_ID, S.UNIT_ID, S.OBSERVED_AT)))
    result = L.seen_lanes(text, T0, DAY_END)
    assert_df_equality(result, _lanes(spark, [(1, 11, "H001L11", T0, T0 + 60)]),
                       ignore_nullable=True)


@pytest.mark.parametrize("semantics, chosen, units", [
    (CORRECTED, (19,), [19, 19]),      # corrected ids are lve_nr
    (ATHENA, (960,), [19, 19]),        # athena ids are lane ids: lane 960's section
    (ATHENA, (957,), [18, 18, 19, 19]),  # a lane of two sections
    (CORRECTED, None, [18, 18, 19, 19]),
])
def test_of_locations_keeps_the_sections_a_locations_run_replaces(spark, semantics, chosen, units):
    lanes = _lanes(spark, [(18, 50, "a", T0, T0), (18, 957, "b", T0, T0),
                           (19, 957, "c", T0, T0), (19, 960, "d", T0, T0)])
    result = L.of_locations(lanes, chosen, semantics)
    assert sorted(r[S.UNIT_ID] for r in result.collect()) == units


# --- the merge ----------------------------------------------------------------------------


def test_merge_into_no_table_makes_one_row_per_section(spark):
    lanes = _lanes(spark, [
        (18, 957, "H018L57", T0 + 600, T0 + 43200), (18, 50, "H018L50", T0 + 60, T0 + 60),
        (19, 957, "H019L57", T0 + 43200, T0 + 46800),
    ])
    expected = _table(spark, [
        (18, [(50, "H018L50", T0 + 60, T0 + 60), (957, "H018L57", T0 + 600, T0 + 43200)]),
        (19, [(957, "H019L57", T0 + 43200, T0 + 46800)]),
    ])
    assert_df_equality(L.merge(None, lanes), expected, ignore_row_order=True, ignore_nullable=True)


def test_merge_widens_the_lanes_seen_and_keeps_every_section(spark):
    day = 86400
    table = _table(spark, [
        (18, [(50, "H018L50", T0, T0 + 100), (957, "old", T0, T0 + day)]),
        (30, [(301, "H030L01", T0, T0 + 10)]),  # not seen by the run: stays as it is
    ])
    lanes = _lanes(spark, [
        (18, 957, "new", T0 + 50, T0 + 2 * day),   # later: its name wins, first_seen stays
        (18, 50, "later?", T0 - 60, T0 + 50),      # earlier first, older last: old name
        (19, 957, "H019L57", T0 + day, T0 + day),  # the lane reports for a new section too
    ])
    expected = _table(spark, [
        (18, [(50, "H018L50", T0 - 60, T0 + 100), (957, "new", T0, T0 + 2 * day)]),
        (19, [(957, "H019L57", T0 + day, T0 + day)]),
        (30, [(301, "H030L01", T0, T0 + 10)]),
    ])
    assert_df_equality(L.merge(table, lanes), expected, ignore_row_order=True, ignore_nullable=True)


def test_merge_is_idempotent_and_order_free(spark):
    first = _lanes(spark, [(18, 50, "H018L50", T0, T0 + 600), (19, 960, "x", T0, T0)])
    second = _lanes(spark, [(18, 957, "H018L57", T0 + 86400, T0 + 90000),
                            (18, 50, "H018L5O", T0 + 86400, T0 + 86400)])
    once = L.merge(L.merge(None, first), second)
    assert_df_equality(L.merge(once, second), once, ignore_row_order=True)
    assert_df_equality(L.merge(L.merge(None, second), first), once, ignore_row_order=True)
    assert_df_equality(L.merge(None, first.unionByName(second)), once, ignore_row_order=True)


def test_changes_name_new_sections_and_lanes_under_more_than_one_lve_nr(spark):
    table = _table(spark, [
        (18, [(50, "a", T0, T0), (957, "b", T0, T0)]),
        (19, [(957, "c", T0, T0), (960, "d", T0, T0)]),
        (20, [(960, "e", T0, T0)]),
    ])
    before = [{"lve_nr": 18, "lanes": []}, {"lve_nr": 20, "lanes": []}]
    assert L.changes(before, L.as_text(table)) == {
        "sections": 3, "new_sections": [19],
        "lanes_moved": [{"unieke_id": 957, "lve_nr": [18, 19]}, {"unieke_id": 960, "lve_nr": [19, 20]}],
    }


# --- the two formats ----------------------------------------------------------------------


def _rows_of_parquet(folder) -> list[dict]:
    return sorted(pq.read_table(folder).to_pylist(), key=lambda r: r[S.UNIT_ID])


@pytest.mark.parametrize("table_format", ["iceberg", "parquet"])
def test_record_replaces_the_table_and_a_rerun_changes_nothing(spark, tmp_path, table_format):
    curated = storage.qualified(spark, str(tmp_path / "curated"))
    lanes = _lanes(spark, [(18, 50, "H018L50", T0, T0 + 60), (19, 957, "H019L57", T0, T0)])
    store = L.open_store(spark, "run-1", table_format, curated, None)
    said = L.record(store, lanes)
    assert said == {"table": f"{curated}/_locations", "changed": True, "sections": 2,
                    "new_sections": [18, 19], "lanes_moved": []}
    folder = tmp_path / "curated" / "_locations"
    if table_format == "iceberg":
        table = iceberg_table(folder)
        snapshot = table.current_snapshot().snapshot_id
        assert table.current_snapshot().summary["traffic-glue.run-id"] == "run-1"
        rows = table.scan().to_arrow().to_pylist()
    else:
        rows = _rows_of_parquet(folder)
    assert [(r["location_id"], r["lve_nr"], [lane["unieke_id"] for lane in r["lanes"]])
            for r in sorted(rows, key=lambda r: r["lve_nr"])] == [(18, 18, [50]), (19, 19, [957])]

    again = L.record(L.open_store(spark, "run-2", table_format, curated, None), lanes)
    assert again["changed"] is False and again["new_sections"] == []
    if table_format == "iceberg":
        assert iceberg_table(folder).current_snapshot().snapshot_id == snapshot
    more = _lanes(spark, [(18, 957, "H018L57", T0 + 86400, T0 + 86400)])
    moved = L.record(L.open_store(spark, "run-3", table_format, curated, None), more)
    assert moved["changed"] is True
    assert moved["lanes_moved"] == [{"unieke_id": 957, "lve_nr": [18, 19]}]


def test_an_iceberg_write_fails_if_another_run_committed_since_the_read(spark, tmp_path):
    curated = storage.qualified(spark, str(tmp_path / "curated"))
    lanes = _lanes(spark, [(18, 50, "H018L50", T0, T0 + 60)])
    L.record(L.open_store(spark, "run-1", "iceberg", curated, None), lanes)
    slow = L.open_store(spark, "run-2", "iceberg", curated, None)
    read = slow.read()
    L.record(L.open_store(spark, "run-3", "iceberg", curated, None),
             _lanes(spark, [(19, 957, "H019L57", T0, T0)]))
    with pytest.raises(Exception, match="[Ff]ound conflicting files"):
        slow.write(L.merge(read, _lanes(spark, [(20, 960, "x", T0, T0)])))
    units = [r["lve_nr"] for r in iceberg_table(tmp_path / "curated" / "_locations").scan().to_arrow().to_pylist()]
    assert sorted(units) == [18, 19]  # run-3's section stays; run-2 changed nothing


def test_a_parquet_swap_cut_short_is_finished_by_the_next_run(spark, tmp_path):
    """The folder is swapped under the curated table's journal: a run that died between
    its renames leaves a journal that the next run's `publish.recover` carries out."""
    curated = storage.qualified(spark, str(tmp_path / "curated"))
    store = L.open_store(spark, "run-1", "parquet", curated, None)
    L.record(store, _lanes(spark, [(18, 50, "H018L50", T0, T0 + 60)]))
    # run-2 staged its table and wrote its journal, moved the old folder aside, and died.
    newer = L.merge(store.read(), _lanes(spark, [(19, 957, "H019L57", T0, T0)])).localCheckpoint()
    swap = "run-2-locations"
    newer.write.parquet(f"{publish.staging_dir(curated, swap)}/{L.FOLDER}")
    storage.write_json(spark, f"{curated}/{publish.JOURNAL}/{swap}.json",
                       {"run_id": swap, "replace": [L.FOLDER], "remove": []})
    storage.rename(spark, f"{curated}/{L.FOLDER}", f"{curated}/{publish.TRASH}/{swap}/{L.FOLDER}")
    assert not (tmp_path / "curated" / "_locations").exists()
    assert publish.recover(spark, curated) == [swap]
    assert [r["lve_nr"] for r in _rows_of_parquet(tmp_path / "curated" / "_locations")] == [18, 19]


def test_the_report_summary_says_it_in_one_line():
    report = RunReport("r1", "job", {}, "2020-04-08T01:00:00+00:00")
    report.output = {"path": "/out", "locations": {
        "table": "traffic.locations", "changed": True, "sections": 1934,
        "new_sections": list(range(1, 8)),
        "lanes_moved": [{"unieke_id": 900 + n, "lve_nr": [n, n + 1]} for n in range(7)]}}
    lines = [line for line in report.summary().splitlines() if "locations:" in line]
    assert lines == [
        "  locations: 1,934 sections (7 new: 1, 2, 3, 4, 5, ...; lane 900 under lve_nr 0, 1; "
        "lane 901 under lve_nr 1, 2; lane 902 under lve_nr 2, 3; lane 903 under lve_nr 3, 4; "
        "lane 904 under lve_nr 4, 5; 7 lanes under more than one lve_nr in all) in traffic.locations"]
    report.output["locations"].update(changed=False, new_sections=[], lanes_moved=[])
    assert "  locations: 1,934 sections (unchanged) in traffic.locations" in report.summary()
