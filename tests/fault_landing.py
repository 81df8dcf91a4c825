"""The good landing that the bad-input, crash and security tests break on purpose, the
table a clean run makes of it (`Baseline`, made once per session by conftest's
`baseline` fixture), and the checks they share.

Numbers below are worked out by hand from `good_readings()`. Every run of the good
landing gets its configuration (`write_configuration`), which puts lanes 11 and 12
(lve_nr 1) on one carriageway (`LOCATION_1`) and lane 21 (lve_nr 2) on another
(`LOCATION_2`).

The curated table is an Iceberg table: "nothing changed" is `table_state` (the current
snapshot of `main`, the bytes of each partition, the rows, the shown quarantine) equal
before and after; "nothing left behind" is no pending quarantine and no run's branch.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests import job_helpers
from tests.factories import RAW_ARROW_SCHEMA, T0, hour_folder, raw_reading
from tests.job_helpers import iceberg_table, last_report, partition_digests, table_rows
from traffic_glue.compute import configuration
from traffic_glue.compute import schema as S
from traffic_glue.store import quarantine, tables

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


def write_configuration(folder: Path) -> Path:
    """The configuration of the good landing's lanes, as a snapshot file in `folder`."""
    points = "".join(
        f'<meetpunt unieke_id="{lane}"><lve_nr>{unit}</lve_nr><Ident_8>{road}</Ident_8>'
        f"<Kmp_Rsys>{km}</Kmp_Rsys><Rijstrook>{kind}</Rijstrook></meetpunt>"
        for lane, unit, road, km, kind in [(11, 1, "A0010001", "1,0", "R10"), (12, 1, "A0010001", "1,0", "R11"),
                                           (21, 2, "A0020001", "2,0", "R10")]
    )
    path = folder / "miv-config-2020-04-01.xml.gz"
    path.write_bytes(gzip.compress(f"<mivconfig>{points}</mivconfig>".encode()))
    return path


# --- the good landing -------------------------------------------------------------------


def at(hour: int, minute: int) -> int:
    """2020-04-07 `hour`:`minute` UTC, in epoch seconds."""
    return T0 + hour * HOUR + minute * 60


def good_readings(hours: tuple[int, ...] = BLOCK_HOURS) -> list[tuple[dict, int]]:
    """(raw reading, arrival epoch) pairs; every one valid.

    Per block hour H, minutes 0..5: location 1 = lanes 11 and 12, location 2 = lane 21.
    Block 12 also holds: lane 12 defect at minute 3, lane 21 occupancy -1 at minute 4
    and a correction of lane 11 at minute 2 (later tijd_laatst_gewijzigd, wins).
    Plus: one context reading (23:50 the day before), and two readings whose event
    time lies outside the run's days but that land in folders the run reads.

    read 3*18 + 1 + 1 + 2 = 58; outside_days 2, defect 1, unknown_occupancy 1,
    duplicate 1; kept 53. Rows: 6 + 6 per block, less location 2 at 12:04 = 35.

    `hours` leaves blocks out (a landing whose run empties the other hours); block 12
    must stay, it holds the correction.
    """
    pairs = []
    for hour in hours:
        for m in range(MINUTES):
            t, special = at(hour, m), hour == 12
            lane_11 = raw_reading(11, 1, t, counts=(2, 0, 0, 0),
                                  speeds=(LANE_11_SPEEDS[m], 0, 0, 0))
            lane_12 = (raw_reading(12, 1, t, counts=(0, 0, 0, 0), speeds=(0, 0, 0, 0), defect=1)
                       if special and m == 3
                       else raw_reading(12, 1, t, counts=(1, 1, 0, 0), speeds=(70, 60, 0, 0)))
            lane_21 = raw_reading(21, 2, t, counts=(3, 0, 0, 1), speeds=(50 + m, 0, 0, 40),
                                  occupancy=-1 if special and m == 4 else 5)
            pairs += [(lane_11, t + 90), (lane_12, t + 90), (lane_21, t + 95)]
    t = at(12, 2)
    correction = raw_reading(11, 1, t, counts=(2, 0, 0, 0), speeds=(40, 0, 0, 0),
                             modified=LATE_MODIFIED)
    pairs.append((correction, t + 400))
    context = T0 - 600  # 2020-04-06 23:50, inside the 60-minute lookback
    pairs.append((raw_reading(21, 2, context, counts=(3, 0, 0, 1), speeds=(60, 0, 0, 40)),
                  context + 90))
    # 2020-04-05 10:00, landing at 2020-04-07 12:30; 2020-04-08 05:00 landing 05:01.
    early, after = T0 - 2 * 86400 + 10 * HOUR, T0 + 86400 + 5 * HOUR
    pairs.append((raw_reading(11, 1, early, speeds=(88, 0, 0, 0)), at(12, 30)))
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


