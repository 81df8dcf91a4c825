"""The run's time ranges, worked out by hand (docs/SEMANTICS.md, "The run's time ranges")."""

from __future__ import annotations

import datetime as dt

from tests.factories import T0  # 2020-04-07 00:00 UTC
from traffic_glue.compute.run_range import RunRange

DAY = dt.date(2020, 4, 7)


def test_one_day_with_the_default_lookback_and_late_hours():
    span = RunRange.for_days(DAY, DAY, lookback_minutes=60, late_hours=24)
    assert span.context == (T0 - 3600, T0 + 86400)
    assert (span.output_start, span.output_end) == (T0, T0 + 86400)
    # From the hour holding the lookback's first minute to 24 hours after the day.
    assert span.folder_hours == (dt.datetime(2020, 4, 6, 23), dt.datetime(2020, 4, 9, 0))
    assert span.days == [DAY] and span.days_text == "2020-04-07..2020-04-07"


def test_a_lookback_inside_an_hour_reads_that_whole_hour_folder():
    span = RunRange.for_days(DAY, dt.date(2020, 4, 9), lookback_minutes=90, late_hours=2)
    assert span.context_start == T0 - 5400  # 2020-04-06 22:30
    assert span.first_folder_hour == dt.datetime(2020, 4, 6, 22)
    assert span.folders_end == dt.datetime(2020, 4, 10, 2)
    assert span.output_end == T0 + 3 * 86400
    assert span.days == [DAY, dt.date(2020, 4, 8), dt.date(2020, 4, 9)]
    assert span.day_at(2) == dt.date(2020, 4, 9)


def test_a_range_across_the_end_of_march_counts_days_not_hours():
    """UTC has no DST: the night Brussels moves its clocks is a day of 86,400 s here."""
    span = RunRange.for_days(dt.date(2020, 3, 28), dt.date(2020, 3, 29), 0, 0)
    assert span.output_end - span.output_start == 2 * 86400
    assert span.folder_hours == (dt.datetime(2020, 3, 28), dt.datetime(2020, 3, 30))
