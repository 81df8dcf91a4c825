"""The curated table (docs/SEMANTICS.md, "The curated output"): its spec, and how a run
replaces its days in one commit (`CuratedWrite`, through the table seam `tables`).

A run hands its rows over in two steps:

1. `stage(rows)`: the run's one pass over the data, onto the run's branch. Nothing a
   reader sees changes.
2. `publish(days)`: the staged rows replace exactly `days` (the run's days for which it
   read raw readings); every other day stays as it is. In each of those days an hour
   that has no staged row is removed. Then `main` moves to the branch: one commit.

In between, `staged_rows(days)` are the rows of `days` as that commit would publish them
(the branch, settled: `settle`), which the run's data quality rules look at, and
`rows_per_day_before()` the rows per day readers saw before the run.

The table's folder also holds, beside `data/` and `metadata/`, the run reports
(`_reports/`) and the quarantine (`_rejected/`): `_` folders no reader lists.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from traffic_glue.compute import schema as S
from traffic_glue.compute.quality import ColumnMetrics
from traffic_glue.store import frames, tables

REPORTS = "_reports"  # run_date=<day the run ran>/<run id>.json
REPORTS_BY_DAY = "_reports_by_day"  # day=<each day it processed>/<run id>.json, the same report

SPEC = tables.TableSpec(
    kind="the curated table",
    schema=S.CURATED_TABLE_SCHEMA,
    partitioned_by=S.EVENT_PARTITIONS,
    # The job lays rows out itself (`layout_for_write`): one file per hour.
    properties={"write.distribution-mode": "none"},
)


def open_table(spark: SparkSession, table: str | None = None, path: str | None = None,
               argument: str = "target") -> tables.IcebergTable:
    return tables.open_table(spark, SPEC, table=table, path=path, argument=argument)


def partition_name(hour: tuple) -> str:
    """`year=2020/month=4/day=7/hour=5`, as the report names an hour partition."""
    return "/".join(f"{key}={int(value)}" for key, value in zip(S.EVENT_PARTITIONS, hour))


def partition_day(name: str) -> dt.date | None:
    """The day of an hour partition named as `partition_name` names it; None for another name."""
    values = dict(part.partition("=")[::2] for part in name.split("/"))
    try:
        return dt.date(int(values["year"]), int(values["month"]), int(values["day"]))
    except (KeyError, ValueError):
        return None


def day_of(hour: tuple) -> dt.date:
    return dt.date(int(hour[0]), int(hour[1]), int(hour[2]))


def days_filter(days: list[dt.date], hours: dict[dt.date, list[int]] | None = None, prefix: str = ""):
    """Rows of `days` (of only `hours[day]` where given): ORs of equalities and IN lists
    on the partition columns, which Spark prunes on and Iceberg takes as a delete filter.
    Whole days go by month (`year = Y AND month = M [AND day IN (...)]`): a year's filter
    is twelve terms, not 365, and travels with every task of the reads it filters.
    `prefix`: where the columns are fields of a struct (`partition.` in a table's
    metadata tables)."""
    year, month, day_, hour = (F.col(f"{prefix}{c}") for c in S.EVENT_PARTITIONS)
    terms = []
    if hours is None:
        by_month: dict[tuple[int, int], list[int]] = {}
        for day in sorted(set(days)):
            by_month.setdefault((day.year, day.month), []).append(day.day)
        for (y, m), in_month in by_month.items():
            whole = len(in_month) == calendar.monthrange(y, m)[1]
            term = (year == y) & (month == m) & (day_.isNotNull() if whole else day_.isin(in_month))
            terms.append(term)
    else:
        for day in days:
            terms.append((year == day.year) & (month == day.month) & (day_ == day.day) & hour.isin(hours[day]))
    return functools.reduce(lambda a, b: a | b, terms, F.lit(False))


def of_locations(locations: tuple[int, ...]) -> Column:
    """Rows of `locations` (`uniqueid`): what a `--locations` run replaces."""
    return F.col(S.LOCATION_ID).isin(list(locations))


def layout_for_write(curated: DataFrame, tasks: int | None = None) -> DataFrame:
    """Whole hour partitions per task (`tasks` of them: `compute.plan`; else the session's
    shuffle partitions), rows sorted by hour, then location and minute: one file per
    partition, written one at a time, whose content does not depend on how Spark
    scheduled the run (the plan's second shuffle)."""
    spread = curated.repartition(tasks, *S.EVENT_PARTITIONS) if tasks else curated.repartition(*S.EVENT_PARTITIONS)
    return spread.sortWithinPartitions(*S.EVENT_PARTITIONS, S.LOCATION_ID, S.RECORD_TIMESTAMP)


# Iceberg's clustered writer: the rows of a task come sorted by hour (`layout_for_write`),
# so one file is open at a time. The fanout writer, Iceberg's default for a table without
# a sort order, keeps one open per hour a task writes until the task ends: a year's run
# held hundreds of open Parquet writers per task and ran out of heap.
WRITE_OPTIONS = {"fanout-enabled": "false"}


def published_hours(table: tables.IcebergTable, days: list[dt.date]) -> tuple[dict[dt.date, set[int]], int | None, dict]:
    """The hours of `days` the table's current snapshot holds, the snapshot and its
    summary (no Spark job: the dry run's question)."""
    found, snapshot, summary = table.planned_partitions(
        [{"year": d.year, "month": d.month, "day": d.day} for d in days]
    )
    hours: dict[dt.date, set[int]] = {}
    for hour in found:
        hours.setdefault(day_of(hour), set()).add(int(hour[3]))
    return hours, snapshot, summary


@dataclass(frozen=True)
class Published:
    """What a run's commit did to the curated table."""

    written: list[tables.PartitionFiles] = field(default_factory=list)  # hours it wrote
    removed: list[str] = field(default_factory=list)  # hours of its days it emptied
    snapshot_id: int | None = None  # the snapshot readers see after it

    @property
    def files(self) -> int:
        return sum(p.files for p in self.written)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.written)


