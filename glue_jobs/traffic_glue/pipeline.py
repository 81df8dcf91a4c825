"""The whole computation of docs/SEMANTICS.md, from typed readings to curated rows.

The plan has one shuffle: readings are hash-partitioned by `lve_nr` once, and
deduplication, lane grouping, the location id and every series window are keyed by
`lve_nr` (plus more), so Spark reuses that partitioning for all of them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from traffic_glue import schema as S
from traffic_glue import transforms
from traffic_glue.config import CORRECTED

# Stages at which the caller may attach metrics (`DataFrame.observe`).
STATUSES, KEPT_READINGS, OUTPUT_ROWS = "statuses", "kept_readings", "output_rows"
Observer = Callable[[str, DataFrame], DataFrame]


def _no_observer(stage: str, df: DataFrame) -> DataFrame:
    return df


def _barrier(statused: DataFrame) -> DataFrame:
    """Keep the filter on the statuses above the projections that compute them.

    Spark pushes a filter below any deterministic projection, copying the expressions
    it refers to: here the whole validation, into one predicate whose generated code
    runs the scan stage 6x slower (one-day benchmark: 55 s against 10). An observation
    is a node the optimizer does not push filters through; it counts, nothing more.
    """
    return statused.observe("statuses_barrier", F.count(F.lit(1)).alias("readings"))


def epoch_seconds(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=dt.timezone.utc).timestamp())


@dataclass(frozen=True)
class RunWindow:
    """The run's time ranges in epoch seconds (docs/SEMANTICS.md, "The run's time ranges")."""

    context_start: int
    output_start: int
    output_end: int

    @classmethod
    def for_days(cls, start: dt.date, end: dt.date, lookback_minutes: int) -> "RunWindow":
        first = dt.datetime.combine(start, dt.time())
        after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
        return cls(
            context_start=epoch_seconds(first - dt.timedelta(minutes=lookback_minutes)),
            output_start=epoch_seconds(first),
            output_end=epoch_seconds(after),
        )

    @property
    def context(self) -> tuple[int, int]:
        """The readings the run uses and judges: `[context_start, output_end)`."""
        return self.context_start, self.output_end


def curated_minutes(
    typed: DataFrame,
    semantics: str,
    window: RunWindow,
    locations: tuple[int, ...] | None = None,
    observe: Observer = _no_observer,
) -> DataFrame:
    """Typed readings (`validation.typed_readings`) to curated rows with partition columns."""
    readings = observe(
        STATUSES, typed.transform(transforms.with_reading_status, window.context_start, window.output_end)
    ).transform(_barrier)
    # Only the readings the computation uses cross the shuffle: the kept ones. (The
    # report counts the others on the statuses above; the locations table reads its
    # lanes apart, `locations.seen_lanes`.)
    readings = readings.transform(transforms.filter_kept_readings)
    # The one shuffle: everything below is keyed by lve_nr (plus more).
    readings = readings.repartition(S.UNIT_ID)
    if semantics == CORRECTED:
        # One reading per section, lane and minute.
        readings = readings.transform(transforms.deduplicate_readings, window.context_start)
    readings = observe(KEPT_READINGS, readings)
    rows = (
        readings.transform(transforms.with_lane_speed, semantics)
        .transform(transforms.group_lanes, semantics)
        .transform(transforms.with_location_id, semantics)
        .transform(transforms.with_previous_speed, semantics)
        .transform(transforms.with_speed_diff_indicator)
        .transform(transforms.with_rolling_speeds, semantics)
        .transform(transforms.with_jam_indicators, semantics)
        .transform(transforms.filter_output_rows, window.output_start, window.output_end, locations)
        .transform(transforms.to_curated)
    )
    return observe(OUTPUT_ROWS, rows)
