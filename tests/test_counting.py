"""The run's counts: observed on the one pass, collected after it, worked out by hand."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from tests.factories import T0, frame, reading, readings_df
from traffic_glue.compute import transforms
from traffic_glue.compute.modes import ATHENA, CORRECTED
from traffic_glue.compute.counting import CountsMissingError, RunCounters
from traffic_glue.compute.run_range import RunRange
from traffic_glue.compute.statuses import ReadingStatus as RS
from traffic_glue.compute.statuses import has_status

SPAN = RunRange.for_days(dt.date(2020, 4, 7), dt.date(2020, 4, 8), 60, 24)  # T0 is 04-07 00:00
ROWS = [
    reading(1, 1, T0, status=RS.KEPT),  # day 0
    reading(2, 1, T0 + 86400 + 60, status=RS.DEFECT),  # day 1: defect, still replaces its day
    reading(3, 1, T0 - 1800, status=RS.KEPT),  # the lookback: kept, on no day of the run
    reading(4, 1, T0 + 100, status=RS.BAD_SPEED),  # rejected: replaces nothing
    reading(5, 1, T0 + 3 * 86400, status=RS.OUTSIDE_DAYS),
    reading(6, 1, T0 + 200, status=RS.KEPT),  # day 0 again
]
LOCATION = 1001  # a configured location (`transforms.with_location`)


def _lane_map(spark, *lanes, wrong_way=()):
    """`lanes` configured to LOCATION for all time, the `wrong_way` ones as TR lanes."""
    rows = [(lane, None, None, LOCATION) for lane in lanes] + [(lane, None, None, None) for lane in wrong_way]
    return frame(spark, rows, transforms.LANE_MAP_SCHEMA)


def _run(spark, counters: RunCounters, drop_lane: int | None = None, rows=ROWS,
         located: bool = False, lane_map=None) -> None:
    """The pipeline's order: statuses, the kept ones (less a 'duplicate'), the rows.
    `located`: each reading's location first, as `corrected` has it (`lane_map` None:
    no configuration, every lane a location of its own), then step 1's status for the
    readings that have none yet."""
    readings = readings_df(spark, rows)
    if located:
        readings = readings.transform(transforms.with_location, lane_map).transform(
            transforms.with_reading_status)
    kept = counters.count_statuses(readings).where(has_status(RS.KEPT))
    if drop_lane is not None:
        kept = kept.where(F.col("unieke_id") != drop_lane)
    counters.count_rows(counters.count_kept(kept)).write.format("noop").mode("overwrite").save()


def test_every_status_counted_once_with_unread_readings_as_outside_days(spark):
    counters = RunCounters(SPAN, ATHENA)
    _run(spark, counters)
    counts = counters.collect(readings_in_files=len(ROWS) + 5)  # 5 never read
    assert counts.by_status == {
        RS.KEPT: 3, RS.OUTSIDE_DAYS: 1 + 5, RS.DEFECT: 1, RS.UNKNOWN_OCCUPANCY: 0,
        RS.DUPLICATE: 0, RS.WRONG_WAY_LANE: 0, RS.MALFORMED_RECORD: 0, RS.BAD_OBSERVED_AT: 0,
        RS.BAD_LANE_ID: 0, RS.BAD_UNIT_ID: 0, RS.BAD_MODIFIED_AT: 0, RS.BAD_INTENSITY: 0,
        RS.NEGATIVE_INTENSITY: 0, RS.BAD_SPEED: 1,
    }
    assert (counts.read, counts.kept, counts.unread, counts.output_rows) == (11, 3, 5, 3)
    assert counts.days_with_readings == (0, 1)
    assert counts.rejected[RS.BAD_SPEED] == 1 and sum(counts.left_out.values()) == 7
    # athena has no configuration: nothing is counted as unconfigured, no location as configured.
    assert (counts.unconfigured_readings, counts.unconfigured_lanes) == (0, ())
    assert counts.configured_locations_with_rows is None



def test_statuses_counted_from_rows_grouped_by_status_weigh_each_row_by_its_readings(spark):
    """`athena` counts its statuses from the readings summed per (lve_nr, minute, status)
    (`pipeline`): a row of n readings counts n."""
    readings = readings_df(spark, [
        reading(1, 1, T0, status=RS.KEPT), reading(2, 1, T0, status=RS.KEPT),
        reading(3, 1, T0, status=RS.KEPT),  # one row of 3 kept readings, day 0
        reading(4, 1, T0, status=RS.DEFECT), reading(5, 1, T0, status=RS.DEFECT),  # the same minute: 2
        reading(6, 1, T0 + 86400 + 60, status=RS.KEPT),  # day 1
        reading(7, 2, T0 + 100, status=RS.BAD_SPEED), reading(8, 2, T0 + 100, status=RS.BAD_SPEED),
        reading(9, 1, T0 + 3 * 86400, status=RS.OUTSIDE_DAYS),
    ]).transform(transforms.with_lane_speed, ATHENA)
    grouped = readings.transform(transforms.group_lanes, ATHENA, by_status=True)
    counters = RunCounters(SPAN, ATHENA)
    kept = counters.count_statuses(grouped, weight=transforms.READINGS).transform(transforms.kept_rows)
    assert kept.columns == readings.transform(transforms.group_lanes, ATHENA).columns
    counters.count_rows(kept).write.format("noop").mode("overwrite").save()
    counts = counters.collect()
    assert counts.by_status == {
        RS.KEPT: 4, RS.OUTSIDE_DAYS: 1, RS.DEFECT: 2, RS.UNKNOWN_OCCUPANCY: 0,
        RS.DUPLICATE: 0, RS.WRONG_WAY_LANE: 0, RS.MALFORMED_RECORD: 0, RS.BAD_OBSERVED_AT: 0,
        RS.BAD_LANE_ID: 0, RS.BAD_UNIT_ID: 0, RS.BAD_MODIFIED_AT: 0, RS.BAD_INTENSITY: 0,
        RS.NEGATIVE_INTENSITY: 0, RS.BAD_SPEED: 2,
    }
    assert (counts.read, counts.kept, counts.output_rows) == (9, 4, 2)  # 2 kept minutes
    assert counts.days_with_readings == (0, 1)

def test_the_days_with_readings_of_a_year_across_words_of_64_days(spark):
    """A day's offset is a bit of a 64-bit word: days at the words' edges (63 is the sign
    bit), none of a day whose only reading is rejected or outside the run."""
    span = RunRange.for_days(dt.date(2020, 4, 7), dt.date(2021, 4, 6), 60, 24)  # 365 days
    days = [0, 62, 63, 64, 127, 128, 191, 192, 300, 364]
    rows = [reading(lane, 1, T0 + day * 86400 + 30, status=RS.KEPT) for lane, day in enumerate(days, 1)]
    rows += [reading(90, 1, T0 + 5 * 86400, status=RS.BAD_SPEED),  # rejected: day 5 has none
             reading(91, 1, T0 + 200 * 86400, status=RS.UNKNOWN_OCCUPANCY),  # left out: day 200 has one
             reading(92, 1, T0 + 365 * 86400, status=RS.KEPT)]  # after the run's last day
    counters = RunCounters(span, ATHENA)
    _run(spark, counters, rows=rows)
    assert counters.collect().days_with_readings == (0, 62, 63, 64, 127, 128, 191, 192, 200, 300, 364)


def test_the_days_with_readings_at_the_seconds_that_bound_a_day_and_a_word(spark):
    """A day's bit from its first second to its last: the last second of day 63 (word 0's
    last day) and the first of day 64 (word 1's first), the run's last second (day 364);
    not the second before the run's first day, nor the first after its last."""
    span = RunRange.for_days(dt.date(2020, 4, 7), dt.date(2021, 4, 6), 60, 24)  # 365 days
    times = [T0 - 1, T0, T0 + 64 * 86400 - 1, T0 + 64 * 86400, T0 + 365 * 86400 - 1, T0 + 365 * 86400]
    rows = [reading(lane, 1, t, status=RS.KEPT) for lane, t in enumerate(times, 1)]
    counters = RunCounters(span, ATHENA)
    _run(spark, counters, rows=rows)
    assert counters.collect().days_with_readings == (0, 63, 64, 364)


def test_corrected_counts_what_deduplication_removed_as_duplicates(spark):
    counters = RunCounters(SPAN, CORRECTED)
    # Lanes 1 and 6 configured; 3 is not: a location of its own (-3).
    _run(spark, counters, drop_lane=6, located=True, lane_map=_lane_map(spark, 1, 6))
    counts = counters.collect()  # every reading read: nothing unread
    assert (counts.by_status[RS.KEPT], counts.by_status[RS.DUPLICATE]) == (2, 1)
    assert (counts.read, counts.unread, counts.output_rows) == (6, 0, 2)
    # Of the 2 kept (lanes 1 and 3), lane 3's reading is of a lane the configuration lacks.
    assert (counts.unconfigured_readings, counts.unconfigured_lanes) == (1, (3,))
    # The rows are of one configured location (lane 1's) and of -3.
    assert counts.configured_locations_with_rows == 1


def test_corrected_counts_a_wrong_way_lanes_reading_as_left_out_and_its_day_as_read(spark):
    """Day 1's only usable reading is a TR lane's (lane 7, step 1 gives its status):
    left out (`wrong_way_lane`), not rejected, so day 1 is one of the run's days with
    readings. A rejected reading of that lane stays rejected."""
    rows = [reading(1, 1, T0, status=RS.KEPT),
            reading(7, 1, T0 + 86400 + 60),
            reading(7, 1, T0 + 86400 + 120, status=RS.BAD_SPEED)]
    counters = RunCounters(SPAN, CORRECTED)
    _run(spark, counters, rows=rows, located=True, lane_map=_lane_map(spark, 1, wrong_way=(7,)))
    counts = counters.collect()
    assert counts.by_status[RS.WRONG_WAY_LANE] == 1 and counts.left_out[RS.WRONG_WAY_LANE] == 1
    assert (counts.read, counts.kept, sum(counts.left_out.values()), sum(counts.rejected.values())) == (3, 1, 1, 1)
    assert counts.days_with_readings == (0, 1)
    assert (counts.unconfigured_readings, counts.unconfigured_lanes) == (0, ())


def test_corrected_counts_unconfigured_readings_per_reading_and_their_lanes_once(spark):
    """Without a configuration every lane is a location of its own (-unieke_id): every
    kept reading is unconfigured. Lane 3 has two kept readings, one lane."""
    rows = ROWS + [reading(3, 1, T0 + 300, status=RS.KEPT), reading(9, 1, T0 + 400, status=RS.DEFECT)]
    counters = RunCounters(SPAN, CORRECTED)
    _run(spark, counters, rows=rows, located=True, lane_map=None)
    counts = counters.collect()
    assert (counts.kept, counts.by_status[RS.DUPLICATE]) == (4, 0)
    # Kept: lanes 1, 3 (twice) and 6; the defect lane 9 and the rejected lane 4 are no kept reading's.
    assert (counts.unconfigured_readings, counts.unconfigured_lanes) == (4, (1, 3, 6))
    assert counts.configured_locations_with_rows == 0


def test_counts_of_a_plan_that_never_ran_fail_rather_than_wait(spark):
    counters = RunCounters(SPAN, ATHENA)
    counters.count_statuses(readings_df(spark, ROWS))  # planned, never written
    with pytest.raises(CountsMissingError, match="reading statuses did not arrive"):
        counters.collect(timeout_seconds=0.5)
