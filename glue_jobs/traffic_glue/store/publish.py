"""Writing the curated table so that a crash or a rerun never loses or doubles rows.

A run writes its rows to `<target>/_staging/<run_id>/` first. Only when that write has
succeeded does it publish: it records a journal of the hour partitions it replaces,
then swaps each partition folder (old one aside, staged one in) and cleans up. A run
that dies while writing leaves the published table untouched; one that dies while
swapping is finished by the next run (`recover`), which replays the journal.
Folders starting with `_` are invisible to Spark, Athena and the crawler.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from pyspark.sql import DataFrame, SparkSession

from traffic_glue.compute import schema as S
from traffic_glue.store import storage

STAGING, JOURNAL, TRASH, LOCK = "_staging", "_journal", "_trash", "_lock"
REJECTED, REPORTS = "_rejected", "_reports"

Partition = tuple[int, int, int, int]


class TargetLockedError(RuntimeError):
    """Another run is writing the same target."""


def day_partitions(start: dt.date, end: dt.date) -> list[Partition]:
    """Every event-time hour partition of the days `[start, end]`."""
    parts, day = [], start
    while day <= end:
        parts.extend((day.year, day.month, day.day, hour) for hour in range(24))
        day += dt.timedelta(days=1)
    return parts


def partition_name(part: Partition) -> str:
    return "/".join(f"{key}={value}" for key, value in zip(S.EVENT_PARTITIONS, part))


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def layout_for_write(curated: DataFrame) -> DataFrame:
    """One task per hour partition, rows in a fixed order: one file per partition whose
    content does not depend on how Spark scheduled the run (the plan's second shuffle)."""
    return curated.repartition(*S.EVENT_PARTITIONS).sortWithinPartitions(
        *S.EVENT_PARTITIONS, S.LOCATION_ID, S.RECORD_TIMESTAMP
    )


def write_staged(curated: DataFrame, staging: str) -> None:
    (
        layout_for_write(curated)
        .write.mode("overwrite")
        .option("compression", "snappy")
        .partitionBy(*S.EVENT_PARTITIONS)
        .parquet(staging)
    )


@dataclass
class PartitionFiles:
    partition: str
    files: int
    bytes: int


@dataclass
class PublishResult:
    written: list[PartitionFiles] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    snapshot_id: int | None = None  # the Iceberg snapshot readers see after the run

    @property
    def files(self) -> int:
        return sum(p.files for p in self.written)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.written)


def staged_files(spark: SparkSession, staging: str, parts: list[Partition]) -> list[PartitionFiles]:
    found = []
    for part in parts:
        files = storage.list_files(spark, _join(staging, partition_name(part)))
        if files:
            found.append(PartitionFiles(partition_name(part), len(files), sum(f.size for f in files)))
    return found


def staging_dir(target: str, run_id: str) -> str:
    return _join(target, STAGING, run_id)


def publish(
    spark: SparkSession, target: str, run_id: str, parts: list[Partition]
) -> PublishResult:
    """Replace exactly `parts` of `target` with what the run staged (none: removed)."""
    staging = staging_dir(target, run_id)
    written = staged_files(spark, staging, parts)
    with_rows = {p.partition for p in written}
    journal = {
        "run_id": run_id,
        "replace": sorted(with_rows),
        "remove": sorted(
            name
            for name in map(partition_name, parts)
            if name not in with_rows and storage.exists(spark, _join(target, name))
        ),
    }
    storage.write_json(spark, _join(target, JOURNAL, f"{run_id}.json"), journal)
    _apply(spark, target, journal)
    return PublishResult(written=written, removed=journal["remove"])


def _apply(spark: SparkSession, target: str, journal: dict) -> None:
    """Carry out a journal; safe to repeat after a crash at any point."""
    run_id = journal["run_id"]
    staging, trash = staging_dir(target, run_id), _join(target, TRASH, run_id)
    for name in journal["replace"]:
        new, old, aside = _join(staging, name), _join(target, name), _join(trash, name)
        if not storage.exists(spark, new):
            continue  # already swapped in
        if storage.exists(spark, old):
            if storage.exists(spark, aside):
                storage.delete(spark, aside)
            storage.rename(spark, old, aside)
        storage.rename(spark, new, old)
    for name in journal["remove"]:
        old = _join(target, name)
        if storage.exists(spark, old):
            storage.rename(spark, old, _join(trash, name))
    storage.delete(spark, trash)
    storage.delete(spark, staging)
    storage.delete(spark, _join(target, JOURNAL, f"{run_id}.json"))


