"""The job run the way Glue runs it: the script with its arguments in `sys.argv`."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.factories import (
    NOON_8TH, RAW_ARROW_SCHEMA, T0, hour_folder, land_parquet, moving_lane_readings, raw_reading,
)
from tests.job_helpers import (
    iceberg_table, is_iceberg, last_report, partition_digests, run_job, table_rows,
)
from tools.sample_data import SampleSpec, copy_configuration, generate, sample_lanes
from traffic_glue.compute import configuration
from traffic_glue.compute import schema as S


LANDING = SampleSpec(start_date=dt.date(2020, 4, 6), days=4, lanes=16, seed=7,
                     duplicate_fraction=0.03, late_fraction=0.01)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    """Four days of 16 lanes with duplicates, defects, missing minutes and late arrivals."""
    root = tmp_path_factory.mktemp("landing")
    generate(str(root), LANDING)
    return root


@pytest.fixture(scope="module")
def landing_configuration(tmp_path_factory) -> str:
    """The configuration the landing's lanes come from (the real network's), as a snapshot."""
    return str(copy_configuration(LANDING, str(tmp_path_factory.mktemp("landing-configuration"))))


def test_a_day_alone_equals_that_day_of_a_three_day_run(landing, landing_configuration, tmp_path):
    with_configuration = ("--configuration_path", landing_configuration)
    assert run_job(landing, tmp_path / "three", "2020-04-07", "2020-04-09", *with_configuration) == 0
    assert run_job(landing, tmp_path / "one", "2020-04-08", "2020-04-08", *with_configuration) == 0
    alone = table_rows(tmp_path / "one")
    locations = {r[0] for r in alone}
    assert len(alone) > 0.95 * len(locations) * 1440  # a real day of minutes per location
    assert table_rows(tmp_path / "three", dt.date(2020, 4, 8)) == alone
    # The 16 lanes (cabinets 411 and 437) are 9 carriageways and ramps at their points,
    # every one configured: ids of the configuration's keys, none -unieke_id.
    assert locations == {configuration.location_id(key) for key in (
        "A0120001|m2888|main", "A0120002|m2892|main", "A0140001|m94692|main", "A0140002|m94695|main",
        "A0149411|m94798|main", "A0149411|m94417|main", "A0149402|m94488|main", "A0149402|m94904|W",
        "A0149402|m94904|main")}
    report = last_report(tmp_path / "one")
    assert report["readings"]["unconfigured"] == {"readings": 0, "lanes": 0}
    # The locations with the most jam minutes carry their names, as the locations table has them.
    labels = {row["location_id"]: row["label"]
              for row in iceberg_table(tmp_path / "one" / "_locations").scan().to_arrow().to_pylist()}
    assert report["top_jam_locations"]
    assert all(item["name"] == labels[item["uniqueid"]] for item in report["top_jam_locations"])


@pytest.fixture(scope="module")
def cabinets_landing(tmp_path_factory) -> Path:
    """As `landing`, with 40 lanes: six whole cabinets (lve_nr 4, 191, 211, 411, 437,
    549), so six `athena` series of a cabinet's largest lane (16 lanes are two cabinets)."""
    root = tmp_path_factory.mktemp("cabinets-landing")
    generate(str(root), SampleSpec(start_date=dt.date(2020, 4, 6), days=4, lanes=40, seed=7,
                                   duplicate_fraction=0.03, late_fraction=0.01))
    return root


