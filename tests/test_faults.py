"""Bad input, faults and reruns: nothing lost, nothing doubled, every problem named.

Every test starts from a published table (a copy of `baseline`), breaks something, and
checks three things: the outcome (the error's one line, or the rows), that the
partitions already published are there byte for byte (`partition_digests`), and, where
the run wrote a report, that its accounting holds (read = kept + filtered + rejected).

Numbers below are worked out by hand from `good_readings()`. Every run of this file
gets `good_configuration()`, which puts lanes 11 and 12 (lve_nr 1) on one carriageway
(`LOCATION_1`) and lane 21 (lve_nr 2) on another (`LOCATION_2`).

The table here is in the Parquet format (`--table_format parquet`), whose publish
protocol (staging, journal, swap, lock) these tests break on purpose; the Iceberg
format's faults are in test_iceberg_faults.py.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from unittest import mock

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.factories import RAW_ARROW_SCHEMA, T0, hour_folder, raw_reading
from tests import job_helpers
from tests.job_helpers import job_env, kill_when, last_report, partition_digests, table_rows
from tools.sample_data import SampleSpec, generate
from traffic_glue.compute import configuration
from traffic_glue.store import publish, quarantine, storage
from traffic_glue.jobs import job
from traffic_glue.compute import schema as S

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "glue_jobs" / "traffic_transform.py"
DAY = "2020-04-07"
HOUR = 3600
BLOCK_HOURS = (6, 12, 18)  # one block of minutes per hour: three published partitions
MINUTES = 6
LATE_MODIFIED = "2020-04-07T14:05:00+02:00"
LANE_11_SPEEDS = (90, 80, 30, 35, 100, 95)



LOCATION_1 = configuration.location_id("A0010001|m1000|main")  # lanes 11 and 12
LOCATION_2 = configuration.location_id("A0020001|m2000|main")  # lane 21
_CONFIGURATION: list[str] = []  # its file, once `good_configuration` wrote it


@pytest.fixture(scope="module", autouse=True)
def good_configuration(tmp_path_factory) -> str:
    """The configuration of the good landing's lanes, for every run of this file."""
    points = "".join(
        f'<meetpunt unieke_id="{lane}"><lve_nr>{unit}</lve_nr><Ident_8>{road}</Ident_8>'
        f"<Kmp_Rsys>{km}</Kmp_Rsys><Rijstrook>{kind}</Rijstrook></meetpunt>"
        for lane, unit, road, km, kind in [(11, 1, "A0010001", "1,0", "R10"), (12, 1, "A0010001", "1,0", "R11"),
                                           (21, 2, "A0020001", "2,0", "R10")]
    )
    path = tmp_path_factory.mktemp("configuration") / "miv-config-2020-04-01.xml.gz"
    path.write_bytes(gzip.compress(f"<mivconfig>{points}</mivconfig>".encode()))
    _CONFIGURATION[:] = [str(path)]
    return str(path)


def run_job(source: Path, target: Path, start: str, end: str, *extra: str) -> int:
    return job_helpers.run_job(source, target, start, end, "--table_format", "parquet",
                               "--configuration_path", _CONFIGURATION[0], *extra)


# --- the good landing -------------------------------------------------------------------


def _at(hour: int, minute: int) -> int:
    return T0 + hour * HOUR + minute * 60


def good_readings() -> list[tuple[dict, int]]:
    """(raw reading, arrival epoch) pairs; every one valid.

    Per block hour H, minutes 0..5: location 1 = lanes 11 and 12, location 2 = lane 21.
    Block 12 also holds: lane 12 defect at minute 3, lane 21 occupancy -1 at minute 4
    and a correction of lane 11 at minute 2 (later tijd_laatst_gewijzigd, wins).
    Plus: one context reading (23:50 the day before), and two readings whose event
    time lies outside the run's days but that land in folders the run reads.

    read 3*18 + 1 + 1 + 2 = 58; outside_days 2, defect 1, unknown_occupancy 1,
    duplicate 1; kept 53. Rows: 6 + 6 per block, less location 2 at 12:04 = 35.
    """
    pairs = []
    for hour in BLOCK_HOURS:
        for m in range(MINUTES):
            t, special = _at(hour, m), hour == 12
            lane_11 = raw_reading(11, 1, t, counts=(2, 0, 0, 0),
                                  speeds=(LANE_11_SPEEDS[m], 0, 0, 0))
            lane_12 = (raw_reading(12, 1, t, counts=(0, 0, 0, 0), speeds=(0, 0, 0, 0), defect=1)
                       if special and m == 3
                       else raw_reading(12, 1, t, counts=(1, 1, 0, 0), speeds=(70, 60, 0, 0)))
            lane_21 = raw_reading(21, 2, t, counts=(3, 0, 0, 1), speeds=(50 + m, 0, 0, 40),
                                  occupancy=-1 if special and m == 4 else 5)
            pairs += [(lane_11, t + 90), (lane_12, t + 90), (lane_21, t + 95)]
    t = _at(12, 2)
    correction = raw_reading(11, 1, t, counts=(2, 0, 0, 0), speeds=(40, 0, 0, 0),
                             modified=LATE_MODIFIED)
    pairs.append((correction, t + 400))
    context = T0 - 600  # 2020-04-06 23:50, inside the 60-minute lookback
    pairs.append((raw_reading(21, 2, context, counts=(3, 0, 0, 1), speeds=(60, 0, 0, 40)),
                  context + 90))
    # 2020-04-05 10:00, landing at 2020-04-07 12:30; 2020-04-08 05:00 landing 05:01.
    early, after = T0 - 2 * 86400 + 10 * HOUR, T0 + 86400 + 5 * HOUR
    pairs.append((raw_reading(11, 1, early, speeds=(88, 0, 0, 0)), _at(12, 30)))
    pairs.append((raw_reading(21, 2, after, speeds=(77, 0, 0, 0)), after + 60))
    return pairs


