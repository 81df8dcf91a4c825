"""The Spark job against an independent implementation: DuckDB SQL written from docs/SEMANTICS.md.

Two implementations that share no code agreeing on every row and column of generated
data (duplicates, corrections, defects, missing minutes, jams, late arrivals) is the
strongest evidence the numbers are right. `corrected` runs with a configuration
(`--configuration_path`, issue 18): the real network of 2017 as one file, or dated
snapshots of it that move, drop and add lanes in the middle of a run. The readings each
run counts per status, and the locations it records, are held to the reference's too.
"""

from __future__ import annotations

import datetime as dt
import gzip
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import duckdb
import pytest

from tools import comparing
from tests.factories import T0, land_parquet, minutes, moving_lane_readings
from tests.job_helpers import iceberg_table, last_report, run_job, table_rows
from tests.test_duckdb_reference import lane, write_configuration
from tools.duckdb_reference import curated_rows, locations, reading_counts, unconfigured_lanes
from tools.sample_data import SampleSpec, generate
from traffic_glue.compute import configuration as job_configuration
from traffic_glue.compute import schema as S

START, END = dt.date(2020, 4, 7), dt.date(2020, 4, 8)
COLUMNS = list(S.CURATED_COLUMNS) + list(S.EVENT_PARTITIONS)
DOUBLES = {f.name for f in S.CURATED_SCHEMA.fields if f.dataType.simpleString() == "double"}
# Lanes of a minute are averaged in an order neither engine promises: the last bit of a
# double may differ (comparing.TOLERANCE). Everything else must be equal.
REAL_NETWORK = Path(__file__).resolve().parent / "fixtures" / "network" / "miv-config-2017-05-18.xml.gz"


def _landing(tmp_path_factory, source_format: str):
    root = tmp_path_factory.mktemp(f"landing-{source_format}")
    generate(str(root), SampleSpec(start_date=dt.date(2020, 4, 6), days=4, lanes=40, seed=11,
                                   source_format=source_format, duplicate_fraction=0.03,
                                   late_fraction=0.01, jam_location_fraction=0.3))
    return root


@pytest.fixture(scope="module")
def parquet_landing(tmp_path_factory):
    return _landing(tmp_path_factory, "parquet")


@pytest.fixture(scope="module")
def json_landing(tmp_path_factory):
    return _landing(tmp_path_factory, "json")


# --- configurations ----------------------------------------------------------------------

def _network() -> ElementTree.Element:
    return ElementTree.fromstring(gzip.decompress(REAL_NETWORK.read_bytes()))


def _write_snapshot(network: ElementTree.Element, path: Path) -> None:
    path.write_bytes(gzip.compress(ElementTree.tostring(network, encoding="utf-8", xml_declaration=True)))


def _points(network: ElementTree.Element) -> dict[int, ElementTree.Element]:
    return {int(point.get("unieke_id")): point for point in network.iter("meetpunt")}


def _set(point: ElementTree.Element, tag: str, value: str) -> None:
    child = point.find(tag)
    if child is None:
        child = ElementTree.SubElement(point, tag)
    child.text = value


@pytest.fixture(scope="module")
def snapshots(parquet_landing, tmp_path_factory):
    """Two dated snapshots of the real network, for the generated landing's lanes:

    - 2020-04-07 00:30 UTC, the earliest, also in force for the lookback and the first
      half hour: the network without lane C (whose readings go to -C until the 8th noon);
    - 2020-04-08 12:00 UTC: lane A moves to the road's other carriageway, lane B leaves
      the configuration (-B from then), lane C comes in, lane D becomes a wrong-way lane.
    """
    found = duckdb.sql(f"SELECT DISTINCT unieke_id FROM read_parquet('{parquet_landing}/**/*.parquet') "
                       "ORDER BY unieke_id").fetchall()
    network = _network()
    configured = [lane_id for (lane_id,) in found if lane_id in _points(network)
                  and not (_points(network)[lane_id].findtext("Rijstrook") or "").startswith("TR")]
    assert len(configured) >= 4, "the landing's lanes should come from the real network"
    moved, dropped, late, turned = configured[:4]
    folder = tmp_path_factory.mktemp("configuration")

    network.remove(_points(network)[late])
    _write_snapshot(network, folder / "miv-config-2020-04-07T003000Z.xml.gz")

    network = _network()
    points = _points(network)
    road = points[moved].findtext("Ident_8") or "A0140001"
    _set(points[moved], "Ident_8", road[:-1] + ("2" if road.endswith("1") else "1"))
    network.remove(points[dropped])
    _set(points[turned], "Rijstrook", "TR10")
    _write_snapshot(network, folder / "miv-config-2020-04-08T120000Z.xml.gz")
    return folder