def test_athena_day_alone_differs_only_where_the_lookback_lacks_19_rows(cabinets_landing, tmp_path):
    """docs/SEMANTICS.md: the lookback holds the preceding 19 rows of every series without a
    long gap there. Athena's per-minute id makes sparse series (an id that only shows
    when the larger lane is missing); only those may differ."""
    landing = cabinets_landing
    assert run_job(landing, tmp_path / "three", "2020-04-07", "2020-04-09",
                   "--semantics", "athena") == 0
    assert run_job(landing, tmp_path / "one", "2020-04-08", "2020-04-08",
                   "--semantics", "athena") == 0
    alone, inside = table_rows(tmp_path / "one"), table_rows(tmp_path / "three", dt.date(2020, 4, 8))
    midnight = T0 + 86400  # 2020-04-08 00:00Z
    rows_in_lookback = {}
    for row in table_rows(tmp_path / "three", dt.date(2020, 4, 7)):
        if row[1] >= midnight - 3600:
            rows_in_lookback[row[0]] = rows_in_lookback.get(row[0], 0) + 1
    dense = {loc for loc, n in rows_in_lookback.items() if n >= 19}
    assert len(dense) >= 5
    assert [r for r in alone if r[0] in dense] == [r for r in inside if r[0] in dense]
    differing = {r[0] for r in set(alone) ^ set(inside)}
    assert not differing & dense


def test_a_rerun_leaves_the_table_unchanged(landing, tmp_path):
    target = tmp_path / "curated"
    assert run_job(landing, target, "2020-04-07", "2020-04-07") == 0
    before = partition_digests(target)
    assert len(before) == 24 and all(len(files) == 1 for files in before.values())
    assert run_job(landing, target, "2020-04-07", "2020-04-07") == 0
    assert partition_digests(target) == before  # same partitions, same bytes, never twice


def test_a_run_replaces_only_its_days(landing, tmp_path):
    target = tmp_path / "curated"
    assert run_job(landing, target, "2020-04-07", "2020-04-08") == 0
    day_8 = {k: v for k, v in partition_digests(target).items() if "/day=8/" in k}
    assert run_job(landing, target, "2020-04-07", "2020-04-07", "--semantics", "athena",
                   "--replace_semantics", "true") == 0
    after = partition_digests(target)
    assert {k: v for k, v in after.items() if "/day=8/" in k} == day_8
    assert sorted(k for k in after if "/day=7/" in k) == [
        f"year=2020/month=4/day=7/hour={h}" for h in sorted(range(24), key=str)
    ]


@pytest.fixture(scope="module")
def day_7(landing, tmp_path_factory) -> Path:
    """The 7th alone, with the job's defaults, into a fresh table: one run that the tests
    taking it read and never change."""
    target = tmp_path_factory.mktemp("day-7") / "c"
    assert run_job(landing, target, "2020-04-07", "2020-04-07") == 0
    return target


def test_the_report_accounts_for_every_reading(day_7):
    report = last_report(day_7)
    readings = report["readings"]
    assert report["accounting_holds"] is True
    assert readings["read"] == readings["kept"] + readings["filtered_total"] + readings["rejected_total"]
    # The generator lands every reading valid: some are defect, some -1, some duplicates.
    assert readings["rejected_total"] == 0
    assert min(readings["filtered"][rule] for rule in ("defect", "unknown_occupancy", "duplicate")) > 0
    # Parquet footers' row counts are the readings read.
    assert sum(report["source"]["readings_per_file"].values()) == readings["read"]
    assert report["output"]["rows"] == len(table_rows(day_7))
    assert report["output"]["max_files_per_partition"] == 1
    # Without --configuration_path every lane is a location of its own: all 16 unconfigured.
    assert report["readings"]["unconfigured"] == {"readings": readings["kept"], "lanes": 16}
    assert report["readings"]["filtered"]["wrong_way_lane"] == 0
    assert {r[0] for r in table_rows(day_7)} == {-lane.lane_id for lane in sample_lanes(LANDING)}


