"""`--dry_run`: what a run would do, said from listings and metadata; nothing changes."""

from __future__ import annotations

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
    assert f"locations table: file:{published}/_locations (the lanes of the run's days are added)" in lines


def test_a_dry_run_names_what_would_stop_the_run(published, tmp_path, capsys):
    raw = tmp_path / "raw"
    land_parquet(raw, _readings(T0 + 5 * HOUR))
    before = _tree(published)
    capsys.readouterr()

    code = run_job(raw, published, "2020-04-07", "2020-04-07", "--dry_run", "true",
                   "--semantics", "athena")

    out = capsys.readouterr().out
    assert code == 1
    assert "the run would stop here: the table at" in out
    assert "holds --semantics corrected rows and this run computes athena" in out
    assert "event-time partitions" not in out
    assert _tree(published) == before


def test_a_dry_run_of_a_new_table_says_the_run_creates_it(tmp_path, capsys):
    raw = tmp_path / "raw"
    land_parquet(raw, _readings(T0 + 5 * HOUR))
    target = tmp_path / "new" / "curated"

    code = run_job(raw, target, "2020-04-07", "2020-04-07", "--dry_run", "--table_format", "parquet")

    out = capsys.readouterr().out
    assert code == 0, out
    assert f"table: {target} (parquet), does not exist yet: the run creates it" in out
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
    # The table is as it was; only the failed run's report is beside it.
    after = _tree(target)
    assert {k: v for k, v in after.items() if not k.startswith("_reports/")} == before
    assert [k for k in after if k.startswith("_reports/")]