# --- comparing -----------------------------------------------------------------------------

def assert_same_rows(spark_rows: list[tuple], duck_rows: list[tuple]) -> None:
    comparing.assert_same_rows(spark_rows, duck_rows, COLUMNS, DOUBLES, key=2)


def _duck(root, semantics, source_format, start=START, end=END, configuration=None):
    table = curated_rows(str(root), start, end, semantics=semantics, source_format=source_format,
                         configuration=configuration)
    return sorted((tuple(r[c] for c in COLUMNS) for r in table.to_pylist()),
                  key=lambda r: (r[0], r[1]))


def assert_same_counts(target, root, semantics, source_format="parquet", start=START, end=END,
                       configuration=None) -> None:
    """The run report's kept, left-out and rejected readings equal the reference's."""
    readings = last_report(target)["readings"]
    ours = {"kept": readings["kept"], **readings["filtered"], **readings["rejected"]}
    assert {k: v for k, v in ours.items() if v} == reading_counts(
        str(root), start, end, semantics=semantics, source_format=source_format,
        configuration=configuration)


def _epoch(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def recorded_locations(target) -> tuple[set[tuple], set[tuple]]:
    """The locations table of a fresh target: its configured locations, one (location_id,
    road, lane_group, lane ids, valid_from, valid_to, configuration) per location and
    version, times in epoch seconds; and its unconfigured lanes' (location_id, lane ids)."""
    configured, unconfigured = set(), set()
    for row in iceberg_table(target / "_locations").scan().to_arrow().to_pylist():
        lanes = tuple(sorted(lane["unieke_id"] for lane in row["lanes"]))
        if row["configuration"] is None:
            unconfigured.add((row["location_id"], lanes))
        else:
            configured.add((row["location_id"], row["road"], row["lane_group"], lanes,
                            _epoch(row["valid_from"]), _epoch(row["valid_to"]), row["configuration"]))
    return configured, unconfigured


def assert_locations_recorded(target, raw, configuration, start=START, end=END, source_format="parquet",
                              selected=False) -> None:
    """The job's locations table holds exactly the reference's locations of the
    snapshots the run used (their ids, roads, groups, lanes and validity), and a row
    for each lane of its kept readings that no snapshot held, as does its report. The
    job's road is the Ident_8, None where the key's road is `lane<unieke_id>`. With
    `--locations` (`selected`), the unconfigured lanes recorded are some of those."""
    configured, unconfigured = recorded_locations(target)
    expected = {
        (r["location_id"], None if r["road"] == f"lane{r['lanes'][0]}" else r["road"], r["lane_group"],
         tuple(r["lanes"]), r["valid_from"], r["valid_to"], r["configuration"])
        for r in locations(configuration, start, end)
    }
    assert configured == expected, (
        f"{len(configured - expected)} not the reference's, first {sorted(configured - expected)[:3]}; "
        f"{len(expected - configured)} missing, first {sorted(expected - configured)[:3]}")
    lanes = unconfigured_lanes(str(raw), start, end, source_format=source_format,
                               configuration=configuration)
    expected_lanes = {(-lane_id, (lane_id,)) for lane_id in lanes["lanes"]}
    if selected:
        assert unconfigured <= expected_lanes
    else:
        assert unconfigured == expected_lanes
        assert last_report(target)["readings"]["unconfigured"] == {
            "readings": lanes["readings"], "lanes": len(lanes["lanes"])}


# --- the configuration, without Spark --------------------------------------------------------

def test_locations_of_the_configurations_agree_with_the_job(snapshots):
    """The reference's locations (XML read by the standard library, keys and ids in SQL)
    equal the job's (`traffic_glue.compute.configuration`), snapshot by snapshot."""
    for source in (REAL_NETWORK, *sorted(snapshots.iterdir())):
        theirs = job_configuration.locations_of(
            job_configuration.parse_configuration(source.read_bytes(), str(source)))
        ours = [r for r in locations(snapshots if source.parent == snapshots else source)
                if r["configuration"] == source.name]
        assert {r["location_id"]: (r["key"], r["lanes"]) for r in ours} == {
            identifier: (location.key, [lane.lane_id for lane in location.lanes])
            for identifier, location in theirs.items()}


# --- the job against the reference -----------------------------------------------------------

@pytest.mark.parametrize("semantics", ["athena", "corrected"])
def test_parity_on_parquet(parquet_landing, snapshots, tmp_path, semantics):
    # athena needs no configuration; corrected's snapshots move lanes in the run
    configuration = snapshots if semantics == "corrected" else None
    given = ["--configuration_path", str(configuration)] if configuration else []
    target = tmp_path / "curated"
    assert run_job(parquet_landing, target, str(START), str(END), "--semantics", semantics, *given) == 0
    ours = table_rows(target)
    assert len(ours) > 5 * 2 * 1440 * 0.9  # >= 5 locations x 2 days of minutes (athena: lve_nr)
    jams = sum(1 for r in ours if r[COLUMNS.index(S.JAM)] == 1)
    assert jams > 100  # the data exercises the jam bands
    assert_same_rows(ours, _duck(parquet_landing, semantics, "parquet", configuration=configuration))
    assert_same_counts(target, parquet_landing, semantics, configuration=configuration)
    if semantics == "corrected":
        assert any(r[0] < 0 for r in ours)  # the lanes the snapshots leave out
        assert_locations_recorded(target, parquet_landing, configuration)


@pytest.mark.parametrize("semantics", ["athena", "corrected"])
def test_parity_on_json_lines(json_landing, tmp_path, semantics):
    # corrected: the real network as one file, in force for every reading
    configuration = REAL_NETWORK if semantics == "corrected" else None
    given = ["--configuration_path", str(configuration)] if configuration else []
    target = tmp_path / "curated"
    assert run_job(json_landing, target, str(START), str(END), "--semantics", semantics,
                   "--source_format", "json", *given) == 0
    ours = table_rows(target)
    assert_same_rows(ours, _duck(json_landing, semantics, "json", configuration=configuration))
    assert_same_counts(target, json_landing, semantics, "json", configuration=configuration)
    if semantics == "corrected":
        assert_locations_recorded(target, json_landing, configuration, source_format="json")


@pytest.fixture(scope="module")
def moving_landing(tmp_path_factory):
    """Lanes that report on different days, and one that moves at noon on the 8th, in
    the readings and in the configuration:

    - lanes 50 (the 7th only) and 957 (the 8th until noon) are the A14's direction 1 at
      km 94.69, under lve_nr 18; lane 960 (both days, 11:00-14:00) its direction 2,
      under lve_nr 19;
    - the snapshot of the 8th, 12:00 UTC, moves lane 957 to direction 2; from noon its
      readings carry lve_nr 19, and at 12:00 it reports under both: one reading, the
      other a duplicate;
    - lane 51 (the 7th, 10:00-10:30) is in no snapshot: location -51.
    """
    root = tmp_path_factory.mktemp("landing-moving")
    land_parquet(root / "raw", moving_lane_readings() + minutes(51, 18, T0 + 10 * 3600, T0 + 10 * 3600 + 30 * 60))
    folder = root / "configuration"
    write_configuration(folder / "miv-config-2020-04-07.xml", [
        lane(50, "A0140001", "94,69", "R10", 18), lane(957, "A0140001", "94,69", "R11", 18),
        lane(960, "A0140002", "94,69", "R10", 19)])
    write_configuration(folder / "miv-config-2020-04-08T120000Z.xml.gz", [
        lane(50, "A0140001", "94,69", "R10", 18), lane(957, "A0140002", "94,69", "R11", 19),
        lane(960, "A0140002", "94,69", "R10", 19)])
    return root


@pytest.mark.parametrize("semantics", ["athena", "corrected"])
@pytest.mark.parametrize("start, end", [(START, END), (START, START), (END, END)])
def test_parity_while_lanes_come_and_go(moving_landing, tmp_path, semantics, start, end):
    raw, configuration = moving_landing / "raw", moving_landing / "configuration"
    given = ["--configuration_path", str(configuration)] if semantics == "corrected" else []
    target = tmp_path / "curated"
    assert run_job(raw, target, str(start), str(end), "--semantics", semantics, *given) == 0
    ours = table_rows(target)
    duck = _duck(raw, semantics, "parquet", start, end,
                 configuration=configuration if semantics == "corrected" else None)
    assert_same_rows(ours, duck)
    assert_same_counts(target, raw, semantics, start=start, end=end,
                       configuration=configuration if semantics == "corrected" else None)
    if semantics == "corrected":
        assert_locations_recorded(target, raw, configuration, start, end)


def test_parity_with_selected_locations(parquet_landing, snapshots, tmp_path):
    everything = _duck(parquet_landing, "corrected", "parquet", configuration=snapshots)
    chosen = sorted({r[0] for r in everything if r[0] >= 0})[:3]
    target = tmp_path / "curated"
    assert run_job(parquet_landing, target, str(START), str(END), "--configuration_path", str(snapshots),
                   "--locations", ",".join(map(str, chosen))) == 0
    ours = table_rows(target)
    assert {r[0] for r in ours} == set(chosen)
    assert_same_rows(ours, [r for r in everything if r[0] in chosen])
    assert_locations_recorded(target, parquet_landing, snapshots, selected=True)
