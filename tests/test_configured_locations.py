"""`corrected` locations from the configuration, through the job (docs/SEMANTICS.md,
"Step 4: the location"): the real minute of the whole network, a jam in one direction,
and a lane that a later snapshot moves to the other carriageway."""

from __future__ import annotations

import datetime as dt
import gzip
from collections import Counter
from pathlib import Path

import pytest
from pyiceberg.table import StaticTable

from tests.factories import T0, land_parquet, raw_reading
from tests.job_helpers import last_report, run_job, table_rows
from tests.network import (
    CONFIGURATION, REAL_MINUTE_DAY, configured_lanes, documented_key, real_minute_readings,
)
from traffic_glue.compute import configuration as C
from traffic_glue.compute import schema as S

UID, TS, SPEED, JAM = 0, 1, 2, 5  # positions in `table_rows`' tuples


def _locations_table(target: Path) -> list[dict]:
    folder = target / "_locations" / "metadata"
    latest = max(folder.glob("*.metadata.json"), key=lambda p: p.stat().st_mtime)
    return StaticTable.from_metadata(str(latest)).scan().to_arrow().to_pylist()


# --- the real minute ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_minute(tmp_path_factory):
    """The traffic centre's minute 2017-04-27 14:38 (+01:00), every lane, run with the
    real configuration (one job run shared by the tests below)."""
    root = tmp_path_factory.mktemp("real-minute")
    land_parquet(root / "raw", real_minute_readings())
    day = REAL_MINUTE_DAY.isoformat()
    assert run_job(root / "raw", root / "out", day, day, "--configuration_path", str(CONFIGURATION)) == 0
    return table_rows(root / "out"), _locations_table(root / "out"), last_report(root / "out")


def test_no_location_of_the_real_minute_holds_lanes_of_two_road_references(real_minute):
    rows, table, _ = real_minute
    roads = {lane_id: lane["Ident_8"] for lane_id, lane in configured_lanes().items()}
    by_id = {row["location_id"]: row for row in table}
    written = {row[UID] for row in rows}
    assert written <= set(by_id)  # every lane of the minute is configured
    for location_id in written:
        assert len({roads[lane["unieke_id"]] for lane in by_id[location_id]["lanes"]}) == 1


def test_lve_nr_411s_slow_slip_road_is_a_location_of_its_own(real_minute):
    """lve_nr 411 (shared/data/README.md): the A12 in both directions at km 2.9 and
    slip roads. Speeds worked out by hand from the minute's readings (classes 2..5,
    count x speed over count per lane, then the lanes' mean)."""
    rows, _, _ = real_minute
    speed = {row[UID]: row[SPEED] for row in rows}
    slip_road = C.location_id("A0120441|m70|main")  # lanes 3084, 3085
    direction_1 = C.location_id("A0120001|m2888|main")  # lanes 3078-3080
    direction_2 = C.location_id("A0120002|m2892|main")  # lanes 3081-3083
    assert speed[slip_road] == pytest.approx((26 / 5 + 61 / 9) / 2)  # 5.99 km/h
    assert speed[direction_1] == pytest.approx((1343 / 12 + 124 + 148) / 3)  # 128.0
    assert speed[direction_2] == pytest.approx((337 / 4 + 711 / 7 + 123) / 3)  # 102.9
    # The lve_nr rule averaged all twelve lanes of 411 into one speed.


def test_the_real_minutes_locations_per_lane_group_and_its_wrong_way_readings(real_minute):
    rows, table, report = real_minute
    group = {row["location_id"]: row["lane_group"] for row in table}
    written = Counter(group[uid] for uid in {row[UID] for row in rows})
    # Counted apart from the job: the locations of the readings of the day (78 lanes
    # publish a stale minute of another day) that pass step 1.
    lanes = configured_lanes()
    start = int(dt.datetime(2017, 4, 27, tzinfo=dt.timezone.utc).timestamp())
    passing = [r for r in real_minute_readings() if r[S.DEFECT] == 0 and r[S.OCCUPANCY] > -1
               and start <= r[S.OBSERVED_AT] < start + 86400]
    measured = {documented_key(lanes[r[S.LANE_ID]]) for r in passing} - {None}
    assert written == Counter(g for _, _, g in measured) == {
        "main": 2158, "merge": 120, "B": 37, "P": 27, "W": 3, "A": 1,
    }
    kinds = {lane_id: lane["Rijstrook"] for lane_id, lane in lanes.items()}
    wrong_way = sum(1 for r in passing if kinds[r[S.LANE_ID]].startswith("TR"))
    assert report["readings"]["filtered"]["wrong_way_lane"] == wrong_way == 56
    assert report["readings"]["unconfigured"] == {"readings": 0, "lanes": 0}
    assert report["output"]["locations"]["locations"] == 2389


# --- a jam in one direction ------------------------------------------------------------------

# Cabinet 437 as the configuration has it, cut down: both directions of the A14 and a ramp.
CABINET = [
    (1201, "A0140001", "94,692", "R10"), (1202, "A0140001", "94,692", "R11"),
    (1203, "A0140002", "94,692", "R10"), (1204, "A0140002", "94,692", "R11"),
    (1205, "A0149402", "94,5", "R10"), (1206, "A0140002", "94,692", "TR10"),
]
JAMMED, FREE = 20, 110  # km/h