def iso(epoch: int) -> str:
    """ISO-8601 in Brussels summer time, as the stream writes it."""
    moment = dt.datetime.fromtimestamp(epoch, dt.timezone(dt.timedelta(hours=2)))
    return moment.isoformat()


def as_json_line(row: dict, index: int) -> str:
    """Every value a JSON string; tijd_waarneming alternately ISO-8601, epoch as a
    string and epoch as a number."""
    values = {k: (None if v is None else str(v)) for k, v in row.items()}
    t = row[S.OBSERVED_AT]
    values[S.OBSERVED_AT] = (iso(t), str(t), t)[index % 3]
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


# --- bad readings ------------------------------------------------------------------------

BAD_LINES_NOON = [
    # bad_unieke_id, bad_lve_nr, bad_tijd_waarneming (text, then epoch milliseconds)
    {"unieke_id": None, "lve_nr": "1", "tijd_waarneming": str(at(12, 1))},
    {"unieke_id": "11", "lve_nr": "abc", "tijd_waarneming": str(at(12, 1))},
    {"unieke_id": "11", "lve_nr": "1", "tijd_waarneming": "yesterday"},
    {"unieke_id": "11", "lve_nr": "1", "tijd_waarneming": str(at(12, 1) * 1000)},
    # bad_tijd_laatst_gewijzigd
    {"unieke_id": "11", "lve_nr": "1", "tijd_waarneming": str(at(12, 1)),
     "tijd_laatst_gewijzigd": "soon"},
    # negative_intensity; bad_speed; bad_intensity (lanes 97, 99 and 29).
    {"unieke_id": "97", "lve_nr": "1", "tijd_waarneming": str(at(12, 1)),
     "verkeersintensiteit_klasse2": "-3"},
    {"unieke_id": "99", "lve_nr": "1", "tijd_waarneming": str(at(12, 1)),
     "verkeersintensiteit_klasse2": "4", "voertuigsnelheid_rekenkundig_klasse2": "251"},
    {"unieke_id": "29", "lve_nr": "2", "tijd_waarneming": str(at(12, 1)),
     "verkeersintensiteit_klasse3": None},
]
EXPECTED_REJECTED = {
    "malformed_record": 3, "bad_unieke_id": 1, "bad_lve_nr": 1, "bad_tijd_waarneming": 2,
    "bad_tijd_laatst_gewijzigd": 1, "negative_intensity": 1, "bad_speed": 1, "bad_intensity": 1,
}


def bad_line(changes: dict) -> str:
    """A reading that would be good (lane 11 at 12:01) but for `changes`."""
    row = {k: (None if v is None else str(v)) for k, v in raw_reading(11, 1, at(12, 1)).items()}
    row.update(changes)
    return json.dumps(row)


def bad_lines() -> list[str]:
    """The 11 rejected readings of `EXPECTED_REJECTED` (and a blank line, no reading)."""
    a_good_reading = as_json_line(raw_reading(11, 1, at(12, 9), speeds=(5, 0, 0, 0)), 1)
    return [bad_line(c) for c in BAD_LINES_NOON] + [
        "[1, 2]",  # valid JSON, not an object
        '{"unieke_id": "11", "lve_nr',  # truncated
        f"[{a_good_reading}]",  # an array holding an object is still not an object
        "",  # a blank line is no reading at all
    ]


# --- running the job ---------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """The good readings landed as Parquet, and the table a clean run made of them."""

    raw: Path
    configuration: str
    target: Path  # not to be changed: the tests make tables of their own
    rows: list[tuple]
    digests: dict[str, list[str]]
    readings: dict  # the clean run's report's accounting

    def run(self, source: Path, target: Path, start: str, end: str, *extra: str) -> int:
        """The job in this process, with the good landing's configuration (as every run
        of these tests gets it); its exit status."""
        return job_helpers.run_job(source, target, start, end, "--configuration_path", self.configuration, *extra)

    def rows_without(self, hour: int) -> list[tuple]:
        return [r for r in self.rows if r[-1] != hour]

    def digests_without(self, hour: int) -> dict[str, list[str]]:
        return {k: v for k, v in self.digests.items() if not k.endswith(f"/hour={hour}")}