GOOD_READ, GOOD_KEPT, GOOD_ROWS = 58, 53, 35
GOOD_FILTERED = {"outside_days": 2, "defect": 1, "unknown_occupancy": 1, "wrong_way_lane": 0, "duplicate": 1}


def _by_folder(root: Path, pairs) -> dict[Path, list[dict]]:
    folders: dict[Path, list[dict]] = {}
    for row, arrival in pairs:
        folders.setdefault(hour_folder(root, arrival), []).append(row)
    return folders


def land_parquet_at(root: Path, pairs, name="part-0.parquet", variants=None) -> list[Path]:
    """One Parquet file per arrival folder; `variants` maps a folder's hour (int) to a
    function that changes its Arrow table (schema drift)."""
    written = []
    for folder, rows in _by_folder(root, pairs).items():
        table = pa.Table.from_pylist(rows, schema=RAW_ARROW_SCHEMA)
        change = (variants or {}).get(int(folder.name.split("=")[1]))
        if change:
            table = change(table)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / name)
        written.append(folder / name)
    return written


def _iso(epoch: int) -> str:
    """ISO-8601 in Brussels summer time, as the stream writes it."""
    moment = dt.datetime.fromtimestamp(epoch, dt.timezone(dt.timedelta(hours=2)))
    return moment.isoformat()


def as_json_line(row: dict, index: int) -> str:
    """Every value a JSON string; tijd_waarneming alternately ISO-8601, epoch as a
    string and epoch as a number."""
    values = {k: (None if v is None else str(v)) for k, v in row.items()}
    t = row[S.OBSERVED_AT]
    values[S.OBSERVED_AT] = (_iso(t), str(t), t)[index % 3]
    return json.dumps(values)


def land_json_at(root: Path, pairs, name="part-0.json", extra_lines=None) -> list[Path]:
    """One JSON-lines file per arrival folder; `extra_lines` maps a folder hour to
    lines appended to that folder's file (bad readings)."""
    written, index = [], 0
    for folder, rows in _by_folder(root, pairs).items():
        lines = []
        for row in rows:
            lines.append(as_json_line(row, index))
            index += 1
        lines += (extra_lines or {}).get(int(folder.name.split("=")[1]), [])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("\n".join(lines) + "\n")
        written.append(folder / name)
    return written


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """The good readings as Parquet and the table a clean run makes of them."""
    root = tmp_path_factory.mktemp("baseline")
    land_parquet_at(root / "raw", good_readings())
    assert run_job(root / "raw", root / "curated", DAY, DAY) == 0
    report = last_report(root / "curated")
    return {
        "raw": root / "raw",
        "target": root / "curated",
        "rows": table_rows(root / "curated"),
        "digests": partition_digests(root / "curated"),
        "readings": report["readings"],
    }


def published(baseline, tmp_path: Path) -> tuple[Path, dict]:
    """A target that already holds the baseline's partitions, and their digests."""
    target = tmp_path / "curated"
    shutil.copytree(baseline["target"], target)
    before = partition_digests(target)
    assert before == baseline["digests"] and len(before) == len(BLOCK_HOURS)
    return target, before


def assert_accounting(report: dict) -> None:
    r = report["readings"]
    assert report["accounting_holds"] is True
    assert r["read"] == r["kept"] + r["filtered_total"] + r["rejected_total"]
    assert r["rejected_total"] == sum(r["rejected"].values())
    assert r["filtered_total"] == sum(r["filtered"].values())


def assert_same_as_baseline(target: Path, before: dict, baseline: dict) -> dict:
    """The run left the table and the accounting exactly as the good landing gives them;
    returns its report."""
    assert table_rows(target) == baseline["rows"]
    assert partition_digests(target) == before
    report = last_report(target)
    assert_accounting(report)
    assert report["readings"] == baseline["readings"]
    return report