class CuratedWrite:
    """One run's replacement of some days of the curated table, on the run's branch."""

    def __init__(self, table: tables.IcebergTable, run_id: str, days: list[dt.date], days_text: str, mode: str):
        self.table = table
        self.run = table.begin(run_id)
        self.properties = tables.snapshot_properties(run_id, days_text, mode)
        # The run's rows lie on its days (`transforms.filter_output_rows`), so the branch's
        # partitions and files are listed for those days only: on a table of a year, a
        # daily rerun collected all 8,760 files' metrics (2.15 s; its day's 0.84-0.92 s).
        self._run_days = days_filter(days, prefix="partition.")
        self._head: int | None = None
        self._written: set[tuple] = set()
        self._listed: tuple[int | None, list[tables.DataFile]] = (None, [])  # a snapshot's files of the run's days
        self._settled: tuple[list[dt.date], dict[tuple, tables.PartitionFiles], list[tuple]] | None = None

    def branch_off(self) -> None:
        """The run's branch, before its rows are staged (`tables.TableRun.branch_off`)."""
        self.run.branch_off()

    def stage(self, rows: DataFrame, tasks: int | None = None) -> None:
        """The run's rows on its branch (the one pass over the data), in `tasks` tasks."""
        self._head = self.run.overwrite_partitions(layout_for_write(rows, tasks),
                                                   {**self.properties, **WRITE_OPTIONS})
        self._written = tables.added_by(tables.partitions_of(self._files(self._head)), self._head)

    def settle(self, days: list[dt.date]) -> None:
        """Make the branch what the commit of `days` publishes: the hours the staged rows
        reached on other days as they were, the hours of `days` the run did not write
        emptied (once: again for the same days does nothing)."""
        if self._settled is not None and self._settled[0] == list(days):
            return
        wanted = set(days)
        self._restore_unasked_hours(wanted)
        hours = tables.partitions_of(self._files(self._head))
        stale = sorted(h for h in hours.keys() - self._written if day_of(h) in wanted)
        if stale:
            emptied: dict[dt.date, list[int]] = {}
            for hour in stale:
                emptied.setdefault(day_of(hour), []).append(int(hour[3]))
            self.run.overwrite(
                frames.driver_frame(self.table.spark, [], S.CURATED_TABLE_SCHEMA),
                days_filter(sorted(emptied), emptied), self.properties,
            )
        self._settled = (list(days), hours, stale)

    def staged_rows(self, days: list[dt.date]) -> DataFrame:
        """The rows of `days` as the commit of `days` would publish them (from the branch),
        read to be counted (`tables.counting_read` of their files: the quality check)."""
        sizes = [file.bytes for file in self._staged_files(days)]
        options = tables.counting_read(sizes, self.table.spark.sparkContext.defaultParallelism)
        return self.run.read(days_filter(days), options=options)

    def staged_file_metrics(self, days: list[dt.date]) -> list[tuple[tuple, dict[str, ColumnMetrics]]]:
        """Each data file of `days` as the commit of `days` would publish them (the branch,
        settled): its hour partition and its column metrics, what `quality.proven_columns`
        and `quality.times_in_their_hours` read."""
        return [
            (file.partition, {column: ColumnMetrics(m.get("value_count"), m.get("null_value_count"),
                                                    m.get("nan_value_count"), m.get("lower_bound"), m.get("upper_bound"))
                              for column, m in file.metrics.items() if m is not None})
            for file in self._staged_files(days)
        ]

    def _staged_files(self, days: list[dt.date]) -> list[tables.DataFile]:
        """The data files of `days` as the commit of `days` would publish them (the branch,
        settled)."""
        self.settle(days)
        wanted = set(days)
        return [file for file in self._files(self.run.head()) if day_of(file.partition) in wanted]

    def _files(self, snapshot_id: int) -> list[tables.DataFile]:
        """The data files of the run's days in `snapshot_id` (`tables.TableRun.files`), read
        once a snapshot: staging reads them for the hours it wrote, and the quality check
        for their metrics unless settling the branch made another snapshot."""
        if self._listed[0] != snapshot_id:
            self._listed = (snapshot_id, self.run.files(snapshot_id, self._run_days))
        return self._listed[1]

    def rows_per_day_before(self) -> dict[dt.date, int]:
        """Rows per day as readers saw the table before the run (its metadata only)."""
        base = self.run.base_snapshot_id
        found: dict[dt.date, int] = {}
        for hour, files in (self.run.partitions(base).items() if base is not None else ()):
            found[day_of(hour)] = found.get(day_of(hour), 0) + files.rows
        return found

    def publish(self, days: list[dt.date]) -> Published:
        """Empty the hours of `days` the run did not write (`settle`), then the one commit."""
        self.settle(days)
        _, hours, stale = self._settled
        snapshot = self.run.publish()
        written = [
            tables.PartitionFiles(partition_name(h), hours[h].files, hours[h].bytes)
            for h in sorted(self._written)
        ]
        return Published(written, [partition_name(h) for h in stale], snapshot)

    def _restore_unasked_hours(self, days: set[dt.date]) -> None:
        """Hours the staged rows reached on days that are not to be replaced go back to
        what readers saw before the run: a run of chosen locations carries the other
        locations' rows of every day of its range, and a day without raw readings is
        left as it is (its chosen locations' rows too)."""
        unasked = sorted(h for h in self._written if day_of(h) not in days)
        if not unasked:
            return
        hours: dict[dt.date, list[int]] = {}
        for hour in unasked:
            hours.setdefault(day_of(hour), []).append(int(hour[3]))
        where = days_filter(sorted(hours), hours)
        before = self.table.read(where, snapshot_id=self.run.base_snapshot_id)
        self._head = self.run.overwrite(before.select(*S.CURATED_TABLE_SCHEMA.fieldNames()), where, self.properties)
        self._written -= set(unasked)

    def carried_over(self, days: list[dt.date], locations: tuple[int, ...]) -> tuple[int, int]:
        """Rows and locations, other than `locations`, of `days` as readers saw them
        before the run: what a run of chosen locations carries over on those days."""
        row = (self.table.read(days_filter(days), snapshot_id=self.run.base_snapshot_id)
               .where(~of_locations(locations))
               .agg(F.count(F.lit(1)).alias("rows"), F.countDistinct(S.LOCATION_ID).alias("locations"))
               .first())
        return int(row["rows"]), int(row["locations"])

    def abandon(self) -> None:
        self.run.abandon()
