"""Validation: raw readings as they land (text or typed) to typed readings and a reason.

Inline rows, each written out by hand; docs/SEMANTICS.md ("Validation", "Parsing
text") is the rule. Raw text rows are what the JSON landing gives: every column a string.
"""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from tests.factories import T0, frame, raw_reading, reading, readings_df
from traffic_glue.compute import schema as S
from traffic_glue.compute import validation as V
from traffic_glue.compute.statuses import READING_STATUS
from traffic_glue.compute.statuses import ReadingStatus as RS

TEXT_SCHEMA = T.StructType([T.StructField(name, T.StringType()) for name in S.RAW_COLUMNS])
NOON = T0 + 12 * 3600
MODIFIED = "2020-04-07T02:00:30+02:00"


def text_row(lane="11", unit="1", t=str(NOON), **changes) -> dict:
    """A good raw reading of lane 11 at noon as JSON gives it (strings), then `changes`
    (keyword names are the raw columns; None is a JSON null)."""
    row = {k: (None if v is None else str(v)) for k, v in raw_reading(11, 1, NOON).items()}
    row.update({S.LANE_ID: lane, S.UNIT_ID: unit, S.OBSERVED_AT: t})
    row.update(changes)
    return row


def text_df(spark, rows: list[dict], with_corrupt: list[str | None] | None = None):
    schema = TEXT_SCHEMA
    values = [tuple(r[name] for name in S.RAW_COLUMNS) for r in rows]
    if with_corrupt is not None:
        corrupt = T.StructField(V.CORRUPT_RECORD, T.StringType())
        schema = T.StructType(TEXT_SCHEMA.fields + [corrupt])
        values = [v + (c,) for v, c in zip(values, with_corrupt)]
    return frame(spark, values, schema)


def typed(spark, rows, **kwargs):
    return V.typed_readings(text_df(spark, rows, **kwargs))


def reasons(spark, rows, **kwargs) -> list[RS | None]:
    return [r[READING_STATUS] for r in typed(spark, rows, **kwargs).collect()]


I2, S2, I3, S3 = S.intensity(2), S.arithmetic_speed(2), S.intensity(3), S.arithmetic_speed(3)


def test_text_values_parse_to_typed_readings(spark):
    rows = [
        text_row(),  # epoch seconds as a digit string
        text_row(lane=" 12 ", unit="+1", t="2020-04-07T14:01:00+02:00"),  # ISO with offset
        text_row(lane="13", t="2020-04-07T12:02:00Z", **{I2: "3", S2: "250"}),
        text_row(lane="14", t="2020-04-07 12:03:00.75", **{S.MODIFIED_AT: None}),  # no offset: UTC
        text_row(lane="15", t=f" {NOON + 240} ",
                 **{I2: "0", S2: "0", S.DEFECT: "1", S.OCCUPANCY: "-1"}),
    ]
    expected = readings_df(spark, [
        reading(11, 1, NOON, modified=MODIFIED),
        reading(12, 1, NOON + 60, modified=MODIFIED),
        reading(13, 1, NOON + 120, counts=(3, 0, 0, 0), speeds=(250, 0, 0, 0), modified=MODIFIED),
        reading(14, 1, NOON + 180),
        reading(15, 1, NOON + 240, counts=(0, 0, 0, 0), speeds=(0, 0, 0, 0), defect=1,
                occupancy=-1, modified=MODIFIED),
    ])
    assert_df_equality(typed(spark, rows), expected, ignore_nullable=True)