def test_other_days_readings_skipped_on_statistics_still_count_as_read(tmp_path):
    noon = T0 + 12 * 3600
    day = [raw_reading(11, 1, noon + 60 * m) for m in range(3)]
    land_parquet(tmp_path / "raw", day)
    # The next day's readings, in a late folder: the file's statistics say none is ours.
    next_day = [raw_reading(11, 1, T0 + 86400 + 10 * 3600 + 60 * m) for m in range(5)]
    land_parquet(tmp_path / "raw", next_day, name="next.parquet")
    # Epoch milliseconds in the same column are no time: rejected, not skipped.
    in_millis = raw_reading(12, 1, noon * 1000)
    folder = hour_folder(tmp_path / "raw", noon)
    pq.write_table(pa.Table.from_pylist([in_millis], schema=RAW_ARROW_SCHEMA), folder / "ms.parquet")

    assert run_job(tmp_path / "raw", tmp_path / "c", "2020-04-07", "2020-04-07") == 0
    report = last_report(tmp_path / "c")
    readings = report["readings"]
    assert report["source"]["outside_days_skipped"] == 5
    assert readings["read"] == 3 + 5 + 1 == sum(report["source"]["readings_per_file"].values())
    assert readings["filtered"]["outside_days"] == 5
    assert readings["rejected"] == {"bad_tijd_waarneming": 1}
    assert readings["kept"] == 3 and report["accounting_holds"] is True
    assert [r[1] for r in table_rows(tmp_path / "c")] == [noon, noon + 60, noon + 120]


def _arrow_types(fields) -> list[str]:
    return [{"int": "int32", "bigint": "int64", "double": "double"}[f.dataType.simpleString()]
            for f in fields]


def test_a_folder_of_the_old_parquet_layout_is_refused_naming_the_migrate_command(landing, tmp_path, capsys):
    """Plain `year=/month=/day=/hour=` folders (this job's old Parquet format, the seed's
    Hive table) are not written over: the run names the command that brings them in."""
    target = tmp_path / "old"
    hour = target / "year=2020" / "month=4" / "day=7" / "hour=5"
    hour.mkdir(parents=True)
    (hour / "part-0.parquet").write_bytes(b"PAR1 kept as it is")
    capsys.readouterr()
    assert run_job(landing, target, "2020-04-07", "2020-04-07") == 1
    assert capsys.readouterr().err.splitlines() == [
        f"traffic_transform: error: file:{target} holds Parquet folders (year=...) and no Iceberg table: "
        f"bring it in with python -m tools.table migrate --target_path file:{target}"
    ]
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == [
        "year=2020", "year=2020/month=4", "year=2020/month=4/day=7", "year=2020/month=4/day=7/hour=5",
        "year=2020/month=4/day=7/hour=5/part-0.parquet",
    ]
    assert (hour / "part-0.parquet").read_bytes() == b"PAR1 kept as it is"


def test_output_schema_and_layout_iceberg(day_7):
    """The default: an Iceberg v2 table, identity partitions year/month/day/hour
    (bigint), the curated columns unchanged, one snappy file per hour."""
    table = iceberg_table(day_7)
    assert table.metadata.format_version == 2
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [
        (k, "identity") for k in S.EVENT_PARTITIONS]
    assert [f.name for f in table.schema().fields] == list(S.CURATED_TABLE_SCHEMA.fieldNames())
    assert [str(f.field_type) for f in table.schema().fields] == [
        {"int": "int", "bigint": "long", "double": "double"}[f.dataType.simpleString()]
        for f in S.CURATED_TABLE_SCHEMA.fields]
    assert table.properties["traffic-glue.semantics"] == "corrected"
    files = sorted((day_7 / "data").glob("year=2020/month=4/day=7/hour=*/*.parquet"))
    assert len(files) == 24 == len(partition_digests(day_7))
    # Neither the data and metadata files nor the reports have Hadoop's checksum files
    # beside them (session.write_no_checksum_files).
    assert [p.name for p in day_7.rglob("*.crc")] == []
    arrow_schema = pq.read_schema(files[0])
    assert arrow_schema.names[:len(S.CURATED_COLUMNS)] == list(S.CURATED_COLUMNS)
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(0).compression == "SNAPPY"
    # One commit made the run's rows visible, tagged with the run.
    summary = table.current_snapshot().summary
    assert summary["traffic-glue.run-id"] == last_report(day_7)["run_id"]
    assert summary["traffic-glue.days"] == "2020-04-07..2020-04-07"