def recover(spark: SparkSession, target: str) -> list[str]:
    """Finish publishes a crash interrupted; drop staging a crashed write left behind.

    Call it only while holding the target's lock. Returns the run ids it finished.
    """
    finished = []
    for entry in storage.list_files(spark, _join(target, JOURNAL)):
        if entry.path.endswith(".json"):
            try:
                journal = storage.read_json(spark, entry.path)
            except json.JSONDecodeError:
                # Cut short by a crash while it was written: `publish` writes the whole
                # journal before its first move, so nothing was moved yet. Without this
                # every later run would stop here; its staging goes below.
                storage.delete(spark, entry.path)
                continue
            _apply(spark, target, journal)
            finished.append(journal["run_id"])
    for leftover in storage.list_dirs(spark, _join(target, STAGING)):
        storage.delete(spark, leftover.path)
    storage.delete(spark, _join(target, TRASH))
    return finished


# --- one writer at a time -------------------------------------------------------


def _local_path(target: str) -> Path | None:
    parsed = urlparse(target)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else target)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# A Glue job run in one of these states writes nothing any more.
FINISHED_JOB_RUN_STATES = {"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED"}


@dataclass
class TargetLock:
    """An exclusive claim on a target folder, held for a run's whole write and publish.

    Locally it is a file created with O_EXCL (atomic); a lock left by a process that
    no longer runs on this host is taken over. On S3 (no atomic create-if-absent
    through S3A) the Glue job's `MaxConcurrentRuns: 1` is what keeps runs apart, and
    the lock file never blocks for ever: it is taken over once it has expired
    (`expiry_minutes` after it was taken, set to at least the job's timeout), or at
    once when the Glue job run that holds it has finished (a run killed by its timeout).
    """

    spark: SparkSession
    target: str
    run_id: str
    expiry_minutes: int = 60
    job_name: str | None = None
    job_run_id: str | None = None  # Glue's JOB_RUN_ID, when the job runs on Glue
    glue_client_factory: object = None
    path: str = ""
    taken_over: dict | None = None  # the dead or expired holder this run replaced

    def __enter__(self) -> "TargetLock":
        self.path = _join(self.target, LOCK)
        now = dt.datetime.now(dt.timezone.utc)
        holder = {
            "run_id": self.run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": now.isoformat(timespec="seconds"),
            "expires": (now + dt.timedelta(minutes=self.expiry_minutes)).isoformat(timespec="seconds"),
            "job_name": self.job_name,
            "job_run_id": self.job_run_id,
        }
        local = _local_path(self.path)
        if local is not None:
            self._acquire_local(local, holder)
        else:
            if storage.exists(self.spark, self.path):
                current = storage.read_json(self.spark, self.path)
                if not self._finished(current, now):
                    raise TargetLockedError(self._message(current))
                self.taken_over = current
            storage.write_json(self.spark, self.path, holder)
        return self

    def _finished(self, holder: dict, now: dt.datetime) -> bool:
        """Whether a lock found on S3 belongs to a run that can no longer be writing."""
        expires = holder.get("expires")
        if expires and dt.datetime.fromisoformat(expires) <= now:
            return True
        if holder.get("job_name") and holder.get("job_run_id"):
            factory = self.glue_client_factory or _glue_client
            try:
                run = factory().get_job_run(JobName=holder["job_name"], RunId=holder["job_run_id"])
            except Exception:  # unknown run, no permission, no network: not known to be over
                return False
            return run["JobRun"].get("JobRunState") in FINISHED_JOB_RUN_STATES
        return False

    def _acquire_local(self, local: Path, holder: dict) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                handle = os.open(local, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                current = _read_local_lock(local)
                stale = (
                    current.get("host") == holder["host"]
                    and not _pid_alive(int(current.get("pid", -1)))
                )
                if not stale:
                    raise TargetLockedError(self._message(current)) from None
                local.unlink(missing_ok=True)
                self.taken_over = current
                continue
            with os.fdopen(handle, "w") as out:
                json.dump(holder, out)
            return
        raise TargetLockedError(self._message(_read_local_lock(local)))

    def _message(self, holder: dict) -> str:
        until = f", until {holder['expires']}" if holder.get("expires") else ""
        return (
            f"target {self.target} is being written by run {holder.get('run_id')} "
            f"(host {holder.get('host')}, pid {holder.get('pid')}, since {holder.get('since')}"
            f"{until}); this run stops without writing. Remove {self.path} only if that run is dead."
        )

    def __exit__(self, *exc) -> None:
        local = _local_path(self.path)
        if local is not None:
            local.unlink(missing_ok=True)
        else:
            storage.delete(self.spark, self.path)


def _glue_client():
    import boto3

    return boto3.client("glue")


def _read_local_lock(local: Path) -> dict:
    for _ in range(3):
        try:
            return json.loads(local.read_text() or "{}")
        except (json.JSONDecodeError, FileNotFoundError):
            time.sleep(0.05)  # the holder is between creating and writing it
    return {}
