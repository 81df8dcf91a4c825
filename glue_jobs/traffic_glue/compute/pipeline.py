"""The whole computation of docs/SEMANTICS.md, from typed readings to curated rows.

`corrected` shuffles the readings once: they are hash-partitioned by their location
(the configuration's, joined before the shuffle), and deduplication, lane grouping and
every series window are keyed by it (plus more), so Spark reuses that partitioning for
all of them.

`athena` has no deduplication, so its readings need not meet before they are grouped:
each task sums its own readings per (`lve_nr`, minute, status) first (Spark's partial
aggregation), and only those partial rows, about a seventh of the readings, cross the
shuffle to the grouping; the statuses are counted from the grouped rows, and the kept
ones' minute rows then cross a second, small shuffle to the series windows (keyed by
`lve_nr` and the minute's id), each task's already in series order. The sums, counts
and maxima are the same whichever task adds which reading (a lane's `athena` speed is a
whole number).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame

from traffic_glue.compute import schema as S
from traffic_glue.compute import transforms
from traffic_glue.compute.modes import ATHENA, CORRECTED
from traffic_glue.compute.counting import RunCounters
from traffic_glue.compute.run_range import RunRange


@dataclass(frozen=True)
class Curated:
    """The run's curated rows (with partition columns) and the counts they will give
    once written (`RunCounters.collect`; None when not counted)."""

    rows: DataFrame
    counters: RunCounters | None


def curated_minutes(
    typed: DataFrame,
    semantics: str,
    span: RunRange,
    locations: tuple[int, ...] | None = None,
    counted: bool = True,
    lane_map: DataFrame | None = None,
) -> Curated:
    """Typed readings (`validation.typed_readings`) to curated rows. `lane_map`
    (`corrected`: `sources.configuration_lane_map`; None: no configuration) says which
    location each lane's readings go to.

    `counted=False` leaves the counters out: only for `benchmarks/floor.py`, whose
    readings come unvalidated, so there is no validation for a pushed filter to copy.
    """
    counters = RunCounters(span, semantics, locations) if counted else None
    if semantics == CORRECTED:
        rows = _corrected_rows(typed, span, counters, lane_map)
    else:
        rows = _athena_rows(typed, span, counters)
    rows = (
        rows.transform(transforms.with_previous_speed, semantics)
        .transform(transforms.with_speed_diff_indicator)
        .transform(transforms.with_rolling_speeds, semantics)
        .transform(transforms.with_jam_indicators, semantics)
        .transform(transforms.filter_output_rows, span.output_start, span.output_end, locations)
        .transform(transforms.to_curated)
    )
    return Curated(counters.count_rows(rows) if counters else rows, counters)


def _athena_rows(typed: DataFrame, span: RunRange, counters: RunCounters | None) -> DataFrame:
    """`athena`'s minute rows: every reading summed per (`lve_nr`, minute, status), the
    statuses counted from those rows, then the kept ones, in series order within each
    task (`transforms.presorted_for_series`). Counted from the rows, the statuses take a
    sum over a seventh as many rows as readings, and the scan's generated code runs on
    into the partial sums instead of stopping for an observation of each reading (three
    days, warm: 11.4-12.2 s against 13.0-13.4 s)."""
    rows = (
        typed.transform(transforms.with_reading_status)
        .transform(transforms.with_lane_speed, ATHENA)
        .transform(transforms.group_lanes, ATHENA, by_status=True)
    )
    if counters:
        rows = counters.count_statuses(rows, weight=transforms.READINGS)
    return rows.transform(transforms.kept_rows).transform(transforms.presorted_for_series, span.context_start)


def _corrected_rows(
    typed: DataFrame, span: RunRange, counters: RunCounters | None, lane_map: DataFrame | None
) -> DataFrame:
    """`corrected`'s minute rows: each reading's location and status (the statuses
    counted), then one shuffle by the location, deduplication and the grouping, all
    keyed by it (plus more)."""
    readings = typed.transform(transforms.with_location, lane_map).transform(
        transforms.with_reading_status)
    if counters:
        readings = counters.count_statuses(readings)
    # Only the readings the computation uses cross the shuffle: the kept ones. (The
    # counters count the others above.)
    readings = (
        readings.transform(transforms.filter_kept_readings)
        .repartition(S.LOCATION_ID)
        .transform(transforms.deduplicate_readings, span.context_start)
    )
    if counters:
        readings = counters.count_kept(readings)
    return readings.transform(transforms.with_lane_speed, CORRECTED).transform(
        transforms.group_lanes, CORRECTED)