def one_line_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("traffic_transform: error: ")
    return lines[0]


def assert_nothing_left_behind(target: Path) -> None:
    """No staging, journal, trash, pending quarantine or lock: the run cleaned up."""
    for hidden in (publish.STAGING, publish.JOURNAL, publish.TRASH, f"{publish.REJECTED}/{quarantine.PENDING}"):
        assert not list((target / hidden).glob("*")), hidden
    assert not (target / publish.LOCK).exists()


def test_baseline_numbers_by_hand(baseline):
    r = baseline["readings"]
    assert (r["read"], r["kept"], r["rejected_total"]) == (GOOD_READ, GOOD_KEPT, 0)
    assert r["filtered"] == GOOD_FILTERED
    assert len(baseline["rows"]) == GOOD_ROWS
    # The correction (40 km/h, later tijd_laatst_gewijzigd) won over the 30 km/h reading:
    # location 1 at 12:02 = AVG(lane 11: 40, lane 12: (70 + 60) / 2 = 65) = 52.5.
    at_1202 = [r for r in baseline["rows"] if r[1] == _at(12, 2) and r[0] == LOCATION_1]
    assert at_1202[0][S.CURATED_COLUMNS.index(S.CURRENT_SPEED)] == 52.5
    # Two locations, each of 18 minutes but location 2 at 12:04 (unknown occupancy).
    assert Counter(r[0] for r in baseline["rows"]) == {LOCATION_1: 18, LOCATION_2: 17}
    assert r["unconfigured"] == {"readings": 0, "lanes": 0}


# --- 1. quarantine ---------------------------------------------------------------------

BAD_LINES_NOON = [
    # bad_unieke_id, bad_lve_nr, bad_tijd_waarneming (text, then epoch milliseconds)
    {"unieke_id": None, "lve_nr": "1", "tijd_waarneming": str(_at(12, 1))},
    {"unieke_id": "11", "lve_nr": "abc", "tijd_waarneming": str(_at(12, 1))},
    {"unieke_id": "11", "lve_nr": "1", "tijd_waarneming": "yesterday"},
    {"unieke_id": "11", "lve_nr": "1", "tijd_waarneming": str(_at(12, 1) * 1000)},
    # bad_tijd_laatst_gewijzigd
    {"unieke_id": "11", "lve_nr": "1", "tijd_waarneming": str(_at(12, 1)),
     "tijd_laatst_gewijzigd": "soon"},
    # negative_intensity; bad_speed; bad_intensity (lanes 97, 99 and 29).
    {"unieke_id": "97", "lve_nr": "1", "tijd_waarneming": str(_at(12, 1)),
     "verkeersintensiteit_klasse2": "-3"},
    {"unieke_id": "99", "lve_nr": "1", "tijd_waarneming": str(_at(12, 1)),
     "verkeersintensiteit_klasse2": "4", "voertuigsnelheid_rekenkundig_klasse2": "251"},
    {"unieke_id": "29", "lve_nr": "2", "tijd_waarneming": str(_at(12, 1)),
     "verkeersintensiteit_klasse3": None},
]
EXPECTED_REJECTED = {
    "malformed_record": 3, "bad_unieke_id": 1, "bad_lve_nr": 1, "bad_tijd_waarneming": 2,
    "bad_tijd_laatst_gewijzigd": 1, "negative_intensity": 1, "bad_speed": 1, "bad_intensity": 1,
}


def _bad_line(changes: dict) -> str:
    """A reading that would be good (lane 11 at 12:01) but for `changes`."""
    row = {k: (None if v is None else str(v)) for k, v in raw_reading(11, 1, _at(12, 1)).items()}
    row.update(changes)
    return json.dumps(row)


def bad_lines() -> list[str]:
    a_good_reading = as_json_line(raw_reading(11, 1, _at(12, 9), speeds=(5, 0, 0, 0)), 1)
    return [_bad_line(c) for c in BAD_LINES_NOON] + [
        "[1, 2]",  # valid JSON, not an object
        '{"unieke_id": "11", "lve_nr',  # truncated
        f"[{a_good_reading}]",  # an array holding an object is still not an object
        "",  # a blank line is no reading at all
    ]


