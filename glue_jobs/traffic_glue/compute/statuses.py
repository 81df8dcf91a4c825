"""What becomes of a reading: kept, left out by a rule, or rejected with a reason.

Every reading a run reads gets exactly one status (docs/SEMANTICS.md, "The run report"):
validation gives the rejected ones and those outside the run's range theirs, step 1's
rules the rest (`transforms.with_reading_status`). On the row path a status is its
code, a small integer: the report counts every status of every reading, and comparing
integers costs a seven-day run about 3 s less than comparing names
(docs/BENCHMARKS.md). People see the label, written by `label_of` (the quarantine's
`reject_reason`) and `ReadingStatus.label` (the run report).
"""

from __future__ import annotations

from enum import IntEnum

from pyspark.sql import Column
from pyspark.sql import functions as F

READING_STATUS = "reading_status"  # the column that holds a reading's code


class ReadingStatus(IntEnum):
    KEPT = 0
    # left out by a rule of step 1 (DUPLICATE: of step 2, found after the shuffle)
    OUTSIDE_DAYS = 1
    DEFECT = 2
    UNKNOWN_OCCUPANCY = 3
    DUPLICATE = 4
    WRONG_WAY_LANE = 5  # corrected: a `TR` lane's reading, no location's (configuration)
    # rejected, in the order validation checks them
    MALFORMED_RECORD = 6
    BAD_OBSERVED_AT = 7
    BAD_LANE_ID = 8
    BAD_UNIT_ID = 9
    BAD_MODIFIED_AT = 10
    BAD_INTENSITY = 11
    NEGATIVE_INTENSITY = 12
    BAD_SPEED = 13

    @property
    def label(self) -> str:
        """The name the quarantine, the report and docs/SEMANTICS.md use."""
        return _LABELS[self]


_LABELS = {
    ReadingStatus.KEPT: "kept",
    ReadingStatus.OUTSIDE_DAYS: "outside_days",
    ReadingStatus.DEFECT: "defect",
    ReadingStatus.UNKNOWN_OCCUPANCY: "unknown_occupancy",
    ReadingStatus.DUPLICATE: "duplicate",
    ReadingStatus.WRONG_WAY_LANE: "wrong_way_lane",
    ReadingStatus.MALFORMED_RECORD: "malformed_record",
    ReadingStatus.BAD_OBSERVED_AT: "bad_tijd_waarneming",
    ReadingStatus.BAD_LANE_ID: "bad_unieke_id",
    ReadingStatus.BAD_UNIT_ID: "bad_lve_nr",
    ReadingStatus.BAD_MODIFIED_AT: "bad_tijd_laatst_gewijzigd",
    ReadingStatus.BAD_INTENSITY: "bad_intensity",
    ReadingStatus.NEGATIVE_INTENSITY: "negative_intensity",
    ReadingStatus.BAD_SPEED: "bad_speed",
}

REJECTED = tuple(s for s in ReadingStatus if s >= ReadingStatus.MALFORMED_RECORD)
LEFT_OUT = (
    ReadingStatus.OUTSIDE_DAYS, ReadingStatus.DEFECT, ReadingStatus.UNKNOWN_OCCUPANCY,
    ReadingStatus.WRONG_WAY_LANE, ReadingStatus.DUPLICATE,
)
# Readings of the run that are not rejected: a day holding one is replaced
# (docs/SEMANTICS.md, "The table, and what a run replaces").
REPLACES_ITS_DAY = (
    ReadingStatus.KEPT, ReadingStatus.DEFECT, ReadingStatus.UNKNOWN_OCCUPANCY,
    ReadingStatus.WRONG_WAY_LANE,
)


def code(status: ReadingStatus | None) -> Column:
    """A status as a literal of the status column's type (NULL for none)."""
    return F.lit(None if status is None else int(status)).cast("int")


def has_status(*statuses: ReadingStatus) -> Column:
    """Whether a reading's `reading_status` is one of `statuses`."""
    column = F.col(READING_STATUS)
    codes = [int(s) for s in statuses]
    return column == codes[0] if len(codes) == 1 else column.isin(*codes)


def is_rejected() -> Column:
    """Whether a reading's status is a rejection (their codes are the highest)."""
    return F.col(READING_STATUS) >= int(REJECTED[0])


def label_of(status: Column) -> Column:
    """The label of a status code, as text (NULL for NULL)."""
    return F.element_at(F.array(*(F.lit(s.label) for s in ReadingStatus)), status + 1)
