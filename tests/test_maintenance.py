"""Undoing a run and expiring old snapshots of the Iceberg table (`tools.table`)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.job_helpers import iceberg_table, last_report, run_job, table_rows
from tests.test_curated import SPEED_NEW, SPEED_OLD, landings  # noqa: F401  (fixture)
from tests.test_tables import SPEC, first_snapshot, publish_run
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
    # The empty snapshot the first run's branch was made on: no run made it.
    [empty] = [snapshot.snapshot_id for snapshot in iceberg_table(target).snapshots()
               if snapshot.parent_snapshot_id is None]
    capsys.readouterr()
    assert table_cli.main(["history", "--target_path", str(target)]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    run_at, days_at = header.index("run"), header.index("days")
    assert [(line[run_at:days_at].rstrip(), line.endswith("<- current")) for line in lines] == [
        (first, False), (second, False), (f"(rollback to run {first})", False),
        (f"(rollback to snapshot {empty})", True),
    ]


def _history(target: str, capsys) -> tuple[list[tuple], list[dict]]:
    """`tools.table history` of `target` as text, each line cut at the header's columns
    (time, snapshot, run, the rest split), and as JSON lines."""
    capsys.readouterr()
    assert table_cli.main(["history", "--target_path", target]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split() == ["made", "current", "(UTC)", "snapshot", "run", "days", "mode", "rows"]
    run_at, days_at = header.index("run"), header.index("days")
    text = [(line[:19], int(line[19:run_at]), line[run_at:days_at].rstrip(), line[days_at:].split())
            for line in lines]
    assert table_cli.main(["history", "--target_path", target, "--json"]) == 0
    return text, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_history_shows_a_rollback_and_only_the_latest_move_of_main_as_current(spark, tmp_path, capsys):
    path = str(tmp_path / "t")
    table = tables.open_table(spark, SPEC, path=path)
    table.create_if_missing()
    [a] = publish_run(table, "run-a", "d1", [(1, 1)])
    [b] = publish_run(table, "run-b", "d2", [(2, 2)])  # adds part 2: 2 rows
    empty = first_snapshot(table)
    assert table_cli.main(["rollback", "--target_path", path, "--to_run", "run-b"]) == 0

    # The rollback is the last move of main: the only current line.
    text, found = _history(path, capsys)
    assert [line[1:] for line in text] == [
        (a, "run-a", ["d1", "athena", "1"]),
        (b, "run-b", ["d2", "athena", "2"]),
        (a, "(rollback to run run-a)", ["1", "<-", "current"]),
    ]
    assert [(c["snapshot_id"], c["rollback"], c["rollback_to_run"], c["current"]) for c in found] == [
        (a, False, None, False), (b, False, None, False), (a, True, "run-a", True)]

    [c] = publish_run(table, "run-c", "d3", [(3, 1), (4, 1)])  # from run-a's snapshot: part 1 replaced, 2 rows
    text, found = _history(path, capsys)
    assert [line[1:] for line in text] == [
        (a, "run-a", ["d1", "athena", "1"]),
        (b, "run-b", ["d2", "athena", "2"]),
        (a, "(rollback to run run-a)", ["1"]),
        (c, "run-c", ["d3", "athena", "2", "<-", "current"]),
    ]
    assert [{k: v for k, v in commit.items() if k != "made_current_at"} for commit in found] == [
        {"snapshot_id": a, "before_snapshot_id": empty, "run_id": "run-a", "rollback": False,
         "rollback_to_run": None, "days": "d1", "semantics": "athena", "rows": 1, "current": False},
        {"snapshot_id": b, "before_snapshot_id": a, "run_id": "run-b", "rollback": False,
         "rollback_to_run": None, "days": "d2", "semantics": "athena", "rows": 2, "current": False},
        {"snapshot_id": a, "before_snapshot_id": b, "run_id": None, "rollback": True,
         "rollback_to_run": "run-a", "days": None, "semantics": None, "rows": 1, "current": False},
        {"snapshot_id": c, "before_snapshot_id": a, "run_id": "run-c", "rollback": False,
         "rollback_to_run": None, "days": "d3", "semantics": "athena", "rows": 2, "current": True},
    ]
    # The text and the JSON tell the same times, in order.
    times = [dt.datetime.fromisoformat(commit["made_current_at"]) for commit in found]
    assert [line[0] for line in text] == [f"{t:%Y-%m-%d %H:%M:%S}" for t in times] and times == sorted(times)


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
