"""The run's counts: observed on the one pass, collected after it, worked out by hand."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from tests.factories import T0, reading, readings_df
from traffic_glue.config import ATHENA, CORRECTED
from traffic_glue.counting import CountsMissingError, RunCounters
from traffic_glue.run_range import RunRange
from traffic_glue.statuses import ReadingStatus as RS
from traffic_glue.statuses import has_status

SPAN = RunRange.for_days(dt.date(2020, 4, 7), dt.date(2020, 4, 8), 60, 24)  # T0 is 04-07 00:00
ROWS = [
    reading(1, 1, T0, status=RS.KEPT),  # day 0
    reading(2, 1, T0 + 86400 + 60, status=RS.DEFECT),  # day 1: defect, still replaces its day
    reading(3, 1, T0 - 1800, status=RS.KEPT),  # the lookback: kept, on no day of the run
    reading(4, 1, T0 + 100, status=RS.BAD_SPEED),  # rejected: replaces nothing
    reading(5, 1, T0 + 3 * 86400, status=RS.OUTSIDE_DAYS),
    reading(6, 1, T0 + 200, status=RS.KEPT),  # day 0 again
]


def _run(spark, counters: RunCounters, drop_lane: int | None = None) -> None:
    """The pipeline's order: statuses, the kept ones (less a 'duplicate'), the rows."""
    kept = counters.count_statuses(readings_df(spark, ROWS)).where(has_status(RS.KEPT))
    if drop_lane is not None:
        kept = kept.where(F.col("unieke_id") != drop_lane)
    counters.count_rows(counters.count_kept(kept)).write.format("noop").mode("overwrite").save()


def test_every_status_counted_once_with_unread_readings_as_outside_days(spark):
    counters = RunCounters(SPAN, ATHENA)
    _run(spark, counters)
    counts = counters.collect(readings_in_files=len(ROWS) + 5)  # 5 never read
    assert counts.by_status == {
        RS.KEPT: 3, RS.OUTSIDE_DAYS: 1 + 5, RS.DEFECT: 1, RS.UNKNOWN_OCCUPANCY: 0,
        RS.DUPLICATE: 0, RS.MALFORMED_RECORD: 0, RS.BAD_OBSERVED_AT: 0, RS.BAD_LANE_ID: 0,
        RS.BAD_UNIT_ID: 0, RS.BAD_MODIFIED_AT: 0, RS.BAD_INTENSITY: 0,
        RS.NEGATIVE_INTENSITY: 0, RS.BAD_SPEED: 1,
    }
    assert (counts.read, counts.kept, counts.unread, counts.output_rows) == (11, 3, 5, 3)
    assert counts.days_with_readings == (0, 1)
    assert counts.rejected[RS.BAD_SPEED] == 1 and sum(counts.left_out.values()) == 7


def test_corrected_counts_what_deduplication_removed_as_duplicates(spark):
    counters = RunCounters(SPAN, CORRECTED)
    _run(spark, counters, drop_lane=6)  # as if lane 6's reading lost to another
    counts = counters.collect()  # every reading read: nothing unread
    assert (counts.by_status[RS.KEPT], counts.by_status[RS.DUPLICATE]) == (2, 1)
    assert (counts.read, counts.unread, counts.output_rows) == (6, 0, 2)


def test_counts_of_a_plan_that_never_ran_fail_rather_than_wait(spark):
    counters = RunCounters(SPAN, ATHENA)
    counters.count_statuses(readings_df(spark, ROWS))  # planned, never written
    with pytest.raises(CountsMissingError, match="reading statuses did not arrive"):
        counters.collect(timeout_seconds=0.5)
