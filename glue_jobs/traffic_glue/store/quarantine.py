"""The run's rejected readings, kept beside the curated table in `_rejected/`.

They are written where no reader looks yet (`_rejected/_pending/<run_id>/`) and moved
into view (`_rejected/run_date=<day>/`) when the run ends, so a run killed in between
and its rerun never show them twice. A pending folder whose run would have timed out
is dropped by a later run: its readings are found again by a rerun.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from traffic_glue.compute import validation
from traffic_glue.store import storage

REJECTED = "_rejected"
PENDING = "_pending"  # rejected readings of a run that has not ended yet


def pending_path(target: str, run_id: str = "") -> str:
    return "/".join(p for p in (target.rstrip("/"), REJECTED, PENDING, run_id) if p)


def shown_path(target: str) -> str:
    return f"{target.rstrip('/')}/{REJECTED}"


def write_pending(
    raw: DataFrame, source_file: Column, context: tuple[int, int], target: str, run_id: str
) -> str:
    """The run's rejected readings (`validation.rejected_readings`) with the run's id,
    in one file, under the run's pending folder."""
    pending = pending_path(target, run_id)
    (
        validation.rejected_readings(raw, source_file, context)
        .withColumn("run_id", F.lit(run_id))
        .coalesce(1)
        .write.mode("overwrite")
        .parquet(pending)
    )
    return pending


def show(spark: SparkSession, target: str, run_id: str, run_date: str) -> str:
    """Move the run's pending rejected readings to `_rejected/run_date=<day>/`."""
    pending = pending_path(target, run_id)
    for entry in storage.list_files(spark, pending):
        name = entry.path.rstrip("/").rsplit("/", 1)[-1]
        storage.rename(spark, entry.path, f"{shown_path(target)}/run_date={run_date}/{name}")
    storage.delete(spark, pending)
    return shown_path(target)


def discard(spark: SparkSession, target: str, run_id: str) -> None:
    """Drop the pending readings of a run that failed."""
    storage.delete(spark, pending_path(target, run_id))


def drop_stale(spark: SparkSession, target: str, older_than: dt.datetime) -> list[str]:
    """Pending quarantines of runs started before `older_than` (ended without showing
    them: killed, or failed); returns their run ids."""
    dropped = []
    for entry in storage.list_dirs(spark, pending_path(target)):
        run_id = entry.path.rstrip("/").rsplit("/", 1)[-1]
        try:
            started = dt.datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            continue  # a run id given by hand: not known to be old
        if started < older_than:
            storage.delete(spark, entry.path)
            dropped.append(run_id)
    return dropped
