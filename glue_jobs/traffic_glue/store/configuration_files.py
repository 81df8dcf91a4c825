"""Reading `--configuration_path`: the configuration snapshots a run uses, from a local
folder or S3 alike (Hadoop's file system), and the lane map its readings are joined
with (`transforms.with_location`).

`--configuration_path` is one `.xml` / `.xml.gz` file, in force for every reading, or
a folder of dated snapshots (`configuration.snapshot_time` reads the date from the
name), each in force from its time until the next one's; the earliest also for every
earlier reading (docs/SEMANTICS.md, "The configuration"). A run reads only the
snapshots it needs: the one in force when its context range starts and those that
come into force before its output range ends.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession

from traffic_glue.compute import configuration, transforms
from traffic_glue.store import frames, storage
from traffic_glue.compute.configuration import ConfigurationError, Snapshot
from traffic_glue.compute.run_range import RunRange

SUFFIXES = (".xml", ".xml.gz")


def _is_document(path: str) -> bool:
    return path.rstrip("/").lower().endswith(SUFFIXES)


def snapshots_needed(dated: list[tuple[dt.datetime, str]], span: RunRange) -> list[tuple[dt.datetime, str]]:
    """Of `dated` (time, path) snapshots, those in force at some minute of the run's
    context range: the last one dated at or before its start (or the earliest, which
    also covers older readings), and every later one dated before its end."""
    ordered = sorted(dated)
    start = dt.datetime.fromtimestamp(span.context_start, dt.timezone.utc)
    end = dt.datetime.fromtimestamp(span.output_end, dt.timezone.utc)
    before = [item for item in ordered if item[0] <= start]
    first = before[-1] if before else ordered[0]
    return [first] + [item for item in ordered if first[0] < item[0] < end]


def read_configuration(spark: SparkSession, path: str, span: RunRange) -> list[Snapshot]:
    """The snapshots of `--configuration_path` the run uses; `ConfigurationError`
    names the file or folder that cannot be used."""
    if _is_document(path):
        if not storage.exists(spark, path):
            raise ConfigurationError(f"--configuration_path {path} does not exist")
        name = path.rstrip("/").rsplit("/", 1)[-1]
        return [Snapshot(name, None, configuration.parse_configuration(storage.read_bytes(spark, path), path))]
    entries = [e for e in storage.list_files(spark, path) if _is_document(e.path)]
    if not entries:
        raise ConfigurationError(
            f"--configuration_path {path}: no configuration snapshot "
            f"({' or '.join('*' + s for s in SUFFIXES)}) in that folder"
        )
    dated = [(configuration.snapshot_time(e.path), e.path) for e in entries]
    times: dict[dt.datetime, str] = {}
    for time, snapshot in dated:
        if time in times:
            raise ConfigurationError(
                f"--configuration_path {path}: {times[time]} and {snapshot} are dated alike "
                f"({time:%Y-%m-%d %H:%M:%S} UTC): which one is in force?"
            )
        times[time] = snapshot
    return [
        Snapshot(p.rsplit("/", 1)[-1], time, configuration.parse_configuration(storage.read_bytes(spark, p), p))
        for time, p in snapshots_needed(dated, span)
    ]


def configuration_lane_map(spark: SparkSession, snapshots: list[Snapshot]) -> DataFrame:
    """`configuration.lane_map` as a DataFrame of `transforms.LANE_MAP_SCHEMA`."""
    rows = [
        (a.lane_id, a.valid_from, a.valid_to, a.location_id)
        for a in configuration.lane_map(snapshots)
    ]
    return frames.driver_frame(spark, rows, transforms.LANE_MAP_SCHEMA)
