"""The whole computation of docs/SEMANTICS.md, from typed readings to curated rows.

`corrected` shuffles the readings once: they are hash-partitioned by their location
(the configuration's, joined before the shuffle), and deduplication, lane grouping and
every series window are keyed by it (plus more), so Spark reuses that partitioning for
all of them.

`athena` has no deduplication, so its readings need not meet before they are grouped:
each task sums its own readings per (`lve_nr`, minute) first (Spark's partial
aggregation), and only those partial rows, about a seventh of the readings, cross the
shuffle to the grouping; the minute rows then cross a second, small one to the series
windows (keyed by `lve_nr` and the minute's id). The sums, counts and maxima are the same
whichever task adds which reading (a lane's `athena` speed is a whole number).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame

from traffic_glue.compute import schema as S
from traffic_glue.compute import transforms
from traffic_glue.compute.modes import CORRECTED
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
    corrected = semantics == CORRECTED
    if corrected:
        typed = typed.transform(transforms.with_location, lane_map)
    readings = typed.transform(transforms.with_reading_status)
    if counters:
        readings = counters.count_statuses(readings)
    # Only the readings the computation uses cross the shuffle: the kept ones. (The
    # counters count the others above.)
    readings = readings.transform(transforms.filter_kept_readings)
    if corrected:
        # The one shuffle: everything below is keyed by the location (plus more). Then
        # one reading per lane and minute.
        readings = readings.repartition(S.LOCATION_ID).transform(
            transforms.deduplicate_readings, span.context_start)
    if counters:
        readings = counters.count_kept(readings)
    rows = (
        readings.transform(transforms.with_lane_speed, semantics)
        .transform(transforms.group_lanes, semantics)
        .transform(transforms.with_previous_speed, semantics)
        .transform(transforms.with_speed_diff_indicator)
        .transform(transforms.with_rolling_speeds, semantics)
        .transform(transforms.with_jam_indicators, semantics)
        .transform(transforms.filter_output_rows, span.output_start, span.output_end, locations)
        .transform(transforms.to_curated)
    )
    return Curated(counters.count_rows(rows) if counters else rows, counters)