@pytest.mark.parametrize("changes, reason", [
    ({S.LANE_ID: None}, RS.BAD_LANE_ID),
    ({S.LANE_ID: "12.5"}, RS.BAD_LANE_ID),
    ({S.LANE_ID: "12.0"}, RS.BAD_LANE_ID),
    ({S.LANE_ID: "1e3"}, RS.BAD_LANE_ID),
    ({S.LANE_ID: "0x10"}, RS.BAD_LANE_ID),
    ({S.LANE_ID: "2147483648"}, RS.BAD_LANE_ID),  # beyond int
    # Not above 0: the feed numbers lanes from 1, and -unieke_id is an unconfigured
    # lane's location (-398698145 would be the id of the A14's direction 1 at km 94.7).
    ({S.LANE_ID: "0"}, RS.BAD_LANE_ID),
    ({S.LANE_ID: "-1"}, RS.BAD_LANE_ID),
    ({S.LANE_ID: "-398698145"}, RS.BAD_LANE_ID),
    ({S.UNIT_ID: "abc"}, RS.BAD_UNIT_ID),
    ({S.UNIT_ID: ""}, RS.BAD_UNIT_ID),
    ({S.OBSERVED_AT: None}, RS.BAD_OBSERVED_AT),
    ({S.OBSERVED_AT: "yesterday"}, RS.BAD_OBSERVED_AT),
    ({S.OBSERVED_AT: "today"}, RS.BAD_OBSERVED_AT),
    ({S.OBSERVED_AT: "now"}, RS.BAD_OBSERVED_AT),
    ({S.OBSERVED_AT: "epoch"}, RS.BAD_OBSERVED_AT),
    ({S.OBSERVED_AT: str(NOON * 1000)}, RS.BAD_OBSERVED_AT),  # epoch milliseconds
    ({S.OBSERVED_AT: "-5"}, RS.BAD_OBSERVED_AT),  # before 1970
    ({S.OBSERVED_AT: "11:30:00"}, RS.BAD_OBSERVED_AT),  # a time without a date
    ({S.OBSERVED_AT: "T11:30:00"}, RS.BAD_OBSERVED_AT),
    ({S.OBSERVED_AT: "2020-04"}, RS.BAD_OBSERVED_AT),
    ({S.OBSERVED_AT: "2020-4-7"}, RS.BAD_OBSERVED_AT),
    ({S.MODIFIED_AT: "soon"}, RS.BAD_MODIFIED_AT),
    ({S.MODIFIED_AT: "2020"}, RS.BAD_MODIFIED_AT),
    ({S.MODIFIED_AT: "14:05"}, RS.BAD_MODIFIED_AT),
    ({I3: None}, RS.BAD_INTENSITY),
    ({I3: "many"}, RS.BAD_INTENSITY),
    ({S.intensity(5): "-1"}, RS.NEGATIVE_INTENSITY),
    ({I2: "4", S2: "251"}, RS.BAD_SPEED),
    ({I2: "4", S2: "-1"}, RS.BAD_SPEED),
    ({I2: "4", S2: None}, RS.BAD_SPEED),
    ({I2: "4", S2: "fast"}, RS.BAD_SPEED),
    ({I3: "1", S3: "251"}, RS.BAD_SPEED),
])
def test_each_reject_reason(spark, changes, reason):
    assert reasons(spark, [text_row(**changes)]) == [reason]


@pytest.mark.parametrize("changes", [
    {S.MODIFIED_AT: None},  # NULL is allowed: older than any time
    {I2: "0", S2: "251"},  # no vehicles: the speed field is not looked at
    {I2: "0", S2: None},
    {I2: "1", S2: "0"},  # 0 and 250 are the bounds, inside
    {S.DEFECT: "x"},  # defect and occupancy are not validated: step 1 decides
    {S.OCCUPANCY: None},
    {S.LANE_NAME: None, S.harmonic_speed(2): "x", S.intensity(1): "-9"},  # not used
    {S.OBSERVED_AT: f"+{NOON}"},
    {S.LANE_ID: "1"},  # the lowest lane id
    {S.LANE_ID: "+7"},
    {S.OBSERVED_AT: "2020-04-07T12:00:00 Europe/Brussels"},
])
def test_values_that_are_not_rejected(spark, changes):
    assert reasons(spark, [text_row(**changes)]) == [None]


