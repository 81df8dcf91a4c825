"""What a run replaces in the curated table (`store/curated.py`): exactly the rows it
was asked to, and nothing else. Each test compares the rows that must stay before and
after.

Three locations: lanes 11, 31 and 51 (lve_nr 1, 3, 5), each a carriageway of its own
in the runs' configuration (`corrected` ids `LOCATION`), readings at 06:00-06:02 and
12:00-12:02 on 2020-04-07 and 2020-04-08; one vehicle a minute, so a lane's speed is
the location's `currentspeed`. The `old` landing drives at 90 km/h, the `new` one at
50 km/h everywhere.
"""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from tests.factories import T0, curated_df, curated_row, frame, land_parquet, raw_reading
from tests.job_helpers import iceberg_table, last_report, partition_digests, run_job, table_rows
from traffic_glue.compute import configuration
from traffic_glue.compute import schema as S
from traffic_glue.store import tables

DAY_7, DAY_8 = dt.date(2020, 4, 7), dt.date(2020, 4, 8)
LANES = {11: 1, 31: 3, 51: 5}  # lane -> lve_nr
# lane -> its carriageway: road A001 (lane 11), A003, A005, direction 1, at km lve_nr.
ROADS = {lane: (f"A00{unit}0001", f"{unit},0") for lane, unit in LANES.items()}
LOCATION = {11: configuration.location_id("A0010001|m1000|main"),
            31: configuration.location_id("A0030001|m3000|main"),
            51: configuration.location_id("A0050001|m5000|main")}
SPEED_OLD, SPEED_NEW = 90, 50


def _readings(speed: int, days=(0, 1), hours=(6, 12)) -> list[dict]:
    return [
        raw_reading(lane, unit, T0 + day * 86400 + hour * 3600 + 60 * minute,
                    counts=(1, 0, 0, 0), speeds=(speed, 0, 0, 0))
        for lane, unit in LANES.items() for day in days for hour in hours for minute in range(3)
    ]


def _write_configuration(path: Path) -> Path:
    points = "".join(
        f'<meetpunt unieke_id="{lane}"><lve_nr>{LANES[lane]}</lve_nr><Ident_8>{road}</Ident_8>'
        f"<Kmp_Rsys>{km}</Kmp_Rsys><Rijstrook>R10</Rijstrook></meetpunt>"
        for lane, (road, km) in ROADS.items()
    )
    path.write_bytes(gzip.compress(f"<mivconfig>{points}</mivconfig>".encode()))
    return path


@pytest.fixture(scope="module")
def configuration_path(tmp_path_factory) -> str:
    return str(_write_configuration(tmp_path_factory.mktemp("configuration") / "miv-config-2020-04-01.xml.gz"))