def make_baseline(root: Path) -> Baseline:
    configuration_path = str(write_configuration(root))
    land_parquet_at(root / "raw", good_readings())
    assert job_helpers.run_job(root / "raw", root / "curated", DAY, DAY,
                               "--configuration_path", configuration_path) == 0
    return Baseline(
        raw=root / "raw",
        configuration=configuration_path,
        target=root / "curated",
        rows=table_rows(root / "curated"),
        digests=partition_digests(root / "curated"),
        readings=last_report(root / "curated")["readings"],
    )


def published_copy(baseline: Baseline, folder: Path) -> tuple[Path, "TableState"]:
    """A table of the baseline's partitions at `folder`/curated, and its state. Made by
    the same run: an Iceberg table's metadata names its files by absolute path, so a
    copied folder would still write into the original."""
    target = folder / "curated"
    assert baseline.run(baseline.raw, target, DAY, DAY) == 0
    before = table_state(target)
    assert before.digests == baseline.digests and len(before.digests) == len(BLOCK_HOURS)
    return target, before


def shared_state(target: Path, baseline: Baseline) -> TableState:
    """The state of a table that several tests of a module share (`published_copy`, once),
    checked to be the baseline's still as a test begins."""
    state = table_state(target)
    assert state.digests == baseline.digests and state.rows == baseline.rows, (
        "the shared table is not the baseline's any more: an earlier test changed it")
    return state


def job_command(source: Path, target: Path, start: str, end: str, *extra: str) -> list[str]:
    """The job script run in a process of its own (`job_helpers.job_env`)."""
    return [sys.executable, str(SCRIPT), "--JOB_NAME", "test-faults", "--source_path", str(source),
            "--target_path", str(target), "--start_date", start, "--end_date", end, *extra]


# --- what a run left --------------------------------------------------------------------


@dataclass(frozen=True)
class TableState:
    """What readers of the curated table see: `main`'s snapshot, its partitions' bytes
    and rows, and the shown quarantine's files."""

    snapshot_id: int | None
    digests: dict[str, list[str]]
    rows: list[tuple]
    rejected_shown: list[str]


def table_state(target: Path) -> TableState:
    snapshot = iceberg_table(target).current_snapshot()
    shown = target.glob(f"{quarantine.REJECTED}/run_date=*/*")
    return TableState(
        snapshot_id=snapshot.snapshot_id if snapshot else None,
        digests=partition_digests(target),
        rows=table_rows(target),
        rejected_shown=sorted(str(p.relative_to(target)) for p in shown),
    )


def referenced_files(target: Path) -> set[Path]:
    """The data files `main`'s current snapshot lists."""
    return {
        Path(task.file.file_path.removeprefix("file:"))
        for task in iceberg_table(target).scan().plan_files()
    }


def run_branches(target: Path) -> list[str]:
    """The branches runs made (`traffic_run_<run id>`) still in the table's metadata."""
    return sorted(name for name in iceberg_table(target).refs() if name.startswith(tables.RUN_BRANCH_PREFIX))


def assert_nothing_left_behind(target: Path) -> None:
    """No pending quarantine and no run's branch: the run cleaned up (refs: `main` only)."""
    assert not list((target / quarantine.REJECTED / quarantine.PENDING).glob("*"))
    assert set(iceberg_table(target).refs()) == {"main"}


def assert_accounting(report: dict) -> None:
    r = report["readings"]
    assert report["accounting_holds"] is True
    assert r["read"] == r["kept"] + r["filtered_total"] + r["rejected_total"]
    assert r["rejected_total"] == sum(r["rejected"].values())
    assert r["filtered_total"] == sum(r["filtered"].values())


def assert_same_as_baseline(target: Path, before: TableState, baseline: Baseline) -> dict:
    """The run left the table and the accounting exactly as the good landing gives them;
    returns its report."""
    assert table_rows(target) == baseline.rows
    assert partition_digests(target) == before.digests
    report = last_report(target)
    assert_accounting(report)
    assert report["readings"] == baseline.readings
    return report


def one_line_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("traffic_transform: error: ")
    return lines[0]