def test_the_first_reason_in_the_documented_order_wins(spark):
    rows = [
        text_row(unit="abc", **{I2: "-1", S2: "251"}),  # bad_lve_nr before negative_intensity
        text_row(lane=None, unit=None, t=None),  # the time first: no run owns the reading
        text_row(lane=None, unit=None),  # then bad_unieke_id
        text_row(lane="-11", unit="abc"),  # bad_unieke_id (not above 0) before bad_lve_nr
        text_row(t="soon", **{S.MODIFIED_AT: "soon"}),
        text_row(**{S.MODIFIED_AT: "soon", I3: None}),
        text_row(**{I3: None, S.intensity(4): "-2"}),
        text_row(**{S.intensity(4): "-2", I2: "4", S2: "251"}),
    ]
    assert reasons(spark, rows) == [RS.BAD_UNIT_ID, RS.BAD_OBSERVED_AT, RS.BAD_LANE_ID, RS.BAD_LANE_ID,
                                    RS.BAD_OBSERVED_AT, RS.BAD_MODIFIED_AT, RS.BAD_INTENSITY,
                                    RS.NEGATIVE_INTENSITY]


CONTEXT = (NOON - 3600, NOON + 3600)  # a run's context range: [11:00, 13:00)


def test_a_run_judges_only_the_readings_of_its_context(spark):
    """Outside the context a reading is another run's: no reason, nothing parsed past
    its time. An unusable time belongs to no run: every run that reads it rejects it."""
    bad = {I2: "4", S2: "251", S.MODIFIED_AT: "soon"}
    rows = [
        text_row(lane="1", t=str(NOON - 3600), **bad),  # first second of the context
        text_row(lane="2", t=str(NOON + 3599), **bad),  # last second
        text_row(lane="3", t=str(NOON + 3600), **bad),  # the end is exclusive: outside
        text_row(lane="4", t="2020-04-07T10:59:59Z", **bad),  # before: outside
        text_row(lane="5", t="soon"),
        text_row(lane="6", t=str(NOON + 7200), unit="abc"),  # outside: ids not validated
    ]
    result = V.typed_readings(text_df(spark, rows), CONTEXT).select(
        S.LANE_ID, S.OBSERVED_AT, F.unix_seconds(S.MODIFIED_AT).alias("modified"), I2,
        READING_STATUS)
    modified = T0 + 30  # MODIFIED, 02:00:30+02:00
    expected = frame(spark, [
        (1, NOON - 3600, None, 4, int(RS.BAD_MODIFIED_AT)),
        (2, NOON + 3599, None, 4, int(RS.BAD_MODIFIED_AT)),
        (None, NOON + 3600, None, None, int(RS.OUTSIDE_DAYS)),
        (None, NOON - 3601, None, None, int(RS.OUTSIDE_DAYS)),
        (5, None, modified, 1, int(RS.BAD_OBSERVED_AT)),
        (None, NOON + 7200, None, None, int(RS.OUTSIDE_DAYS)),
    ], result.schema)
    assert_df_equality(result, expected, ignore_nullable=True)

    quarantined = V.rejected_readings(text_df(spark, rows), F.lit("f"), CONTEXT)
    assert sorted(r[S.LANE_ID] for r in quarantined.collect()) == ["1", "2", "5"]


def test_after_the_scan_filter_no_reading_needs_the_context(spark):
    """Where the time is an integer column, the scan's filter (`validated_by_run`) leaves
    only readings of the context and readings without a usable time: all the run's to
    judge, so `typed_readings` needs no context to test them against (`left_to_judge`)
    and judges them as it would with one."""
    times = {1: NOON - 3600, 2: NOON + 3600, 3: None, 4: -5, 5: NOON, 6: V.MAX_EPOCH_SECONDS,
             7: NOON - 3601}
    raw = frame(spark, [
        tuple(raw_reading(lane, 1, t, modified="soon" if lane == 1 else MODIFIED)[name]
              for name in S.RAW_COLUMNS)
        for lane, t in times.items()
    ], S.RAW_SCHEMA)
    scanned = raw.where(V.validated_by_run(raw, CONTEXT))
    assert V.left_to_judge(scanned, CONTEXT) is None
    judged = V.typed_readings(scanned, V.left_to_judge(scanned, CONTEXT))
    assert_df_equality(judged, V.typed_readings(scanned, CONTEXT), ignore_nullable=True)
    assert sorted((r[S.LANE_ID], r[READING_STATUS]) for r in judged.collect()) == [
        (1, RS.BAD_MODIFIED_AT), (3, RS.BAD_OBSERVED_AT), (4, RS.BAD_OBSERVED_AT), (5, None),
        (6, RS.BAD_OBSERVED_AT),
    ]
    # Text times are filtered by no scan: every reading is tested against the context.
    assert V.left_to_judge(text_df(spark, [text_row()]), CONTEXT) == CONTEXT