def _configuration(folder: Path, name: str, lanes) -> Path:
    points = "".join(
        f'<meetpunt unieke_id="{lane}"><Ident_8>{road}</Ident_8><lve_nr>437</lve_nr>'
        f"<Kmp_Rsys>{km}</Kmp_Rsys><Rijstrook>{kind}</Rijstrook>"
        "<volledige_naam>Parking Kruibeke</volledige_naam></meetpunt>"
        for lane, road, km, kind in lanes
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(gzip.compress(f"<mivconfig>{points}</mivconfig>".encode()))
    return path


def test_a_jam_in_one_direction_is_a_jam_there_and_nowhere_else(tmp_path):
    """Minutes 0..29 of a day; direction 1 of the A14 drives 20 km/h in minutes 10..19,
    every other lane 110 km/h all the time (the wrong-way lane too: it must not count)."""
    readings = [
        raw_reading(lane, 437, T0 + 60 * m,
                    speeds=(JAMMED if road == "A0140001" and 10 <= m <= 19 else FREE, 0, 0, 0))
        for m in range(30) for lane, road, _, _ in CABINET
    ]
    land_parquet(tmp_path / "raw", readings)
    configuration = _configuration(tmp_path / "configuration", "miv-config-2020-04-01.xml.gz", CABINET)
    assert run_job(tmp_path / "raw", tmp_path / "out", "2020-04-07", "2020-04-07",
                   "--configuration_path", str(configuration)) == 0
    rows = table_rows(tmp_path / "out")
    direction_1 = C.location_id("A0140001|m94692|main")
    # Every location's speed is the jammed or the free one: none lies between.
    assert {row[SPEED] for row in rows} == {JAMMED, FREE}
    jam_minutes = sorted((row[TS] - T0) // 60 for row in rows if row[JAM] == 1)
    # avgspeed3minutes over [t-120, t]: minute 10 is (110+110+20)/3 = 80, minute 11 is
    # (110+20+20)/3 = 50, minutes 12..19 are 20; minute 20 is (20+20+110)/3 = 50.
    assert jam_minutes == list(range(12, 20))
    assert {row[UID] for row in rows if row[JAM] == 1} == {direction_1}
    assert len({row[UID] for row in rows}) == 3  # two directions and the ramp


# --- a lane moved by a later snapshot ---------------------------------------------------------


def test_a_lane_moved_to_the_other_carriageway_reports_there_from_the_snapshots_time(tmp_path):
    """Lane 1202 is in direction 1 until the snapshot of 12:00 puts it in direction 2.
    Its readings of 11:58 and 11:59 go to direction 1, those of 12:00 and 12:01 to
    direction 2; both ids are those of the first snapshot."""
    noon = T0 + 12 * 3600
    first = [(1201, "A0140001", "94,692", "R10"), (1202, "A0140001", "94,692", "R11"),
             (1203, "A0140002", "94,692", "R10")]
    moved = [(1201, "A0140001", "94,692", "R10"), (1202, "A0140002", "94,692", "R11"),
             (1203, "A0140002", "94,692", "R10")]
    folder = tmp_path / "configuration"
    _configuration(folder, "miv-config-2020-04-01.xml.gz", first)
    _configuration(folder, "miv-config-2020-04-07T120000Z.xml.gz", moved)
    # 1201 drives 100, 1202 drives 60, 1203 drives 120.
    speeds = {1201: 100, 1202: 60, 1203: 120}
    minutes = [noon - 120, noon - 60, noon, noon + 60]
    land_parquet(tmp_path / "raw", [
        raw_reading(lane, 437, t, speeds=(speed, 0, 0, 0)) for t in minutes for lane, speed in speeds.items()
    ])
    assert run_job(tmp_path / "raw", tmp_path / "out", "2020-04-07", "2020-04-07",
                   "--configuration_path", str(folder)) == 0
    direction_1 = C.location_id("A0140001|m94692|main")
    direction_2 = C.location_id("A0140002|m94692|main")
    speed = {(row[UID], row[TS]): row[SPEED] for row in table_rows(tmp_path / "out")}
    assert speed == {
        (direction_1, noon - 120): 80.0, (direction_1, noon - 60): 80.0,  # (100 + 60) / 2
        (direction_2, noon - 120): 120.0, (direction_2, noon - 60): 120.0,
        (direction_1, noon): 100.0, (direction_1, noon + 60): 100.0,
        (direction_2, noon): 90.0, (direction_2, noon + 60): 90.0,  # (120 + 60) / 2
    }
    table = _locations_table(tmp_path / "out")
    versions = sorted((row["location_id"], row["configuration"], [l["unieke_id"] for l in row["lanes"]])
                      for row in table)
    assert versions == sorted([
        (direction_1, "miv-config-2020-04-01.xml.gz", [1201, 1202]),
        (direction_2, "miv-config-2020-04-01.xml.gz", [1203]),
        (direction_1, "miv-config-2020-04-07T120000Z.xml.gz", [1201]),
        (direction_2, "miv-config-2020-04-07T120000Z.xml.gz", [1202, 1203]),
    ])
    # A rerun of the same day changes neither table.
    before = (sorted(speed.items()), versions)
    assert run_job(tmp_path / "raw", tmp_path / "out", "2020-04-07", "2020-04-07",
                   "--configuration_path", str(folder)) == 0
    assert last_report(tmp_path / "out")["output"]["locations"]["changed"] is False
    again = {(row[UID], row[TS]): row[SPEED] for row in table_rows(tmp_path / "out")}
    assert (sorted(again.items()), sorted(
        (row["location_id"], row["configuration"], [l["unieke_id"] for l in row["lanes"]])
        for row in _locations_table(tmp_path / "out"))) == before


def test_a_lane_not_in_the_configuration_is_a_location_of_its_own_and_counted(tmp_path):
    configuration = _configuration(tmp_path / "configuration", "c.xml", CABINET[:2])
    land_parquet(tmp_path / "raw", [
        raw_reading(1201, 437, T0, speeds=(100, 0, 0, 0)),
        raw_reading(1202, 437, T0, speeds=(80, 0, 0, 0)),
        raw_reading(957, 437, T0, speeds=(30, 0, 0, 0)),  # same cabinet, not configured
    ])
    assert run_job(tmp_path / "raw", tmp_path / "out", "2020-04-07", "2020-04-07",
                   "--configuration_path", str(configuration)) == 0
    speed = {row[UID]: row[SPEED] for row in table_rows(tmp_path / "out")}
    assert speed == {C.location_id("A0140001|m94692|main"): 90.0, -957: 30.0}
    report = last_report(tmp_path / "out")
    assert report["readings"]["unconfigured"] == {"readings": 1, "lanes": 1}
    labels = {row["location_id"]: row["label"] for row in _locations_table(tmp_path / "out")}
    assert labels[-957] == "lane 957 (not in the configuration)"
    assert labels[C.location_id("A0140001|m94692|main")] == "A14 km 94.7 (Parking Kruibeke), direction 1"


# --- one road of every multi-road cabinet jams (tools/sample_data.py's scenario) ---------------


def test_one_jammed_road_of_every_multi_road_cabinet_is_a_jam_there_and_nowhere_else(tmp_path):
    """The sample generator's `--jam-one-road` day over whole cabinets of the real
    configuration: 07:00-09:00 UTC the through lanes of one road of every cabinet with
    several roads drive 15-30 km/h, every other lane 100-120 (duplicates, defects and
    missing minutes as in any sample)."""
    from tools import sample_data

    spec = sample_data.SampleSpec(start_date=dt.date(2020, 4, 7), lanes=120, jam_one_road=True)
    sample_data.generate(str(tmp_path / "raw"), spec)
    jammed = sample_data.one_road_jams(sample_data.sample_lanes(spec))
    assert len(jammed.location_ids) >= 10  # 437, 411 and more cabinets with several roads
    assert run_job(tmp_path / "raw", tmp_path / "out", "2020-04-07", "2020-04-07",
                   "--configuration_path", str(CONFIGURATION)) == 0
    rows = table_rows(tmp_path / "out")
    window_start = T0 + 7 * 3600
    # No location's speed lies between the jammed and the free speeds.
    assert all(r[SPEED] is None or 15 <= r[SPEED] <= 30 or 100 <= r[SPEED] <= 120 for r in rows)
    jams = [r for r in rows if r[JAM] == 1]
    # Only the jammed carriageways, and only in the window: from its second minute (a
    # minute missing just before it) to its last, the 3-minute mean holding no free one.
    assert {r[UID] for r in jams} == set(jammed.location_ids)
    assert all(window_start + 60 <= r[TS] < window_start + 7200 for r in jams)
    in_full_jam = [r for r in rows if r[UID] in jammed.location_ids
                   and window_start + 120 <= r[TS] < window_start + 7200]
    assert in_full_jam and all(r[JAM] == 1 for r in in_full_jam)


def test_a_lane_id_below_1_is_rejected_so_no_unconfigured_id_can_be_a_configured_one(tmp_path):
    """-398698145 negated is the id of the A14's direction 1 at Parking Kruibeke: such a
    lane id (and 0) is rejected as bad_unieke_id, never averaged into that location."""
    land_parquet(tmp_path / "raw", [
        raw_reading(1201, 437, T0, speeds=(100, 0, 0, 0)),
        raw_reading(-398698145, 437, T0, speeds=(10, 0, 0, 0)),
        raw_reading(0, 437, T0, speeds=(10, 0, 0, 0)),
    ])
    configuration = _configuration(tmp_path / "configuration", "c.xml", CABINET[:1])
    assert run_job(tmp_path / "raw", tmp_path / "out", "2020-04-07", "2020-04-07",
                   "--configuration_path", str(configuration)) == 0
    assert [(r[UID], r[SPEED]) for r in table_rows(tmp_path / "out")] == [(398698145, 100.0)]
    assert last_report(tmp_path / "out")["readings"]["rejected"] == {"bad_unieke_id": 2}
