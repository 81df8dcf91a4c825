"""Reading statuses: one code and one label each, as the quarantine and report write them."""

from __future__ import annotations

from pyspark.sql import functions as F

from traffic_glue.statuses import (
    LEFT_OUT, READING_STATUS, REJECTED, REPLACES_ITS_DAY, ReadingStatus, has_status,
    is_rejected, label_of,
)


def test_every_status_has_one_label_and_the_groups_split_them():
    labels = [s.label for s in ReadingStatus]
    assert len(set(labels)) == len(labels) == 13
    assert ReadingStatus.BAD_OBSERVED_AT.label == "bad_tijd_waarneming"
    assert ReadingStatus.BAD_UNIT_ID.label == "bad_lve_nr"
    # kept, left out or rejected: each status is exactly one of them
    assert sorted([ReadingStatus.KEPT, *LEFT_OUT, *REJECTED]) == list(ReadingStatus)
    # rejected ones in the order validation checks them: malformed first, speed last
    assert REJECTED[0] == ReadingStatus.MALFORMED_RECORD and REJECTED[-1] == ReadingStatus.BAD_SPEED
    assert not set(REPLACES_ITS_DAY) & set(REJECTED)


def test_column_helpers_on_codes_and_null(spark):
    codes = spark.createDataFrame(
        [(0,), (2,), (5,), (12,), (None,)], f"{READING_STATUS} int"
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
        ("malformed_record", False, False, True),
        ("bad_speed", False, True, True),
        (None, None, None, None),
    ]
