"""The Spark job against an independent implementation: DuckDB SQL written from docs/SEMANTICS.md.

Two implementations that share no code agreeing on every row and column of generated
data (duplicates, corrections, defects, missing minutes, jams, late arrivals) is the
strongest evidence the numbers are right. The lanes each run records in the locations
table are held to the DuckDB reference's too.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from tests.factories import land_parquet
from tests.job_helpers import iceberg_table, run_job, table_rows
from tests.test_job import moving_lane_readings
from tools.duckdb_reference import curated_rows, seen_lanes
from tools.sample_data import SampleSpec, generate
from traffic_glue import schema as S

START, END = dt.date(2020, 4, 7), dt.date(2020, 4, 8)
COLUMNS = list(S.CURATED_COLUMNS) + list(S.EVENT_PARTITIONS)
DOUBLES = {f.name for f in S.CURATED_SCHEMA.fields if f.dataType.simpleString() == "double"}
# Lanes of a minute are averaged in an order neither engine promises: the last bit of a
# double may differ. Everything else must be equal.
TOLERANCE = 1e-9


def _landing(tmp_path_factory, source_format: str):
    root = tmp_path_factory.mktemp(f"landing-{source_format}")
    generate(str(root), SampleSpec(start_date=dt.date(2020, 4, 6), days=4, lanes=60, seed=11,
                                   source_format=source_format, duplicate_fraction=0.03,
                                   late_fraction=0.01, jam_location_fraction=0.3))
    return root


@pytest.fixture(scope="module")
def parquet_landing(tmp_path_factory):
    return _landing(tmp_path_factory, "parquet")


@pytest.fixture(scope="module")
def json_landing(tmp_path_factory):
    return _landing(tmp_path_factory, "json")


def assert_same_rows(spark_rows: list[tuple], duck_rows: list[tuple]) -> None:
    assert len(spark_rows) == len(duck_rows)
    mismatches = []
    for ours, theirs in zip(spark_rows, duck_rows):
        for name, a, b in zip(COLUMNS, ours, theirs):
            same = (a is None and b is None) or (
                a is not None and b is not None
                and (math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
                     if name in DOUBLES else a == b)
            )
            if not same:
                mismatches.append((name, ours[0], ours[1], a, b))
    assert not mismatches, f"{len(mismatches)} values differ, first: {mismatches[:5]}"


def _duck(root, semantics, source_format, start=START, end=END):
    table = curated_rows(str(root), start, end, semantics=semantics, source_format=source_format)
    return sorted((tuple(r[c] for c in COLUMNS) for r in table.to_pylist()),
                  key=lambda r: (r[0], r[1]))


def recorded_lanes(target) -> list[dict]:
    """The lanes of a fresh target's locations table, one dict per (lve_nr, lane), as
    `seen_lanes` gives them (naive UTC times), sorted."""
    utc = dt.timezone.utc
    found = []
    for row in iceberg_table(target / "_locations").scan().to_arrow().to_pylist():
        assert row["location_id"] == row["lve_nr"]
        for lane in row["lanes"]:
            found.append({"lve_nr": row["lve_nr"], **lane, **{
                key: lane[key].astimezone(utc).replace(tzinfo=None) for key in ("first_seen", "last_seen")}})
    return sorted(found, key=lambda r: (r["lve_nr"], r["unieke_id"]))


@pytest.mark.parametrize("semantics", ["athena", "corrected"])
def test_parity_on_parquet(parquet_landing, tmp_path, semantics):
    target = tmp_path / "curated"
    assert run_job(parquet_landing, target, str(START), str(END), "--semantics", semantics) == 0
    ours = table_rows(target)
    assert len(ours) > 20 * 2 * 1440 * 0.9  # >= 20 locations x 2 days of minutes
    jams = sum(1 for r in ours if r[COLUMNS.index(S.JAM)] == 1)
    assert jams > 100  # the data exercises the jam bands
    assert_same_rows(ours, _duck(parquet_landing, semantics, "parquet"))
    lanes = recorded_lanes(target)
    assert len(lanes) == 60  # every lane of the generated network
    assert lanes == seen_lanes(str(parquet_landing), START, END, semantics=semantics)


@pytest.mark.parametrize("semantics", ["athena", "corrected"])
def test_parity_on_json_lines(json_landing, tmp_path, semantics):
    target = tmp_path / "curated"
    assert run_job(json_landing, target, str(START), str(END), "--semantics", semantics,
                   "--source_format", "json") == 0
    assert_same_rows(table_rows(target), _duck(json_landing, semantics, "json"))
    assert recorded_lanes(target) == seen_lanes(str(json_landing), START, END, semantics=semantics,
                                                 source_format="json")


@pytest.fixture(scope="module")
def moving_landing(tmp_path_factory):
    """Sections whose lanes report on different days, and a lane that moves to another
    section at noon (tests/test_job.py, `moving_lane_readings`)."""
    root = tmp_path_factory.mktemp("landing-moving")
    land_parquet(root, moving_lane_readings())
    return root


@pytest.mark.parametrize("semantics", ["athena", "corrected"])
@pytest.mark.parametrize("start, end", [(START, END), (START, START), (END, END)])
def test_parity_while_lanes_come_and_go(moving_landing, tmp_path, semantics, start, end):
    target = tmp_path / "curated"
    assert run_job(moving_landing, target, str(start), str(end), "--semantics", semantics) == 0
    assert_same_rows(table_rows(target), _duck(moving_landing, semantics, "parquet", start, end))
    assert recorded_lanes(target) == seen_lanes(str(moving_landing), start, end, semantics=semantics)


def test_parity_with_selected_locations(parquet_landing, tmp_path):
    everything = _duck(parquet_landing, "corrected", "parquet")
    chosen = sorted({r[0] for r in everything})[:3]
    target = tmp_path / "curated"
    assert run_job(parquet_landing, target, str(START), str(END),
                   "--locations", ",".join(map(str, chosen))) == 0
    ours = table_rows(target)
    assert {r[0] for r in ours} == set(chosen)
    assert_same_rows(ours, [r for r in everything if r[0] in chosen])
    assert recorded_lanes(target) == seen_lanes(str(parquet_landing), START, END, locations=chosen)
    assert {lane["lve_nr"] for lane in recorded_lanes(target)} == set(chosen)