@pytest.fixture(scope="module")
def landings(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("replace")
    land_parquet(root / "old", _readings(SPEED_OLD))
    land_parquet(root / "new", _readings(SPEED_NEW))
    # Raw data of the 8th only, and there only at noon (a lifecycle rule took the rest).
    land_parquet(root / "new_8th_noon", _readings(SPEED_NEW, days=(1,), hours=(12,)))
    return {p.name: p for p in root.iterdir()}


@pytest.fixture(scope="module")
def published(landings, configuration_path, tmp_path_factory) -> dict:
    """A table of the old landing over both days, and its rows."""
    target = tmp_path_factory.mktemp("published") / "curated"
    assert run_job(landings["old"], target, "2020-04-07", "2020-04-08",
                   "--configuration_path", configuration_path) == 0
    rows = table_rows(target)
    assert len(rows) == 3 * 2 * 2 * 3 and {r[2] for r in rows} == {float(SPEED_OLD)}
    assert {r[0] for r in rows} == set(LOCATION.values())  # one carriageway per lane
    return {"target": target, "rows": rows, "landing": landings["old"],
            "configuration": configuration_path}


def copy_of(published: dict, tmp_path: Path) -> Path:
    """The published table, for one test to change. An Iceberg table's metadata names
    its files by absolute path, so a copied folder would still write to the original:
    it is made again instead, by the same run."""
    target = tmp_path / "curated-copy"  # a name that needs quoting as an identifier
    assert _run(published["landing"], target, published, "2020-04-07", "2020-04-08") == 0
    assert table_rows(target) == published["rows"]
    return target


def _day(row) -> dt.date:
    return dt.date(*row[-4:-1])


def _run(landing: Path, target: Path, published: dict, start: str, end: str, *extra: str) -> int:
    """A run over `target` with the published table's configuration (which an `athena`
    run does not read)."""
    return run_job(landing, target, start, end, "--configuration_path", published["configuration"], *extra)


def test_locations_replace_only_those_locations_rows_of_the_run_days(landings, published, tmp_path):
    target = copy_of(published, tmp_path)
    chosen = LOCATION[31]  # lane 31's carriageway
    assert _run(landings["new"], target, published, "2020-04-07", "2020-04-07",
                "--locations", str(chosen)) == 0
    after = table_rows(target)
    replaced = [r for r in after if r[0] == chosen and _day(r) == DAY_7]
    assert [(r[1], r[2]) for r in replaced] == [
        (T0 + h * 3600 + 60 * m, float(SPEED_NEW)) for h in (6, 12) for m in range(3)]
    # Every other row, of that location on the 8th and of the others on both days, as it was.
    kept = [r for r in after if not (r[0] == chosen and _day(r) == DAY_7)]
    assert kept == [r for r in published["rows"] if not (r[0] == chosen and _day(r) == DAY_7)]
    assert len(after) == len(published["rows"])


def test_a_day_without_raw_readings_is_left_as_it_is(landings, published, tmp_path, capsys):
    target = copy_of(published, tmp_path)
    capsys.readouterr()
    assert _run(landings["new_8th_noon"], target, published, "2020-04-07", "2020-04-08") == 0
    after = table_rows(target)
    # The 7th: no raw reading was read for it, so its rows are untouched.
    assert [r for r in after if _day(r) == DAY_7] == [r for r in published["rows"] if _day(r) == DAY_7]
    # The 8th: replaced; its 06:00 hour has no row any more, so it is removed.
    assert sorted((r[0], r[1], r[2]) for r in after if _day(r) == DAY_8) == sorted(
        (location, T0 + 86400 + 12 * 3600 + 60 * m, float(SPEED_NEW))
        for location in LOCATION.values() for m in range(3))
    report = last_report(target)
    assert report["output"]["days_left_unchanged"] == ["2020-04-07"]
    assert report["output"]["partitions_removed"] == ["year=2020/month=4/day=8/hour=6"]
    assert "left unchanged: no raw readings  2020-04-07" in capsys.readouterr().out


def test_the_other_semantics_is_refused_and_changes_nothing(landings, published, tmp_path, capsys):
    target = copy_of(published, tmp_path)
    before = partition_digests(target)
    capsys.readouterr()
    assert _run(landings["new"], target, published, "2020-04-07", "2020-04-07",
                "--semantics", "athena") == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("traffic_transform: error: ") and len(error.splitlines()) == 1
    assert "holds --semantics corrected rows and this run computes athena" in error
    assert "--replace_semantics true" in error
    assert partition_digests(target) == before and table_rows(target) == published["rows"]


def test_replace_semantics_rewrites_only_the_run_days(landings, published, tmp_path, capsys):
    target = copy_of(published, tmp_path)
    assert _run(landings["new"], target, published, "2020-04-07", "2020-04-07",
                "--semantics", "athena", "--replace_semantics", "true") == 0
    after = table_rows(target)
    assert [r for r in after if _day(r) == DAY_8] == [r for r in published["rows"] if _day(r) == DAY_8]
    assert {r[2] for r in after if _day(r) == DAY_7} == {float(SPEED_NEW)}
    report = last_report(target)
    assert report["output"]["semantics_replaced"] == "corrected"
    assert "semantics: the table held corrected rows; the run's days are athena now" in (
        capsys.readouterr().out)
    assert iceberg_table(target).properties[tables.SEMANTICS_PROPERTY] == "athena"
    # The table holds athena now: a corrected run is refused in turn.
    assert _run(landings["new"], target, published, "2020-04-08", "2020-04-08") == 2


def test_a_days_filter_takes_whole_months_as_one_term_and_keeps_exactly_its_days(spark):
    from traffic_glue.store import curated

    # Every day of 2020-01-30 .. 2020-03-02 (February 2020 has 29 days), hours 0 and 5,
    # and a row whose day is NULL.
    first = dt.date(2020, 1, 30)
    every = [first + dt.timedelta(days=n) for n in range(33)]
    rows = [(d.year, d.month, d.day, h) for d in every for h in (0, 5)] + [(2020, 2, None, 0)]
    hours = frame(spark, rows, "year int, month int, day int, hour int")
    # All of February, the 31st of January and the 2nd of March.
    chosen = [dt.date(2020, 1, 31), *(dt.date(2020, 2, d) for d in range(1, 30)), dt.date(2020, 3, 2)]
    where = curated.days_filter(chosen)
    kept = sorted(tuple(r) for r in hours.where(where).collect())
    assert kept == sorted((d.year, d.month, d.day, h) for d in chosen for h in (0, 5))
    # Three terms: January's one day, February whole (no day list), March's one day.
    text = str(where)
    assert text.count(" OR ") == 3 - 1 + 1  # the terms, and the OR onto `false` it starts from
    assert "(day IN (31))" in text and "(day IN (2))" in text and "day IN (1," not in text
    # With hours, per day: only the hours given.
    by_hour = curated.days_filter([dt.date(2020, 2, 29)], {dt.date(2020, 2, 29): [5]})
    assert [tuple(r) for r in hours.where(by_hour).collect()] == [(2020, 2, 29, 5)]
    assert hours.where(curated.days_filter([])).count() == 0
    # The same filter on the fields of a struct (a table's metadata tables' `partition`).
    nested = hours.select(F.struct("year", "month", "day", "hour").alias("partition"))
    assert sorted(tuple(r.partition) for r in nested.where(curated.days_filter(chosen, prefix="partition.")).collect()) == kept


def test_a_runs_branch_metadata_is_read_for_its_days_only_and_the_other_days_stay(spark, tmp_path, monkeypatch):
    """`CuratedWrite` reads the partitions and file metrics of the run's days alone (a
    table of a year made a daily run read all 8,760 of them); the commit still replaces
    only those days: the 7th, not asked for, keeps its rows and files."""
    from traffic_glue.store import curated

    t8 = T0 + 86400  # 2020-04-08 00:00Z
    table = curated.open_table(spark, path=str(tmp_path / "c"))
    table.create_if_missing("corrected")
    first = curated.CuratedWrite(table, "run-1", [DAY_7, DAY_8], "both", "corrected")
    first.stage(curated_df(spark, [curated_row(1, T0 + 3600 * h) for h in (0, 5)]
                           + [curated_row(1, t8 + 3600 * h) for h in (1, 2, 3)]))
    first.publish([DAY_7, DAY_8])
    day_7_before = [r for r in table_rows(tmp_path / "c") if r[1] < t8]
    files_7 = {k: v for k, v in partition_digests(tmp_path / "c").items() if "/day=7/" in k}
    assert len(day_7_before) == 2 and len(files_7) == 2

    read = []
    for name in ("partitions", "files"):
        method = getattr(tables.TableRun, name)

        def recording(self, snapshot_id, *where, _method=method, _name=name):
            found = _method(self, snapshot_id, *where)
            partitions = found if isinstance(found, dict) else [file.partition for file in found]
            read.append((_name, sorted(set(map(tuple, partitions)))))
            return found
        monkeypatch.setattr(tables.TableRun, name, recording)

    second = curated.CuratedWrite(table, "run-2", [DAY_8], "2020-04-08", "corrected")
    second.stage(curated_df(spark, [curated_row(1, t8 + 3600 * 2, speed=50.0), curated_row(2, t8 + 3600 * 4)]))
    files = second.staged_file_metrics([DAY_8])
    published = second.publish([DAY_8])
    # Every read of the branch's metadata held the 8th's hours alone, never the 7th's.
    # (The hours 1 and 3 emptied make another snapshot: its files are read again.)
    assert read == [("files", [(2020, 4, 8, 1), (2020, 4, 8, 2), (2020, 4, 8, 3), (2020, 4, 8, 4)]),
                    ("files", [(2020, 4, 8, 2), (2020, 4, 8, 4)])]
    assert sorted(p for p, _ in files) == [(2020, 4, 8, 2), (2020, 4, 8, 4)]
    assert sorted(published.removed) == ["year=2020/month=4/day=8/hour=1", "year=2020/month=4/day=8/hour=3"]
    # The 7th as it was (rows and files); the 8th the second run's rows alone.
    after = table_rows(tmp_path / "c")
    assert [r for r in after if r[1] < t8] == day_7_before
    assert {k: v for k, v in partition_digests(tmp_path / "c").items() if "/day=7/" in k} == files_7
    assert [(r[0], r[1], r[2]) for r in after if r[1] >= t8] == [(1, t8 + 7200, 50.0), (2, t8 + 14400, 80.0)]


def test_a_run_that_writes_every_hour_its_day_held_reads_the_branchs_files_once(spark, tmp_path, monkeypatch):
    """Staging lists the branch's files of the run's days; with no hour to empty, the
    branch stays that snapshot, and the quality check's metrics come from the same
    listing (a daily rerun read the metadata twice: 0.2-0.3 s)."""
    from traffic_glue.store import curated

    t8 = T0 + 86400  # 2020-04-08 00:00Z
    table = curated.open_table(spark, path=str(tmp_path / "c"))
    table.create_if_missing("corrected")
    first = curated.CuratedWrite(table, "run-1", [DAY_8], "2020-04-08", "corrected")
    first.stage(curated_df(spark, [curated_row(1, t8 + 3600 * h) for h in (1, 2)]))
    first.publish([DAY_8])

    read = []
    listing = tables.TableRun.files
    monkeypatch.setattr(tables.TableRun, "files",
                        lambda self, snapshot_id, where=None: read.append(snapshot_id) or listing(self, snapshot_id, where))
    second = curated.CuratedWrite(table, "run-2", [DAY_8], "2020-04-08", "corrected")
    second.stage(curated_df(spark, [curated_row(1, t8 + 3600, speed=40.0), curated_row(1, t8 + 7260, speed=None),
                                    curated_row(2, t8 + 3 * 3600, speed=60.0)]))
    files = second.staged_file_metrics([DAY_8])
    published = second.publish([DAY_8])
    assert read == [published.snapshot_id]  # one listing, of the snapshot the commit published
    speeds = {hour: (m[S.CURRENT_SPEED].nulls, m[S.CURRENT_SPEED].lower, m[S.CURRENT_SPEED].upper) for hour, m in files}
    assert speeds == {(2020, 4, 8, 1): (0, 40.0, 40.0), (2020, 4, 8, 2): (1, None, None), (2020, 4, 8, 3): (0, 60.0, 60.0)}
    assert [(p.partition, p.files) for p in published.written] == [
        ("year=2020/month=4/day=8/hour=1", 1), ("year=2020/month=4/day=8/hour=2", 1), ("year=2020/month=4/day=8/hour=3", 1)]
    assert published.removed == []


@pytest.mark.parametrize("name, day", [
    ("year=2020/month=4/day=7/hour=5", dt.date(2020, 4, 7)),
    ("year=2021/month=12/day=31/hour=23", dt.date(2021, 12, 31)),
    ("year=2020/month=2/day=30/hour=0", None),  # no such day
    ("year=2020/month=4/hour=5", None),  # no day
    ("_reports", None),
])
def test_partition_day_reads_the_day_of_a_partition_name(name, day):
    from traffic_glue.store.curated import partition_day, partition_name

    assert partition_day(name) == day
    if day is not None:
        assert partition_name((day.year, day.month, day.day, int(name.rsplit("=", 1)[1]))) == name
