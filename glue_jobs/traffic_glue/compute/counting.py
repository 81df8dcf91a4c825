"""The run's counts, taken while the one pass over the data runs (`DataFrame.observe`).

Three observations, each a node in the plan that aggregates the rows passing it:

- **statuses**, over every reading validated, once each has its status: a count per
  status, and the run's days that hold a reading that replaces its day;
- **kept** (`corrected` only), after deduplication: the readings kept, so that
  duplicates = kept before it - kept after it, and of them those of lanes the
  configuration does not hold (their location is `-unieke_id`), with those lanes;
- **rows**, over the curated rows the run computed (`corrected`: also how many
  configured locations, ids >= 0, they are of).

A `--locations` run counts also, on the same pass, the kept readings of its chosen
locations (`corrected`: a reading's location is known before its row is made), which of
them got rows, and the other locations' rows it carries over unchanged into the same
files (`count_carried_over`).

`RunCounters.collect` reads them once the write has run and returns a `ReadingCounts`.
Readings never read, because their row groups hold only other days (`sources`), count
as read and `outside_days` here too, from the files' footers.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from traffic_glue.compute import schema as S
from traffic_glue.compute.modes import CORRECTED
from traffic_glue.compute.run_range import SECONDS_PER_DAY, RunRange
from traffic_glue.compute.statuses import LEFT_OUT, REJECTED, REPLACES_ITS_DAY, ReadingStatus, has_status

# The observations are complete when the write's Spark job ends; waiting longer means
# something is wrong, and a hung Glue job bills by the second.
TIMEOUT_SECONDS = 120
_DAYS = "days_with_readings"
_DAYS_PER_WORD = 64  # bits of a long
_COUNTED = [s for s in ReadingStatus if s != ReadingStatus.DUPLICATE]


class CountsMissingError(RuntimeError):
    """The counts did not arrive after the write."""


@dataclass(frozen=True)
class ChosenLocationCounts:
    """A `--locations` run's counts of its chosen locations, apart from the rows of the
    other locations it carries over unchanged."""

    kept: int | None  # kept readings of the chosen locations; None in `athena` (below)
    with_rows: tuple[int, ...]  # the chosen locations the run wrote rows of, ascending
    rows_carried_over: int  # the other locations' rows of the replaced days, rewritten as they were
    locations_carried_over: int  # how many other locations those rows are of


@dataclass(frozen=True)
class ReadingCounts:
    """What became of the run's readings, and the rows it wrote."""

    by_status: dict[ReadingStatus, int]  # every status, DUPLICATE included
    days_with_readings: tuple[int, ...]  # offsets from the run's first day, ascending
    output_rows: int
    unread: int = 0  # of OUTSIDE_DAYS: in row groups never read (`sources.readings_to_validate`)
    # corrected: kept readings of lanes the configuration does not hold, and those lanes
    unconfigured_readings: int = 0
    unconfigured_lanes: tuple[int, ...] = ()
    chosen: ChosenLocationCounts | None = None  # a `--locations` run's
    # corrected, every location: the configured locations (ids >= 0) the rows are of
    configured_locations_with_rows: int | None = None

    @property
    def read(self) -> int:
        return sum(self.by_status.values())

    @property
    def kept(self) -> int:
        return self.by_status[ReadingStatus.KEPT]

    @property
    def left_out(self) -> dict[ReadingStatus, int]:
        return {s: self.by_status[s] for s in LEFT_OUT}

    @property
    def rejected(self) -> dict[ReadingStatus, int]:
        return {s: self.by_status[s] for s in REJECTED}


