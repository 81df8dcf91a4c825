"""The run's time ranges, built once from its arguments (docs/SEMANTICS.md, "The run's
time ranges") and passed to everything that reads, judges or writes by time.

- the **processing-hour folders** to read: from the hour holding the lookback's first
  minute to `late_hours` after the last day;
- the **context** `[context_start, output_end)` in epoch seconds: the readings the run
  uses and judges (its days and the lookback before them); any other reading is
  `outside_days`, and another run's to judge;
- the **output** `[output_start, output_end)`: the run's days, the rows it writes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

SECONDS_PER_DAY = 86400


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """`start` .. `end`, both included, in order."""
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def epoch_seconds(moment: dt.datetime) -> int:
    """A naive UTC datetime as epoch seconds."""
    return int(moment.replace(tzinfo=dt.timezone.utc).timestamp())


@dataclass(frozen=True)
class RunRange:
    start_date: dt.date
    end_date: dt.date
    first_folder_hour: dt.datetime  # the first processing-hour folder read
    folders_end: dt.datetime  # the hour after the last one read
    context_start: int
    output_start: int
    output_end: int

    @classmethod
    def for_days(
        cls, start: dt.date, end: dt.date, lookback_minutes: int, late_hours: int
    ) -> "RunRange":
        first = dt.datetime.combine(start, dt.time())
        after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
        context_start = first - dt.timedelta(minutes=lookback_minutes)
        return cls(
            start_date=start,
            end_date=end,
            first_folder_hour=context_start.replace(minute=0, second=0, microsecond=0),
            folders_end=after + dt.timedelta(hours=late_hours),
            context_start=epoch_seconds(context_start),
            output_start=epoch_seconds(first),
            output_end=epoch_seconds(after),
        )

    @property
    def context(self) -> tuple[int, int]:
        """The readings the run uses and judges: `[context_start, output_end)`."""
        return self.context_start, self.output_end

    @property
    def folder_hours(self) -> tuple[dt.datetime, dt.datetime]:
        """The processing-hour folders read: `[first_folder_hour, folders_end)`."""
        return self.first_folder_hour, self.folders_end

    @property
    def days(self) -> list[dt.date]:
        """The run's days, in order."""
        return days_between(self.start_date, self.end_date)

    @property
    def days_text(self) -> str:
        return f"{self.start_date}..{self.end_date}"

    def day_at(self, offset: int) -> dt.date:
        """The run's day `offset` days after its first (`counting`'s day offsets)."""
        return self.start_date + dt.timedelta(days=offset)
