"""Reading statuses: one code and one label each, as the quarantine and report write them."""

from __future__ import annotations

from pyspark.sql import functions as F

from tests.factories import frame
from traffic_glue.compute.statuses import (
    LEFT_OUT, READING_STATUS, REJECTED, REPLACES_ITS_DAY, ReadingStatus, has_status,
    is_rejected, label_of,
)


def test_every_status_has_one_label_and_the_groups_split_them():
    labels = [s.label for s in ReadingStatus]
    assert len(set(labels)) == len(labels) == 14
    assert ReadingStatus.BAD_OBSERVED_AT.label == "bad_tijd_waarneming"
    assert ReadingStatus.BAD_UNIT_ID.label == "bad_lve_nr"
    assert ReadingStatus.WRONG_WAY_LANE.label == "wrong_way_lane"
    # kept, left out or rejected: each status is exactly one of them
    assert sorted([ReadingStatus.KEPT, *LEFT_OUT, *REJECTED]) == list(ReadingStatus)
    # rejected ones in the order validation checks them: malformed first, speed last
    assert REJECTED[0] == ReadingStatus.MALFORMED_RECORD and REJECTED[-1] == ReadingStatus.BAD_SPEED
    assert not set(REPLACES_ITS_DAY) & set(REJECTED)


def test_a_wrong_way_lanes_reading_is_left_out_and_still_replaces_its_day():
    """`corrected` leaves a TR lane's reading out (docs/SEMANTICS.md, step 1a); it was
    read, not rejected, so its day is the run's to replace. Its code comes before the
    rejections', which are renumbered after it."""
    assert int(ReadingStatus.WRONG_WAY_LANE) == 5
    assert ReadingStatus.WRONG_WAY_LANE in LEFT_OUT and ReadingStatus.WRONG_WAY_LANE not in REJECTED
    assert ReadingStatus.WRONG_WAY_LANE in REPLACES_ITS_DAY
    # The report lists left-out rules in this order: step 1's, then step 1a's, then step 2's.
    assert [s.label for s in LEFT_OUT] == [
        "outside_days", "defect", "unknown_occupancy", "wrong_way_lane", "duplicate",
    ]
    assert [int(s) for s in REJECTED] == list(range(6, 14))


def test_column_helpers_on_codes_and_null(spark):
    codes = frame(spark,
        [(0,), (2,), (5,), (6,), (13,), (None,)], f"{READING_STATUS} int"
    )
    rows = codes.select(
        label_of(F.col(READING_STATUS)).alias("label"),
        has_status(ReadingStatus.KEPT).alias("kept"),
        has_status(ReadingStatus.DEFECT, ReadingStatus.BAD_SPEED).alias("defect_or_speed"),
        is_rejected().alias("rejected"),
    ).collect()
    assert [tuple(r) for r in rows] == [
        ("kept", True, False, False),
        ("defect", False, True, False),
        ("wrong_way_lane", False, False, False),  # left out, not rejected
        ("malformed_record", False, False, True),
        ("bad_speed", False, True, True),
        (None, None, None, None),
    ]