def test_a_late_reading_is_included_and_one_too_late_is_not(tmp_path):
    noon = T0 + 12 * 3600  # 2020-04-07 12:00Z
    on_time = [raw_reading(11, 1, noon + 60 * m, counts=(2, 0, 0, 0), speeds=(90, 0, 0, 0))
               for m in range(3)]
    land_parquet(tmp_path / "raw", on_time)
    # 20 h after the end of the day: inside the default 24 late hours.
    late = raw_reading(11, 1, noon + 180, counts=(2, 0, 0, 0), speeds=(30, 0, 0, 0))
    land_parquet(tmp_path / "raw", [late], arrival_delay=(12 + 20) * 3600, name="late.parquet")
    # 25 h after the end of the day: outside them.
    too_late = raw_reading(11, 1, noon + 240, counts=(2, 0, 0, 0), speeds=(30, 0, 0, 0))
    land_parquet(tmp_path / "raw", [too_late], arrival_delay=(12 + 25) * 3600, name="late.parquet")

    assert run_job(tmp_path / "raw", tmp_path / "c", "2020-04-07", "2020-04-07") == 0
    rows = table_rows(tmp_path / "c")
    assert [(r[1], r[2]) for r in rows] == [
        (noon, 90.0), (noon + 60, 90.0), (noon + 120, 90.0), (noon + 180, 30.0)]
    # the late minute follows a 20 km/h+ drop: avg3 over [t-120, t] = (90+90+30)/3 = 70
    assert rows[-1][S.CURATED_COLUMNS.index(S.SPEED_DIFF)] == -1
    assert rows[-1][S.CURATED_COLUMNS.index(S.AVG_SPEED_3)] == pytest.approx(70.0)


def test_no_readings_exits_non_zero_and_changes_nothing(landing, tmp_path, capsys):
    target = tmp_path / "c"
    assert run_job(landing, target, "2020-04-07", "2020-04-07") == 0
    before = partition_digests(target)
    capsys.readouterr()
    # The landing holds no folder of 2021.
    assert run_job(landing, target, "2021-04-07", "2021-04-07") == 1
    message = capsys.readouterr().err.strip().splitlines()
    assert len(message) == 1 and "no raw files under" in message[0]
    assert partition_digests(target) == before


def test_readings_all_left_out_exit_non_zero_and_change_nothing(tmp_path, capsys):
    land_parquet(tmp_path / "raw", [raw_reading(11, 1, T0 + 600, counts=(0, 0, 0, 0))])
    target = tmp_path / "c"
    assert run_job(tmp_path / "raw", target, "2020-04-07", "2020-04-07") == 0
    before = partition_digests(target)
    land_parquet(tmp_path / "raw", [raw_reading(11, 1, T0 + 600, defect=1)])  # overwrites
    capsys.readouterr()
    assert run_job(tmp_path / "raw", target, "2020-04-07", "2020-04-07") == 1
    err = capsys.readouterr().err
    assert "no rows to write for 2020-04-07 .. 2020-04-07: 1 readings read" in err
    assert partition_digests(target) == before


# --- locations: ids that do not depend on what a run reads ---------------------------------

APRIL_1 = T0 - 6 * 86400  # 2020-04-01 00:00Z
FIRST = "miv-config-2020-04-01.xml.gz"
MOVED = "miv-config-2020-04-08T120000Z.xml.gz"  # in force from NOON_8TH
# The carriageways of the A14 at Parking Kruibeke (docs/SEMANTICS.md gives the first's id).
DIRECTION_1 = configuration.location_id("A0140001|m94692|main")
DIRECTION_2 = configuration.location_id("A0140002|m94692|main")