@pytest.mark.parametrize("text, seconds", [
    # The feed's form, with the offsets Flanders uses: the offset is subtracted.
    ("2020-04-07T14:05:30+02:00", T0 + 12 * 3600 + 5 * 60 + 30),
    ("2020-01-07T13:05:30+01:00", T0 - 91 * 86400 + 12 * 3600 + 5 * 60 + 30),
    ("2020-04-07T12:05:30Z", T0 + 12 * 3600 + 5 * 60 + 30),
    ("2020-04-07T12:05:30+00:00", T0 + 12 * 3600 + 5 * 60 + 30),
    ("2020-04-07T12:05:30", T0 + 12 * 3600 + 5 * 60 + 30),
    ("2020-04-08T00:30:00+02:00", T0 + 86400 - 90 * 60),  # 22:30Z, the day before
    ("2020-12-31T23:59:59+01:00", 1609455599),  # 22:59:59Z
    # Any other form takes Spark's general parse: the same instants.
    ("2020-04-07T08:35:30-03:30", T0 + 12 * 3600 + 5 * 60 + 30),
    ("2020-04-07T17:50:30+05:45", T0 + 12 * 3600 + 5 * 60 + 30),
    ("2020-04-07T15:05:30+03:00", T0 + 12 * 3600 + 5 * 60 + 30),
    ("2020-04-07T11:05:30-01:00", T0 + 12 * 3600 + 5 * 60 + 30),
    ("2020-04-07T12:05:30-00:00", T0 + 12 * 3600 + 5 * 60 + 30),
    ("2020-04-07 14:05:30.9+02:00", T0 + 12 * 3600 + 5 * 60 + 30),  # fraction dropped
    (" 2020-04-07T14:05:30+02:00", T0 + 12 * 3600 + 5 * 60 + 30),
    # Not a time, in either path.
    ("2020-02-30T10:00:00+01:00", None),
    ("2020-04-07T24:00:00+02:00", None),
    ("2020-04-07T12:00:00+25:00", None),
    ("2020-4-07T12:05:30+02:00", None),
    # Near the feed's form, but not it: the general parse decides, as it always did.
    ("2020-04-07T12:05:3Z+02:00", None),  # its first 19 bytes alone would parse (12:05:03)
    ("20200-4-07T12:05:30", None),  # Spark would read the year 20200
    ("2020-04-07T12:05:3 ", T0 + 12 * 3600 + 5 * 60 + 3),  # the blank is trimmed
    ("2020-04-07T12:05:3.+02:00", T0 + 10 * 3600 + 5 * 60 + 3),  # an empty fraction
    ("2020-04-07 12:05:30+02:00", T0 + 10 * 3600 + 5 * 60 + 30),  # a blank for the T
])
def test_iso_times_in_the_feeds_form_and_any_other(spark, text, seconds):
    row = typed(spark, [text_row(t=text, **{S.MODIFIED_AT: text})]).collect()[0]
    assert row[S.OBSERVED_AT] == seconds
    modified = row[S.MODIFIED_AT]
    assert (None if modified is None else int(modified.timestamp())) == seconds
    assert row[READING_STATUS] == (None if seconds is not None else RS.BAD_OBSERVED_AT)


@pytest.mark.parametrize("text, seconds", [
    ("1969-12-31T23:59:59", -1),
    ("1969-12-31T23:59:59+01:00", -3601),
    ("1970-01-01T00:00:00Z", 0),
    ("0001-01-01T00:00:00", -62135596800),
])
def test_times_before_1970_keep_their_second(spark, text, seconds):
    # The feed's form is parsed with ".0" after its first 19 bytes: that fraction must
    # move no instant, before 1970 either (where ".5" would have moved it a second on).
    value = frame(spark, [(text,)], "t string").select(F.unix_seconds(V._iso_instant("t")))
    assert value.collect()[0][0] == seconds