def test_bad_readings_are_quarantined_and_the_good_ones_give_the_clean_table(baseline, tmp_path):
    target, before = published(baseline, tmp_path)
    raw = tmp_path / "raw"
    files = land_json_at(raw, good_readings(), extra_lines={12: bad_lines()})
    noon_file = next(f for f in files if "/hour=12/" in str(f))

    assert run_job(raw, target, DAY, DAY, "--source_format", "json") == 0

    assert table_rows(target) == baseline["rows"]
    assert partition_digests(target) == before  # same bytes: nothing lost, nothing doubled
    report = last_report(target)
    assert_accounting(report)
    r = report["readings"]
    assert r["rejected"] == EXPECTED_REJECTED and r["rejected_total"] == 11
    assert r["filtered"] == GOOD_FILTERED
    assert (r["read"], r["kept"]) == (GOOD_READ + 11, GOOD_KEPT)

    run_date = report["started_at"][:10]
    quarantined = list((target / "_rejected" / f"run_date={run_date}").glob("*.parquet"))
    assert quarantined and report["output"]["rejected_path"].endswith("/_rejected")
    rejected = pa.concat_tables([pq.read_table(p) for p in quarantined]).to_pylist()
    assert Counter(row["reject_reason"] for row in rejected) == EXPECTED_REJECTED
    assert {row["run_id"] for row in rejected} == {report["run_id"]}
    assert {row["source_file"] for row in rejected} == {f"file://{noon_file}"}
    # As they arrived: the raw text of what did not parse, the whole line when malformed.
    by_reason = {}
    for row in rejected:
        by_reason.setdefault(row["reject_reason"], []).append(row)
    assert by_reason["bad_lve_nr"][0][S.UNIT_ID] == "abc"
    assert by_reason["bad_speed"][0][S.arithmetic_speed(2)] == "251"
    assert sorted(row["raw_record"][:6] for row in by_reason["malformed_record"]) == [
        '[1, 2]', '[{"bes', '{"unie']
    assert_nothing_left_behind(target)


# --- 2. schema drift -------------------------------------------------------------------


def test_a_killed_runs_quarantine_is_never_shown_and_its_rerun_shows_each_reading_once(
        baseline, tmp_path):
    """A run killed after writing its rejected readings leaves them in
    `_rejected/_pending/<run_id>/`, where no reader looks; a later run drops them once
    the run would have timed out, and keeps a pending quarantine of a run still going."""
    target, _ = published(baseline, tmp_path)
    raw = tmp_path / "raw"
    land_json_at(raw, good_readings(), extra_lines={12: bad_lines()})
    pending = target / "_rejected" / "_pending"
    killed, going = "20200101T000000Z-deadbeef", job.new_run_id()
    for run_id in (killed, going):
        (pending / run_id).mkdir(parents=True)
        shutil.copy(next(baseline["raw"].rglob("*.parquet")), pending / run_id / "part-0.parquet")

    assert run_job(raw, target, DAY, DAY, "--source_format", "json") == 0
    report = last_report(target)
    assert report["quarantines_dropped"] == [killed]
    assert sorted(p.name for p in pending.iterdir()) == [going]
    shown = pa.concat_tables([pq.read_table(p) for p in (target / "_rejected").glob("run_date=*/*.parquet")])
    assert Counter(row["reject_reason"] for row in shown.to_pylist()) == EXPECTED_REJECTED
    assert {row["run_id"] for row in shown.to_pylist()} == {report["run_id"]}


def test_json_with_every_value_a_string_equals_parquet(baseline, tmp_path):
    target, before = published(baseline, tmp_path)
    land_json_at(tmp_path / "raw", good_readings())
    assert run_job(tmp_path / "raw", target, DAY, DAY, "--source_format", "json") == 0
    assert_same_as_baseline(target, before, baseline)