def _configuration(folder: Path, name: str, lanes) -> Path:
    """A configuration snapshot of (unieke_id, lve_nr, Ident_8, Kmp_Rsys, Rijstrook) lanes."""
    points = "".join(
        f'<meetpunt unieke_id="{lane}"><beschrijvende_id>H{unit:03d}L{lane % 100:02d}</beschrijvende_id>'
        f"<lve_nr>{unit}</lve_nr><Ident_8>{road}</Ident_8><Kmp_Rsys>{km}</Kmp_Rsys>"
        f"<Rijstrook>{kind}</Rijstrook><volledige_naam>Parking Kruibeke</volledige_naam></meetpunt>"
        for lane, unit, road, km, kind in lanes
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(gzip.compress(f"<mivconfig>{points}</mivconfig>".encode()))
    return path


def moving_configuration(folder: Path) -> Path:
    """The configuration of those lanes: lanes 50 and 957 on direction 1 of the A14, 960
    on direction 2, at one point; the snapshot of noon on the 8th puts 957 on direction 2
    (where its readings' lve_nr go too)."""
    _configuration(folder, FIRST, [(50, 18, "A0140001", "94,692", "R10"),
                                   (957, 18, "A0140001", "94,692", "R11"),
                                   (960, 19, "A0140002", "94,692", "R10")])
    _configuration(folder, MOVED, [(50, 18, "A0140001", "94,692", "R10"),
                                   (957, 19, "A0140002", "94,692", "R11"),
                                   (960, 19, "A0140002", "94,692", "R10")])
    return folder


@pytest.fixture(scope="module")
def moving(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("moving")
    land_parquet(root, moving_lane_readings())
    return root


@pytest.fixture(scope="module")
def moving_config(tmp_path_factory) -> str:
    return str(moving_configuration(tmp_path_factory.mktemp("moving-configuration")))


def _epoch(moment: dt.datetime | None) -> int | None:
    """Iceberg's timestamps read as UTC; Parquet's (INT96) as naive UTC."""
    if moment is None:
        return None
    return int(moment.replace(tzinfo=dt.timezone.utc).timestamp())


def locations_rows(target: Path) -> list[tuple]:
    """The locations table beside a curated table, read without Spark, by location and
    version: (location_id, configuration, [(unieke_id, beschrijvende_id, lane_type, lve_nr)],
    valid_from, valid_to, label), times in epoch seconds."""
    folder = target / "_locations"
    if is_iceberg(target):
        rows = iceberg_table(folder).scan().to_arrow().to_pylist()
    else:
        rows = pq.read_table(folder).to_pylist()
    return sorted(
        (r["location_id"], r["configuration"],
         [(lane["unieke_id"], lane["beschrijvende_id"], lane["lane_type"], lane["lve_nr"]) for lane in r["lanes"]],
         _epoch(r["valid_from"]), _epoch(r["valid_to"]), r["label"])
        for r in rows
    )


NAME_1 = "A14 km 94.7 (Parking Kruibeke), direction 1"
NAME_2 = "A14 km 94.7 (Parking Kruibeke), direction 2"
# The table after a run that read both snapshots.
MOVING_LOCATIONS = sorted([
    (DIRECTION_1, FIRST, [(50, "H018L50", "R10", 18), (957, "H018L57", "R11", 18)], APRIL_1, NOON_8TH, NAME_1),
    (DIRECTION_2, FIRST, [(960, "H019L60", "R10", 19)], APRIL_1, NOON_8TH, NAME_2),
    (DIRECTION_1, MOVED, [(50, "H018L50", "R10", 18)], NOON_8TH, None, NAME_1),
    (DIRECTION_2, MOVED, [(957, "H019L57", "R11", 19), (960, "H019L60", "R10", 19)], NOON_8TH, None, NAME_2),
])


@pytest.fixture(scope="module")
def moving_range(moving, moving_config, tmp_path_factory) -> Path:
    """Both days in one run, into a fresh table."""
    target = tmp_path_factory.mktemp("moving-range") / "curated"
    assert run_job(moving, target, "2020-04-07", "2020-04-08", "--configuration_path", moving_config) == 0
    return target


def test_a_day_alone_equals_that_day_of_a_range_while_lanes_come_and_go(moving, moving_config,
                                                                        moving_range, tmp_path):
    for day in (dt.date(2020, 4, 7), dt.date(2020, 4, 8)):
        alone = tmp_path / f"alone-{day}"
        assert run_job(moving, alone, str(day), str(day), "--configuration_path", moving_config) == 0
        assert table_rows(alone) == table_rows(moving_range, day)
    assert {r[0] for r in table_rows(moving_range)} == {DIRECTION_1, DIRECTION_2}  # the carriageways


def test_a_lane_that_moves_gives_each_carriageway_its_readings_and_no_key_twice(moving_range):
    rows = table_rows(moving_range)
    keys = [(r[0], r[1]) for r in rows]
    assert len(keys) == len(set(keys))
    class2 = S.CURATED_COLUMNS.index(S.class_total(2))
    # Until noon on the 8th lane 957 is on direction 1, from noon on direction 2 (the
    # snapshot's time), whatever lve_nr its readings carry.
    before_noon = {r[0]: r for r in rows if r[1] == NOON_8TH - 60}
    assert (before_noon[DIRECTION_1][class2], before_noon[DIRECTION_2][class2]) == (2, 2)  # 957; 960
    at_noon = {r[0]: r for r in rows if r[1] == NOON_8TH}
    assert list(at_noon) == [DIRECTION_2] and at_noon[DIRECTION_2][class2] == 4  # 957 and 960
    # Each lane: (2 x s2 + 1 x 50) / 3 km/h, s2 = 60 + minute % 37 (89 at 11:59, 90 at 12:00).
    assert before_noon[DIRECTION_1][2] == pytest.approx((2 * 89 + 50) / 3)
    assert at_noon[DIRECTION_2][2] == pytest.approx((2 * 90 + 50) / 3)
    assert [r[1] for r in rows if r[0] == DIRECTION_1][-1] == NOON_8TH - 60  # direction 1's last row
    # Direction 1: lane 50 on the 7th (30 + 120 minutes), 957 on the 8th until 11:59 (720);
    # direction 2: lane 960 11:00-14:00 on both days (2 x 181), 957 with it from noon.
    assert [sum(1 for r in rows if r[0] == d) for d in (DIRECTION_1, DIRECTION_2)] == [870, 362]

    report = last_report(moving_range)
    # 957's reading of noon under lve 18 and under lve 19 is one reading.
    assert report["readings"]["filtered"]["duplicate"] == 1
    assert report["readings"]["unconfigured"] == {"readings": 0, "lanes": 0}
    assert locations_rows(moving_range) == MOVING_LOCATIONS
    located = report["output"]["locations"]
    assert located == {"table": f"file:{moving_range}/_locations", "changed": True, "locations": 2,
                       "versions": 4, "new_locations": 2, "configurations": [FIRST, MOVED]}


def test_the_report_names_the_configuration_snapshots_the_run_used(moving_config, moving_range):
    """docs/SEMANTICS.md, "The run report": `source.configuration` names the snapshots
    the run used, with the time each is in force from."""
    used = last_report(moving_range)["source"]["configuration"]
    assert used == {"path": moving_config, "snapshots": [
        {"name": FIRST, "valid_from": "2020-04-01T00:00:00+00:00", "lanes": 3},
        {"name": MOVED, "valid_from": "2020-04-08T12:00:00+00:00", "lanes": 3},
    ]}


def test_reruns_never_change_an_id_or_the_locations_table(moving, moving_config, moving_range, tmp_path):
    with_configuration = ("--configuration_path", moving_config)
    target = tmp_path / "curated"
    assert run_job(moving, target, "2020-04-07", "2020-04-08", *with_configuration) == 0
    curated, located = partition_digests(target), locations_rows(target)
    snapshot = iceberg_table(target / "_locations").current_snapshot().snapshot_id
    # The 7th alone reads only the first snapshot (it does not know its end): no change.
    for start, end in (("2020-04-08", "2020-04-08"), ("2020-04-07", "2020-04-07"),
                       ("2020-04-07", "2020-04-08")):
        assert run_job(moving, target, start, end, *with_configuration) == 0
        assert last_report(target)["output"]["locations"]["changed"] is False
    assert partition_digests(target) == curated and locations_rows(target) == located == MOVING_LOCATIONS
    assert iceberg_table(target / "_locations").current_snapshot().snapshot_id == snapshot

    # Day by day, in either order, into another table: the same ids and the same table.
    one_by_one = tmp_path / "day-by-day"
    for day in ("2020-04-08", "2020-04-07"):
        assert run_job(moving, one_by_one, day, day, *with_configuration) == 0
    assert table_rows(one_by_one) == table_rows(moving_range)
    assert locations_rows(one_by_one) == locations_rows(moving_range)


def test_a_locations_run_records_every_location_of_the_configuration_but_rows_of_its_own(
        moving, moving_config, moving_range, tmp_path):
    target = tmp_path / "curated"
    assert run_job(moving, target, "2020-04-07", "2020-04-07", "--configuration_path", moving_config) == 0
    # The 7th alone read only the first snapshot: its versions' end is not known yet.
    assert locations_rows(target) == sorted([
        (DIRECTION_1, FIRST, [(50, "H018L50", "R10", 18), (957, "H018L57", "R11", 18)], APRIL_1, None, NAME_1),
        (DIRECTION_2, FIRST, [(960, "H019L60", "R10", 19)], APRIL_1, None, NAME_2),
    ])
    assert run_job(moving, target, "2020-04-08", "2020-04-08", "--locations", str(DIRECTION_2),
                   "--configuration_path", moving_config) == 0
    # The table holds every location of the snapshots the run used, not only direction 2.
    assert locations_rows(target) == MOVING_LOCATIONS
    assert last_report(target)["output"]["locations"]["new_locations"] == 0
    # The curated rows: of the 8th only direction 2's (as a run of all would write them);
    # the 7th as the first run wrote it.
    day_7, day_8 = dt.date(2020, 4, 7), dt.date(2020, 4, 8)
    assert table_rows(target, day_8) == [r for r in table_rows(moving_range, day_8) if r[0] == DIRECTION_2]
    assert table_rows(target, day_7) == table_rows(moving_range, day_7)


def test_athena_rows_keep_their_per_minute_lane_ids_beside_the_locations_table(moving, moving_config,
                                                                               moving_range, tmp_path):
    fresh = tmp_path / "athena"
    assert run_job(moving, fresh, "2020-04-07", "2020-04-08", "--semantics", "athena") == 0
    assert {r[0] for r in table_rows(fresh)} == {50, 957, 960}  # the largest lane of the minute
    assert not (fresh / "_locations").exists()  # athena records no locations table
    assert "locations" not in last_report(fresh)["output"]
    # Over a corrected table: the athena run leaves its locations table as it was.
    target = tmp_path / "curated"
    assert run_job(moving, target, "2020-04-07", "2020-04-08", "--configuration_path", moving_config) == 0
    snapshot = iceberg_table(target / "_locations").current_snapshot().snapshot_id
    assert run_job(moving, target, "2020-04-07", "2020-04-08", "--semantics", "athena",
                   "--replace_semantics", "true") == 0
    assert {r[0] for r in table_rows(target)} == {50, 957, 960}
    assert table_rows(target) == table_rows(fresh)
    assert locations_rows(target) == locations_rows(moving_range)
    assert iceberg_table(target / "_locations").current_snapshot().snapshot_id == snapshot