def test_a_malformed_record_is_rejected_first(spark):
    rows = [text_row(), {name: None for name in S.RAW_COLUMNS}, text_row()]
    corrupt = [None, "[1, 2]", '{"unieke_id": "11"']  # the last parsed partly, then broke
    assert reasons(spark, rows, with_corrupt=corrupt) == [None, RS.MALFORMED_RECORD,
                                                          RS.MALFORMED_RECORD]


def test_a_rejected_reading_keeps_its_values_and_gets_its_reason(spark):
    """Validation only labels; that a rejected reading reaches no location is step 1's
    rule (`transforms.with_reading_status`, tests/test_transforms.py)."""
    rows = [text_row(), text_row(lane="99", **{I2: "4", S2: "251"})]
    result = typed(spark, rows).select(S.LANE_ID, S.UNIT_ID, READING_STATUS)
    expected = frame(spark, [(11, 1, None), (99, 1, int(RS.BAD_SPEED))],
                                     f"{S.LANE_ID} int, {S.UNIT_ID} int, {READING_STATUS} int")
    assert_df_equality(result, expected, ignore_nullable=True)


def test_typed_parquet_columns_and_missing_ones(spark):
    """Parquet types as landed: int32 tijd_waarneming, bigint ids, a double that is not
    an integer; no tijd_laatst_gewijzigd column at all (allowed: NULL)."""
    schema = T.StructType([
        T.StructField(S.LANE_ID, T.LongType()), T.StructField(S.UNIT_ID, T.IntegerType()),
        T.StructField(S.OBSERVED_AT, T.IntegerType()), T.StructField(S.DEFECT, T.IntegerType()),
        T.StructField(S.OCCUPANCY, T.DoubleType()),
    ] + [T.StructField(name, T.IntegerType()) for k in S.COUNTED_CLASSES
         for name in (S.intensity(k), S.arithmetic_speed(k))])
    counts = (2, 0, 0, 0, 90, 0, 0, 0)  # i2, s2, i3, s3, ... interleaved below
    values = [c for pair in zip(counts[:4], counts[4:]) for c in pair]
    raw = frame(spark, [
        (11, 1, NOON, 0, 5.0, *values),
        (12, 1, NOON, 0, 5.5, *values),  # occupancy 5.5: not an integer, NULL, not rejected
        (13, 1, None, 0, 5.0, *values),
    ], schema)
    expected = readings_df(spark, [
        reading(11, 1, NOON, counts=(2, 0, 0, 0), speeds=(90, 0, 0, 0), occupancy=None),
        reading(12, 1, NOON, counts=(2, 0, 0, 0), speeds=(90, 0, 0, 0), occupancy=None),
        reading(13, 1, None, counts=(2, 0, 0, 0), speeds=(90, 0, 0, 0), occupancy=None,
                status=RS.BAD_OBSERVED_AT),
    ])
    # 5.0 is a double's text "5.0": not an integer either (docs/SEMANTICS.md, "Parsing text").
    assert_df_equality(V.typed_readings(raw), expected, ignore_nullable=True)


def test_rejected_readings_keep_the_raw_text_the_reason_and_the_file(spark):
    rows = [text_row(), text_row(unit="abc"), {name: None for name in S.RAW_COLUMNS}]
    raw = text_df(spark, rows, with_corrupt=[None, None, "[1, 2]"])
    result = V.rejected_readings(raw, F.lit("file:/landing/part-0.json")).select(
        S.LANE_ID, S.UNIT_ID, S.OBSERVED_AT, "raw_record", V.REJECT_REASON, "source_file")
    expected = frame(spark, [
        ("11", "abc", str(NOON), None, "bad_lve_nr", "file:/landing/part-0.json"),
        (None, None, None, "[1, 2]", "malformed_record", "file:/landing/part-0.json"),
    ], result.schema)
    assert_df_equality(result, expected, ignore_nullable=True)
    # Every raw column is there, as text, whatever the input carried.
    assert V.rejected_readings(raw, F.lit("f")).columns[: len(S.RAW_COLUMNS)] == list(S.RAW_COLUMNS)