def _replace(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def _ids_as_text_times_as_iso_extra_column(table: pa.Table) -> pa.Table:
    table = _replace(table, S.LANE_ID, pc.cast(table[S.LANE_ID], pa.string()))
    iso = pa.array([_iso(t) for t in table[S.OBSERVED_AT].to_pylist()], pa.string())
    table = _replace(table, S.OBSERVED_AT, iso)
    table = table.append_column("firehose_partition_key", pa.array(["x"] * len(table)))
    return table.drop_columns([S.LANE_NAME])


def _ids_as_bigint_times_as_int32_no_class_1(table: pa.Table) -> pa.Table:
    table = _replace(table, S.LANE_ID, pc.cast(table[S.LANE_ID], pa.int64()))
    table = _replace(table, S.OBSERVED_AT, pc.cast(table[S.OBSERVED_AT], pa.int32()))
    class_1 = [S.intensity(1), S.arithmetic_speed(1), S.harmonic_speed(1)]
    return table.drop_columns([S.LANE_NAME, *class_1])


def test_parquet_whose_columns_drift_between_files_gives_the_same_numbers(baseline, tmp_path):
    target, before = published(baseline, tmp_path)
    # hour 6: unieke_id string, tijd_waarneming ISO string, an extra column, no
    # beschrijvende_id; hour 12: as typed in docs/SEMANTICS.md (int32, int64); hour 18: unieke_id
    # int64, tijd_waarneming int32, no beschrijvende_id and no class 1 columns.
    land_parquet_at(tmp_path / "raw", good_readings(), variants={
        6: _ids_as_text_times_as_iso_extra_column,
        18: _ids_as_bigint_times_as_int32_no_class_1,
    })
    assert run_job(tmp_path / "raw", target, DAY, DAY) == 0
    report = assert_same_as_baseline(target, before, baseline)
    assert report["source"]["files"] == len(list((tmp_path / "raw").rglob("*.parquet")))


def test_a_file_without_an_essential_column_stops_the_run_naming_both(baseline, tmp_path, capsys):
    target, before = published(baseline, tmp_path)
    drop_unit = lambda table: table.drop_columns([S.UNIT_ID])  # noqa: E731
    files = land_parquet_at(tmp_path / "raw", good_readings(), variants={18: drop_unit})
    broken = next(f for f in files if "/hour=18/" in str(f))
    capsys.readouterr()

    assert run_job(tmp_path / "raw", target, DAY, DAY) == 1

    error = one_line_error(capsys)
    assert "lve_nr" in error and str(broken) in error
    assert partition_digests(target) == before
    assert_nothing_left_behind(target)
    assert not (target / "_rejected").exists()
    report = last_report(target)
    assert report["status"] == "failed" and report["readings"] == {}
    assert report["accounting_holds"] is None  # nothing counted, nothing to account for
    assert "lve_nr" in report["error"]


# --- 3. corrupt and empty input ---------------------------------------------------------


def _corrupt(kind: str, folder: Path, a_real_file: Path) -> Path:
    if kind == "truncated":
        data = a_real_file.read_bytes()
        path = folder / "cut.parquet"
        path.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        path = folder / "notes.txt"
        path.write_text("this is not a Parquet file\n")
    elif kind == "spark_type":  # valid Parquet, with a column type Spark cannot read
        path = folder / "clock.parquet"
        pq.write_table(pa.table({"clock": pa.array([1], pa.time64("ns"))}), path)
    else:
        path = folder / "empty.parquet"
        path.write_bytes(b"")
    return path


@pytest.mark.parametrize("kind", ["truncated", "text", "empty", "spark_type"])
def test_an_unreadable_raw_file_stops_the_run_naming_it(baseline, tmp_path, capsys, kind):
    target, before = published(baseline, tmp_path)
    shutil.copytree(baseline["raw"], tmp_path / "raw")
    noon = next((tmp_path / "raw").glob("year=2020/month=04/day=07/hour=12"))
    bad = _corrupt(kind, noon, next(noon.glob("*.parquet")))
    capsys.readouterr()

    assert run_job(tmp_path / "raw", target, DAY, DAY) == 1

    error = one_line_error(capsys)
    assert str(bad) in error and "--corrupt_files skip" in error
    if kind == "spark_type":
        assert "Illegal Parquet type: INT64 (TIME(NANOS" in error
    assert partition_digests(target) == before
    assert_nothing_left_behind(target)


@pytest.mark.parametrize("landing, given, message", [
    ("json", "parquet", "holds JSON lines, not Parquet: run with --source_format json"),
    ("csv", "parquet", "holds CSV text, not Parquet: the job reads Parquet or JSON lines"),
    ("parquet", "json", "is Parquet, not JSON lines: run with --source_format parquet"),
])
def test_a_landing_read_in_the_wrong_format_names_the_format_to_use(
        baseline, tmp_path, capsys, landing, given, message):
    """Not a corrupt file: the error says which --source_format fits, and does not
    suggest --corrupt_files skip, which would skip every file."""
    target, before = published(baseline, tmp_path)
    raw = tmp_path / "raw"
    if landing == "json":
        files = land_json_at(raw, good_readings())
    elif landing == "csv":
        files = land_json_at(raw, good_readings(), name="part-0.csv")
        for path in files:
            path.write_text("unieke_id,lve_nr,tijd_waarneming\n11,1,1586217600\n")
    else:
        shutil.copytree(baseline["raw"], raw)
        files = sorted(raw.rglob("*.parquet"))
    capsys.readouterr()

    assert run_job(raw, target, DAY, DAY, "--source_format", given) == 1

    error = one_line_error(capsys)
    assert message in error and "--corrupt_files" not in error
    assert any(str(path) in error for path in files)
    assert partition_digests(target) == before


def test_corrupt_files_skip_leaves_them_out_and_lists_them(baseline, tmp_path):
    target, before = published(baseline, tmp_path)
    shutil.copytree(baseline["raw"], tmp_path / "raw")
    noon = next((tmp_path / "raw").glob("year=2020/month=04/day=07/hour=12"))
    bad = {_corrupt(kind, noon, next(noon.glob("part-*.parquet")))
           for kind in ("truncated", "text", "empty")}

    assert run_job(tmp_path / "raw", target, DAY, DAY, "--corrupt_files", "skip") == 0

    report = assert_same_as_baseline(target, before, baseline)
    skipped = report["source"]["skipped"]
    assert {Path(s["file"].removeprefix("file:")) for s in skipped} == bad
    assert all("not a readable Parquet file" in s["reason"] for s in skipped)
    read_files = {Path(f.removeprefix("file:")) for f in report["source"]["readings_per_file"]}
    assert not read_files & bad


def test_a_day_of_only_rejected_readings_changes_nothing(baseline, tmp_path, capsys):
    """Extends tests/test_job.py's empty cases: readings there, none usable."""
    target, before = published(baseline, tmp_path)
    folder = hour_folder(tmp_path / "raw", _at(12, 2))
    folder.mkdir(parents=True)
    (folder / "part-0.json").write_text("\n".join(bad_lines()) + "\n")
    capsys.readouterr()

    assert run_job(tmp_path / "raw", target, DAY, DAY, "--source_format", "json") == 1

    error = one_line_error(capsys)
    assert "no rows to write for 2020-04-07 .. 2020-04-07: 11 readings read" in error
    assert "0 kept; the table was left unchanged" in error
    assert partition_digests(target) == before
    report = last_report(target)
    assert_accounting(report)
    assert report["readings"]["rejected"] == EXPECTED_REJECTED
    assert list((target / "_rejected").glob("run_date=*/*.parquet"))
    assert_nothing_left_behind(target)


# --- 4. faults during a run --------------------------------------------------------------


def _files_per_partition(target: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in target.glob("year=*/month=*/day=*/hour=*/*.parquet"):
        found.setdefault(str(path.parent.relative_to(target)), set()).add(path.name)
    return found


def _job_command(source: Path, target: Path, start: str, end: str, *extra: str) -> list[str]:
    return [sys.executable, str(SCRIPT), "--JOB_NAME", "test-faults", "--source_path", str(source),
            "--target_path", str(target), "--start_date", start, "--end_date", end,
            "--table_format", "parquet", *extra]


def test_a_job_killed_while_writing_leaves_the_table_as_it_was(tmp_path):
    small, big, target = tmp_path / "small", tmp_path / "big", tmp_path / "curated"
    generate(str(small), SampleSpec(start_date=dt.date(2020, 4, 7), days=2, lanes=6, seed=5))
    generate(str(big), SampleSpec(start_date=dt.date(2020, 4, 7), days=2, lanes=400, seed=5))
    assert run_job(small, target, "2020-04-07", "2020-04-08") == 0
    before, names_before = partition_digests(target), _files_per_partition(target)
    assert len(before) == 48

    log = tmp_path / "killed-job.log"
    job = subprocess.Popen(
        _job_command(big, target, "2020-04-07", "2020-04-08"), env=job_env(),
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    staging = target / publish.STAGING
    kill_when(job, lambda: any(p.is_file() for p in staging.rglob("*")), log, limit=150)

    # Killed mid-write: staging holds files, the published partitions are untouched.
    assert any(p.is_file() for p in staging.rglob("*"))
    assert (target / publish.LOCK).exists()
    assert partition_digests(target) == before
    assert _files_per_partition(target) == names_before  # no partition mixes two runs

    # The next run takes the dead run's lock over, drops its staging and replaces the
    # partitions: new files, the same bytes as before (the same input).
    assert run_job(small, target, "2020-04-07", "2020-04-08") == 0
    assert partition_digests(target) == before
    after = _files_per_partition(target)
    assert after.keys() == names_before.keys()
    assert all(after[p].isdisjoint(names_before[p]) for p in after)
    assert_nothing_left_behind(target)
    assert_accounting(last_report(target))


class _Crash(RuntimeError):
    pass


def _rename_failing_after(calls: int):
    real, done = storage.rename, []

    def rename(spark, source, target):
        if len(done) == calls:
            raise _Crash(f"crash before moving {source}")
        done.append((source, target))
        real(spark, source, target)

    return rename


def test_a_crash_while_swapping_is_finished_by_the_next_run(baseline, tmp_path):
    target = tmp_path / "curated"
    assert run_job(baseline["raw"], target, DAY, DAY, "--semantics", "athena") == 0
    old, new = partition_digests(target), baseline["digests"]
    assert old.keys() == new.keys() and all(old[p] != new[p] for p in old)

    # Two renames per partition (old aside, new in): the third fails, so the first
    # partition is swapped and the second not yet begun.
    with mock.patch.object(storage, "rename", _rename_failing_after(2)):
        with pytest.raises(_Crash):
            run_job(baseline["raw"], target, DAY, DAY, "--replace_semantics", "true")
    crashed = last_report(target)
    assert crashed["status"] == "failed"
    assert list((target / publish.JOURNAL).glob("*.json"))
    now = partition_digests(target)
    assert now.keys() == old.keys()
    assert sorted(p for p in now if now[p] == new[p]) == [sorted(new)[0]]
    assert all(now[p] in (old[p], new[p]) for p in now)  # a partition is old or new, never both
    assert not (target / publish.LOCK).exists()

    # The crashed run had not recorded its mode yet: the table still says athena.
    assert run_job(baseline["raw"], target, DAY, DAY, "--replace_semantics", "true") == 0
    report = last_report(target)
    assert report["recovered_runs"] == [crashed["run_id"]]
    assert partition_digests(target) == new  # equals a clean run's table
    assert_accounting(report)
    assert_nothing_left_behind(target)


def _fake_table(root: Path, parts: list[str], tag: str) -> None:
    for name in parts:
        folder = root / name
        folder.mkdir(parents=True)
        (folder / f"part-{tag}-1.parquet").write_text(f"{tag} {name} 1")
        (folder / f"part-{tag}-2.parquet").write_text(f"{tag} {name} 2")


def _contents(target: Path) -> dict[str, set[str]]:
    folders = (str(p.relative_to(target)) for p in target.glob("year=*/month=*/day=*/hour=*"))
    return {name: {p.read_text().split()[0] for p in (target / name).glob("*.parquet")}
            for name in folders}


@pytest.mark.parametrize("crash_after", range(0, 8))
def test_an_interrupted_publish_never_mixes_a_partition(spark, tmp_path, crash_after):
    """Every point a swap can stop at, on folders of two files each: a reader sees each
    partition old, new or (between its two moves) absent; `recover` ends in the new table."""
    parts = publish.day_partitions(dt.date(2020, 4, 7), dt.date(2020, 4, 7))[:4]
    names = [publish.partition_name(p) for p in parts]
    target = tmp_path / "t"
    _fake_table(target, names, "old")
    # The run staged hours 0..2; hour 3 has no rows any more: it is removed.
    _fake_table(target / publish.STAGING / "run-1", names[:3], "new")

    with mock.patch.object(storage, "rename", _rename_failing_after(crash_after)):
        try:
            publish.publish(spark, str(target), "run-1", parts)
            finished = True
        except _Crash:
            finished = False
    assert finished == (crash_after >= 7)  # 3 x 2 moves + 1 removal
    for name, tags in _contents(target).items():
        assert tags in ({"old"}, {"new"}), (name, tags)
        assert len(list((target / name).glob("*.parquet"))) == 2

    assert publish.recover(spark, str(target)) == ([] if finished else ["run-1"])
    assert _contents(target) == {name: {"new"} for name in names[:3]}
    assert_nothing_left_behind(target)


def test_a_journal_cut_short_is_dropped_and_the_table_kept(spark, tmp_path):
    """A crash while the journal itself was written: no move had started."""
    names = [publish.partition_name(p) for p in publish.day_partitions(
        dt.date(2020, 4, 7), dt.date(2020, 4, 7))[:2]]
    target = tmp_path / "t"
    _fake_table(target, names, "old")
    _fake_table(target / publish.STAGING / "run-2", names, "new")
    (target / publish.JOURNAL).mkdir()
    (target / publish.JOURNAL / "run-2.json").write_text('{"remove": [], "repl')

    assert publish.recover(spark, str(target)) == []
    assert _contents(target) == {name: {"old"} for name in names}
    assert_nothing_left_behind(target)


# --- 5. two runs on one target ------------------------------------------------------------

HOLD_LOCK = """
import sys
from traffic_glue.store.publish import TargetLock
with TargetLock(None, sys.argv[1], "holding-run"):
    print("locked", flush=True)
    sys.stdin.read()  # until the test closes it
"""


def test_a_second_run_on_a_locked_target_refuses_and_writes_nothing(baseline, tmp_path, capsys):
    target, before = published(baseline, tmp_path)
    reports_before = set(target.glob("_reports/*/*.json"))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(target)], env=job_env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        lock = json.loads((target / publish.LOCK).read_text())
        assert lock["pid"] == holder.pid and lock["run_id"] == "holding-run"
        capsys.readouterr()

        assert run_job(baseline["raw"], target, DAY, DAY) == 1

        error = one_line_error(capsys)
        assert str(target / publish.LOCK) in error
        assert "holding-run" in error and f"pid {holder.pid}" in error
        assert json.loads((target / publish.LOCK).read_text()) == lock  # still the holder's
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    # The first run completes and releases its lock.
    assert not (target / publish.LOCK).exists()
    assert partition_digests(target) == before
    assert not list((target / publish.STAGING).glob("*"))
    # The refused run wrote nothing into the target, not even a report.
    assert set(target.glob("_reports/*/*.json")) == reports_before


def test_a_stale_lock_of_a_dead_process_is_taken_over(baseline, tmp_path):
    target, before = published(baseline, tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (target / publish.LOCK).write_text(json.dumps({
        "run_id": "crashed-run", "host": socket.gethostname(), "pid": dead.pid,
        "since": "2020-04-08T03:00:00+00:00"}))

    assert run_job(baseline["raw"], target, DAY, DAY) == 0

    assert partition_digests(target) == before
    assert_accounting(last_report(target))
    assert_nothing_left_behind(target)


def test_a_lock_held_on_another_host_is_not_taken_over(baseline, tmp_path, capsys):
    target, before = published(baseline, tmp_path)
    (target / publish.LOCK).write_text(json.dumps({
        "run_id": "elsewhere", "host": "another-host", "pid": 1, "since": "2020-04-08T03:00:00"}))
    capsys.readouterr()
    assert run_job(baseline["raw"], target, DAY, DAY) == 1
    assert "elsewhere" in one_line_error(capsys)
    assert partition_digests(target) == before
    assert (target / publish.LOCK).exists()


# --- 6. arguments -------------------------------------------------------------------------


@pytest.mark.parametrize("extra, named", [
    (["--start_date", "2019-01-01", "--end_date", "2020-02-05"],  # 401 days, default 400
     "--max_days 400"),
    (["--start_date", "2020-04-01", "--end_date", "2020-04-07", "--max_days", "3"],
     "--max_days 3"),
    (["--source_path", "/nonexistent/raw", "--start_date", DAY, "--end_date", DAY],
     "--source_path /nonexistent/raw does not exist"),
    (["--source_path", "file:///nonexistent/raw", "--start_date", DAY, "--end_date", DAY],
     "--source_path file:///nonexistent/raw does not exist"),
])
def test_bad_arguments_stop_the_script_before_spark_starts(tmp_path, extra, named):
    source = ["--source_path", str(tmp_path)] if "--source_path" not in extra else []
    argv = [sys.executable, str(SCRIPT), "--JOB_NAME", "t", "--target_path",
            str(tmp_path / "out"), *source, *extra]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=job_env())
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("traffic_transform: error: ")
    assert named in lines[0]
    assert done.stdout == "" and not (tmp_path / "out").exists()
    assert time.monotonic() - started < 20  # no JVM was started


# --- 7. security ---------------------------------------------------------------------------

MARKER = "SECRET-MARKER-7f3a9c"
# Values of rejected readings that must never reach a log.
REJECTED_VALUES = ["lve-Q9Z-REJECTED", "tijd-Q9Z-REJECTED", "31415926", "4242424"]


def test_info_logs_never_hold_row_contents(tmp_path):
    rows = []
    for m in range(30):
        t = _at(12, m)
        reading = raw_reading(73519, 8642, t, counts=(3, 0, 0, 0), speeds=(137, 0, 0, 0))
        reading[S.LANE_NAME] = MARKER
        rows.append((reading, t + 90))
    bad = [
        _bad_line({"unieke_id": "31415926", "lve_nr": REJECTED_VALUES[0], S.LANE_NAME: MARKER}),
        _bad_line({"tijd_waarneming": REJECTED_VALUES[1], S.LANE_NAME: MARKER}),
        _bad_line({S.intensity(2): "4", S.arithmetic_speed(2): REJECTED_VALUES[3]}),
        '{"unieke_id": "31415926", "lve_nr": "' + MARKER,
    ]
    land_json_at(tmp_path / "raw", rows, extra_lines={12: bad})
    target = tmp_path / "curated"
    done = subprocess.run(
        _job_command(tmp_path / "raw", target, DAY, DAY, "--source_format", "json",
                     "--log_level", "INFO"),
        env=job_env(), capture_output=True, text=True, timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert " INFO " in output  # INFO logging was on
    report = last_report(target)
    assert_accounting(report)
    assert report["readings"]["rejected_total"] == 4 and report["output"]["rows"] == 30
    for secret in [MARKER, *REJECTED_VALUES, "73519", "137.0"]:
        assert secret not in output, secret


SCANNED = ("glue_jobs", "tools", "workflows", "infra")
TEXT_SUFFIXES = {".py", ".yaml", ".yml", ".json", ".sql", ".sh", ".toml", ".cfg", ".txt", ".md"}
ACCOUNT_ID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
S3_LITERAL = re.compile(r"s3://([A-Za-z0-9][A-Za-z0-9.\-]{2,62})")
# Placeholders that are no account and no bucket (a comment's example, local defaults).
PLACEHOLDER_ACCOUNTS = {"000000000000"}
PLACEHOLDER_BUCKETS = {"bucket"}


def test_no_file_hard_codes_an_account_a_key_or_a_bucket():
    problems = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*")):
            if not path.is_file() or path.suffix not in TEXT_SUFFIXES or ".egg-info" in str(path):
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                where = f"{path.relative_to(ROOT)}:{number}"
                problems += [f"{where}: account id {m}" for m in ACCOUNT_ID.findall(line)
                             if m not in PLACEHOLDER_ACCOUNTS]
                problems += [f"{where}: access key" for _ in ACCESS_KEY.findall(line)]
                problems += [f"{where}: bucket {m}" for m in S3_LITERAL.findall(line)
                             if m not in PLACEHOLDER_BUCKETS]
    assert not problems, problems
