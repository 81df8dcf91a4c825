"""The quarantine's pending folders: shown once when the run ends, dropped when stale."""

from __future__ import annotations

import datetime as dt

from traffic_glue.store import quarantine


def _pending(target, run_id):
    folder = target / "_rejected" / "_pending" / run_id
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(b"PAR1")
    return folder


def test_stale_pending_folders_are_dropped_and_others_kept(spark, tmp_path):
    old, recent, by_hand = "20200101T000000Z-deadbeef", "20200101T020000Z-cafe0001", "my-run"
    for run_id in (old, recent, by_hand):
        _pending(tmp_path, run_id)
    cutoff = dt.datetime(2020, 1, 1, 1, tzinfo=dt.timezone.utc)
    assert quarantine.drop_stale(spark, str(tmp_path), cutoff) == [old]
    left = sorted(p.name for p in (tmp_path / "_rejected" / "_pending").iterdir())
    assert left == sorted([recent, by_hand])


def test_show_moves_a_run_s_files_under_its_run_date(spark, tmp_path):
    _pending(tmp_path, "run-1")
    _pending(tmp_path, "run-2")
    shown = quarantine.show(spark, str(tmp_path), "run-1", "2020-04-08")
    assert shown == f"{tmp_path}/_rejected"
    assert (tmp_path / "_rejected" / "run_date=2020-04-08" / "part-0.parquet").read_bytes() == b"PAR1"
    assert not (tmp_path / "_rejected" / "_pending" / "run-1").exists()
    assert (tmp_path / "_rejected" / "_pending" / "run-2" / "part-0.parquet").exists()  # another run's
