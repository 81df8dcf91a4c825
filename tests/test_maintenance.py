"""Undoing a run and expiring old snapshots of the Iceberg table (`tools.table`)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.job_helpers import iceberg_table, last_report, run_job, table_rows
from tests.test_curated import SPEED_NEW, SPEED_OLD, landings  # noqa: F401  (fixture)
from tools import table as table_cli
from traffic_glue.store import tables
from traffic_glue.jobs import maintenance


def test_rollback_to_a_run_restores_the_rows_before_it_exactly(landings, tmp_path, capsys):  # noqa: F811
    target = tmp_path / "traffic-minutes"  # a name that needs quoting as an identifier
    assert run_job(landings["old"], target, "2020-04-07", "2020-04-08") == 0
    first, old_rows = last_report(target)["run_id"], table_rows(target)
    assert run_job(landings["new"], target, "2020-04-07", "2020-04-07") == 0
    second = last_report(target)["run_id"]
    assert table_rows(target) != old_rows

    capsys.readouterr()
    assert table_cli.main(["history", "--target_path", str(target), "--json"]) == 0
    commits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(c["run_id"], c["days"], c["semantics"], c["rows"], c["current"]) for c in commits] == [
        (first, "2020-04-07..2020-04-08", "corrected", 36, False),
        (second, "2020-04-07..2020-04-07", "corrected", 36, True),
    ]
    assert commits[1]["before_snapshot_id"] == commits[0]["snapshot_id"]

    assert table_cli.main(["rollback", "--target_path", str(target), "--to_run", second]) == 0
    assert f"reads as before run {second}" in capsys.readouterr().out
    assert table_rows(target) == old_rows  # pyiceberg reads the restored snapshot
    # Undoing the first run too leaves the table as it was before any run: empty.
    assert table_cli.main(["rollback", "--target_path", str(target), "--to_run", first]) == 0
    assert table_rows(target) == []


def test_rollback_to_an_unknown_run_fails_naming_it(landings, tmp_path, capsys):  # noqa: F811
    target = tmp_path / "curated"
    assert run_job(landings["old"], target, "2020-04-07", "2020-04-07") == 0
    rows = table_rows(target)
    capsys.readouterr()
    assert table_cli.main(["rollback", "--target_path", str(target), "--to_run", "nope"]) == 1
    assert "run nope made no commit" in capsys.readouterr().err
    assert table_rows(target) == rows


def test_expire_keeps_the_current_rows_and_drops_what_only_old_snapshots_need(
        spark, landings, tmp_path):  # noqa: F811
    target = tmp_path / "curated"
    for landing in ("old", "new", "old"):
        assert run_job(landings[landing], target, "2020-04-07", "2020-04-07") == 0
    rows = table_rows(target)
    assert {r[2] for r in rows} == {float(SPEED_OLD)}
    data_files = set((target / "data").rglob("*.parquet"))
    assert len(data_files) == 3 * 2  # three runs' two hours, all still referenced
    (target / "_reports" / "keep-me.txt").write_text("not the table's")

    table = tables.open_table(spark, None, path=f"file:{target}")
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=8)
    result = maintenance.expire(table, retention_days=7, now=later)
    assert result["data_files_deleted"] == 4  # the first two runs' files
    assert len(iceberg_table(target).snapshots()) == 1
    assert table_rows(target) == rows
    assert len(set((target / "data").rglob("*.parquet"))) == 2
    assert (target / "_reports" / "keep-me.txt").exists()  # outside data/: never an orphan
    assert {r[2] for r in table_rows(target)} != {float(SPEED_NEW)}


@pytest.mark.parametrize("argv, message", [
    (["expire", "--target_path", "x", "--retention_days", "-1"], "--retention_days must be >= 0"),
    (["rollback", "--target_path", "x"], "one of the arguments --to_run/--to-run --to_snapshot/--to-snapshot is required"),
])
def test_bad_arguments_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as done:
        table_cli.parse_args(argv)
    assert done.value.code == 2 and message in capsys.readouterr().err