class RunCounters:
    """The observations of one run; attach each once, where `pipeline` says (and, for a
    run of chosen `locations`, `count_carried_over` where the job adds the other rows)."""

    def __init__(self, span: RunRange, semantics: str, locations: tuple[int, ...] | None = None):
        self._span = span
        self._deduplicated = semantics == CORRECTED
        self._locations = list(locations) if locations else None
        self._statuses = Observation("reading_statuses")
        self._kept = Observation("kept_readings")
        self._rows = Observation("output_rows")
        self._carried = Observation("carried_over_rows")

    def count_statuses(self, readings: DataFrame, weight: str | None = None) -> DataFrame:
        """`readings`, with a status each, counted. `weight`: the column that says how
        many readings a row is of, where the rows are readings grouped by their status
        (`transforms.group_lanes` by status); None: each row is a reading.

        This observation also keeps the pipeline's filter on the status (`kept`) above
        the projections that compute it: the optimizer pushes a filter below any
        deterministic projection by copying the expressions it refers to, here the whole
        validation, into one predicate whose generated code runs the scan stage 6x slower
        (one day: 55 s against 10), but it pushes no filter through an observation.
        """
        if weight is None:
            counts = [F.count_if(has_status(s)).alias(s.label) for s in _COUNTED]
        else:
            counts = [F.sum(F.when(has_status(s), F.col(weight))).alias(s.label) for s in _COUNTED]
        return readings.observe(self._statuses, *counts, *self._days_with_readings())

    def _days_with_readings(self) -> list[Column]:
        """The run's days that hold a reading that replaces its day, as bits: a day's
        offset from the run's first day is bit `n % 64` of the `n // 64`th long (a year:
        six). `bit_or` is compiled with the other counts; `collect_set` of the days was
        evaluated reading by reading, and was half the observation's cost. A word's
        readings are found by comparing their time with its days' bounds, and their day
        by a division of whole numbers. `corrected` observes every reading: with the
        divisions of doubles, `floor`s and remainders this took before, a week's
        observations took 8.9 CPU-s instead of 7.5 (docs/BENCHMARKS.md)."""
        observed = F.col(S.OBSERVED_AT)
        replaces = has_status(*REPLACES_ITS_DAY)
        word_seconds = _DAYS_PER_WORD * SECONDS_PER_DAY
        words = []
        for word in range(self._day_words):
            first = self._span.output_start + word * word_seconds
            end = min(self._span.output_end, first + word_seconds)
            day = F.expr(f"CAST((`{S.OBSERVED_AT}` - {first}) div {SECONDS_PER_DAY} AS INT)")
            # (pyspark's `shiftleft` takes a constant shift only)
            bit = F.call_function("shiftleft", F.lit(1).cast("long"), day)
            words.append(F.bit_or(F.when(replaces & (observed >= first) & (observed < end), bit))
                         .alias(f"{_DAYS}_{word}"))
        return words

    @property
    def _day_words(self) -> int:
        return math.ceil(len(self._span.days) / _DAYS_PER_WORD)

    def _days_from(self, statuses: dict) -> tuple[int, ...]:
        """The day offsets `_days_with_readings` observed, ascending."""
        return tuple(
            word * _DAYS_PER_WORD + bit
            for word in range(self._day_words)
            for bit in range(_DAYS_PER_WORD)
            if (statuses[f"{_DAYS}_{word}"] or 0) >> bit & 1
        )

    def count_kept(self, readings: DataFrame) -> DataFrame:
        """The kept readings after deduplication (`corrected`; `athena` keeps them all)."""
        if not self._deduplicated:
            return readings
        unconfigured = F.col(S.LOCATION_ID) < 0  # `transforms.with_location`
        chosen = [F.count_if(self._chosen()).alias("chosen")] if self._locations else []
        return readings.observe(
            self._kept,
            F.count(F.lit(1)).alias("kept"),
            F.count_if(unconfigured).alias("unconfigured"),
            F.array_join(
                F.array_sort(F.collect_set(F.when(unconfigured, F.col(S.LANE_ID)))), ","
            ).alias("unconfigured_lanes"),
            *chosen,
        )

    def count_rows(self, rows: DataFrame) -> DataFrame:
        """The curated rows the run computed (of its chosen locations only, if any)."""
        # Only a run of chosen locations names its locations: a few ids, not every one.
        # Of every location, `corrected` counts the configured ones (ids >= 0; a lane of
        # no configuration is `-unieke_id`): a set of a few thousand ids at most.
        if self._locations:
            located = [_ids(F.col(S.LOCATION_ID)).alias("locations")]
        elif self._deduplicated:
            configured = F.when(F.col(S.LOCATION_ID) >= 0, F.col(S.LOCATION_ID))
            located = [F.size(F.collect_set(configured)).alias("configured_locations")]
        else:
            located = []
        return rows.observe(self._rows, F.count(F.lit(1)).alias("rows"), *located)

    def count_carried_over(self, rows: DataFrame) -> DataFrame:
        """The other locations' rows a run of chosen locations writes back unchanged."""
        return rows.observe(
            self._carried,
            F.count(F.lit(1)).alias("rows"),
            F.size(F.collect_set(S.LOCATION_ID)).alias("locations"),
        )

    def _chosen(self) -> Column:
        return F.col(S.LOCATION_ID).isin(self._locations)

    def collect(self, readings_in_files: int | None = None,
                timeout_seconds: float = TIMEOUT_SECONDS) -> ReadingCounts:
        """The counts, once the write has run. `readings_in_files`: what the files hold
        in all, where the run left some unread (`sources.RawInput.readings_in_files`)."""
        statuses = _wait(self._statuses, "reading statuses", timeout_seconds)
        by_status = {s: int(statuses[s.label] or 0) for s in _COUNTED}
        unread = 0 if readings_in_files is None else readings_in_files - sum(by_status.values())
        by_status[ReadingStatus.OUTSIDE_DAYS] += unread
        passed = by_status[ReadingStatus.KEPT]
        unconfigured, lanes = 0, ()
        if self._deduplicated:
            kept = _wait(self._kept, "kept readings", timeout_seconds)
            by_status[ReadingStatus.KEPT] = int(kept["kept"])
            unconfigured = int(kept["unconfigured"] or 0)
            lanes = tuple(int(n) for n in (kept["unconfigured_lanes"] or "").split(",") if n)
        by_status[ReadingStatus.DUPLICATE] = passed - by_status[ReadingStatus.KEPT]
        rows = _wait(self._rows, "output rows", timeout_seconds)
        days = self._days_from(statuses)
        chosen = None
        if self._locations:
            carried = _wait(self._carried, "carried-over rows", timeout_seconds)
            chosen = ChosenLocationCounts(
                # athena names a row's location by the minute's largest lane: a reading
                # has no location of its own to count it by.
                kept=int(kept["chosen"]) if self._deduplicated else None,
                with_rows=tuple(int(n) for n in (rows["locations"] or "").split(",") if n),
                rows_carried_over=int(carried["rows"]),
                locations_carried_over=int(carried["locations"]),
            )
        configured_with_rows = rows.get("configured_locations")
        return ReadingCounts(by_status=dict(sorted(by_status.items())), days_with_readings=days,
                             output_rows=int(rows["rows"]), unread=unread,
                             unconfigured_readings=unconfigured, unconfigured_lanes=lanes,
                             chosen=chosen,
                             configured_locations_with_rows=(
                                 None if configured_with_rows is None else int(configured_with_rows)))


def _ids(column: Column) -> Column:
    """The distinct values of an int column, ascending, as text (py4j hands an observed
    array over as an opaque JVM object)."""
    return F.array_join(F.array_sort(F.collect_set(column)), ",")


def _wait(observation: Observation, what: str, timeout_seconds: float) -> dict:
    """An observation's values; `Observation.get` would wait forever for a plan that
    never ran, so it waits in a thread given `timeout_seconds`."""
    values: dict = {}
    waiter = threading.Thread(target=lambda: values.update(observation.get), daemon=True)
    waiter.start()
    waiter.join(timeout_seconds)
    if waiter.is_alive():
        raise CountsMissingError(f"the run's counts of {what} did not arrive after the write")
    return values
