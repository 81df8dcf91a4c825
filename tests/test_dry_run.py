"""`--dry_run`: what a run would do, said from listings and metadata; nothing changes."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from tests.factories import T0, land_parquet, raw_reading
from tests.job_helpers import run_job

HOUR = 3600
DAY = 86400


def _readings(hour_start: int, minutes=range(10, 20)) -> list[dict]:
    """Ten readings of one lane in one hour; each arrives 90 s later, in the same hour's folder."""
    return [raw_reading(11, 1, hour_start + 60 * m) for m in minutes]


def _tree(root: Path) -> dict[str, str]:
    """Every file under `root` (metadata, reports, data) with its content's digest."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def _last_job_id(spark) -> int:
    """The highest id of a Spark job this session has run, once its events are in."""
    context = spark.sparkContext._jsc.sc()
    context.listenerBus().waitUntilEmpty()
    jobs = context.statusStore().jobsList(None)
    return max((jobs.apply(i).jobId() for i in range(jobs.size())), default=-1)


@pytest.fixture
def published(tmp_path) -> Path:
    """An Iceberg table holding 2020-04-07 hours 5, 6 and 7 (10 rows each)."""
    raw = tmp_path / "raw_before"
    land_parquet(raw, [r for h in (5, 6, 7) for r in _readings(T0 + h * HOUR)])
    assert run_job(raw, tmp_path / "curated", "2020-04-07", "2020-04-07") == 0
    return tmp_path / "curated"


def test_a_dry_run_says_what_would_change_and_changes_nothing(spark, published, tmp_path, capsys):
    # The new landing: 2020-04-07 hours 5 and 6 only (7 is gone), 2020-04-08 hour 10,
    # nothing of 2020-04-09.
    raw = tmp_path / "raw"
    land_parquet(raw, _readings(T0 + 5 * HOUR) + _readings(T0 + 6 * HOUR, range(0, 30))
                 + _readings(T0 + DAY + 10 * HOUR))
    before, last_job = _tree(published), _last_job_id(spark)
    capsys.readouterr()

    code = run_job(raw, published, "2020-04-07", "2020-04-09", "--dry_run")

    out = capsys.readouterr().out
    assert code == 0, out
    assert _tree(published) == before  # no data, metadata, report or quarantine file
    assert _last_job_id(spark) == last_job  # no Spark job ran
    lines = [line.strip() for line in out.splitlines()]
    assert "days 2020-04-07 .. 2020-04-09 (UTC), --semantics corrected" in lines
    # Processing hours: the lookback's hour before the first day, to 24 late hours after the last.
    assert any(line.endswith("processing hours 2020-04-06 23:00 .. 2020-04-11 00:00 UTC") for line in lines)
    assert "3 folders, 3 files, 50 readings" in lines  # 10 + 30 + 10, from the footers
    assert "year=2020/month=04/day=07/hour=06     1 files,         30 readings" in lines
    assert f"table: file:{published} (iceberg), exists" in lines
    assert "holds --semantics corrected rows" in lines
    assert "2020-04-07: replaced, hours 5-6 written (3 published); removed: hour 7" in lines
    assert "2020-04-08: replaced, hour 10 written (0 published)" in lines
    assert "2020-04-09: left unchanged, no raw readings (0 published)" in lines
    assert "every other partition is left unchanged (the table holds 30 rows in 3 files)" in lines
    assert "configuration: none given: every lane would be a location of its own" in lines
    assert f"locations table: file:{published}/_locations (the configuration's locations are recorded)" in lines


def _snapshot(folder: Path, name: str, lanes: int) -> Path:
    """A configuration snapshot of `lanes` lanes (11, 12, ...) on one carriageway."""
    points = "".join(
        f'<meetpunt unieke_id="{11 + n}"><lve_nr>1</lve_nr><Ident_8>A0140001</Ident_8>'
        f"<Kmp_Rsys>94,692</Kmp_Rsys><Rijstrook>R{10 + n}</Rijstrook></meetpunt>"
        for n in range(lanes)
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(gzip.compress(f"<mivconfig>{points}</mivconfig>".encode()))
    return folder / name


def test_a_dry_run_names_the_configuration_snapshots_the_run_would_use(spark, published, tmp_path, capsys):
    """Days 2020-04-07 .. 08: the run would use the snapshot in force when its context
    starts (2020-04-06 23:00) and those dated before its output ends (2020-04-09 00:00)."""
    raw = tmp_path / "raw"
    land_parquet(raw, _readings(T0 + 5 * HOUR))
    folder = tmp_path / "configuration"
    _snapshot(folder, "miv-config-2020-03-01.xml.gz", 3)  # replaced by the next before the run
    _snapshot(folder, "miv-config-2020-04-01.xml.gz", 2)
    _snapshot(folder, "miv-config-2020-04-08T120000Z.xml.gz", 3)
    _snapshot(folder, "miv-config-2020-04-09.xml.gz", 4)  # after the run's days
    before, last_job = _tree(published), _last_job_id(spark)
    capsys.readouterr()

    code = run_job(raw, published, "2020-04-07", "2020-04-08", "--dry_run",
                   "--configuration_path", str(folder))

    out = capsys.readouterr().out
    assert code == 0, out
    assert _tree(published) == before and _last_job_id(spark) == last_job
    lines = [line.strip() for line in out.splitlines()]
    at = lines.index(f"configuration: {folder}")
    assert lines[at + 1: at + 4] == [
        "miv-config-2020-04-01.xml.gz: 2 lanes, dated 2020-04-01 00:00:00 UTC",
        "miv-config-2020-04-08T120000Z.xml.gz: 3 lanes, dated 2020-04-08 12:00:00 UTC",
        f"table: file:{published} (iceberg), exists",
    ]
    assert f"locations table: file:{published}/_locations (the configuration's locations are recorded)" in lines

    # The earliest snapshot is dated after the run's first reading: it covers those too.
    later = tmp_path / "later"
    _snapshot(later, "miv-config-2020-04-07T060000Z.xml.gz", 2)
    single = _snapshot(tmp_path / "single", "network.xml", 3)
    assert run_job(raw, published, "2020-04-07", "2020-04-07", "--dry_run",
                   "--configuration_path", str(later)) == 0
    assert ("miv-config-2020-04-07T060000Z.xml.gz: 2 lanes, dated 2020-04-07 06:00:00 UTC: the earliest "
            "snapshot, so in force for the run's older readings too") in [
        line.strip() for line in capsys.readouterr().out.splitlines()]
    # One file: in force for every reading.
    assert run_job(raw, published, "2020-04-07", "2020-04-07", "--dry_run",
                   "--configuration_path", str(single)) == 0
    assert "network.xml: 3 lanes, in force for every reading" in [
        line.strip() for line in capsys.readouterr().out.splitlines()]
    assert _tree(published) == before and _last_job_id(spark) == last_job


def test_an_athena_dry_run_says_the_locations_table_is_not_touched(tmp_path, capsys):
    raw = tmp_path / "raw"
    land_parquet(raw, _readings(T0 + 5 * HOUR))
    target = tmp_path / "curated"

    code = run_job(raw, target, "2020-04-07", "2020-04-07", "--dry_run", "--semantics", "athena")

    out = capsys.readouterr().out
    assert code == 0, out
    lines = [line.strip() for line in out.splitlines()]
    assert "locations table: not touched (--semantics athena names no location)" in lines
    assert not [line for line in lines if line.startswith("configuration:")]  # athena reads none
    assert not target.exists()


def test_a_dry_run_names_what_would_stop_the_run(published, tmp_path, capsys):
    raw = tmp_path / "raw"
    land_parquet(raw, _readings(T0 + 5 * HOUR))
    before = _tree(published)
    capsys.readouterr()

    code = run_job(raw, published, "2020-04-07", "2020-04-07", "--dry_run", "true",
                   "--semantics", "athena")

    out = capsys.readouterr().out
    assert code == 1
    assert f"the run would stop here: the table file:{published} holds" in out
    assert "holds --semantics corrected rows and this run computes athena" in out
    assert "event-time partitions" not in out
    assert _tree(published) == before


def test_a_dry_run_of_a_new_table_says_the_run_creates_it(tmp_path, capsys):
    raw = tmp_path / "raw"
    land_parquet(raw, _readings(T0 + 5 * HOUR))
    target = tmp_path / "new" / "curated"

    code = run_job(raw, target, "2020-04-07", "2020-04-07", "--dry_run")

    out = capsys.readouterr().out
    assert code == 0, out
    assert f"table: file:{target} (iceberg), does not exist yet: the run creates it" in out
    assert "2020-04-07: replaced, hour 5 written (0 published)" in out
    assert not target.exists()


def test_a_catalog_table_given_by_its_path_alone_is_refused(tmp_path, capsys):
    """A catalog names its metadata `00000-<uuid>.metadata.json` and writes no version
    hint: a path's own catalog would not see that table and start a second one beside it."""
    raw = tmp_path / "raw"
    land_parquet(raw, _readings(T0 + 5 * HOUR))
    target = tmp_path / "curated"
    (target / "metadata").mkdir(parents=True)
    (target / "metadata" / "00000-1b2c.metadata.json").write_text("{}")
    before = _tree(target)

    assert run_job(raw, target, "2020-04-07", "2020-04-07") == 1

    assert "holds an Iceberg table of a catalog: give its name as --target_table" in capsys.readouterr().err
    # The folder is as it was: a run refused before it knows its table writes no report
    # into a folder that is not its own.
    assert _tree(target) == before
