"""From raw readings as they land (any column may be a string) to typed readings.

A reading that cannot be used gets a rejected status (`statuses.REJECTED`;
docs/SEMANTICS.md, "Validation", lists them in the order they are checked); it is
quarantined, never silently dropped. A run judges only its own readings: one measured
outside the run's context range is `outside_days`, typed no further than its time, and
another run, whose days hold it, judges it. This is the one place that decides it.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from traffic_glue.compute import schema as S
from traffic_glue.compute.statuses import READING_STATUS, ReadingStatus, code, is_rejected, label_of

REJECT_REASON = "reject_reason"  # the quarantine's column: the status's label
CORRUPT_RECORD = "_corrupt_record"

MAX_SPEED = 250
# Epoch seconds outside 1970..2100 are not a measurement time of this feed (epoch
# milliseconds, for one, land here).
MIN_EPOCH_SECONDS = 0
MAX_EPOCH_SECONDS = 4_102_444_800
# docs/SEMANTICS.md, "Parsing text": an integer is an optional sign and digits; an ISO-8601
# time starts with a YYYY-MM-DD date. Spark's casts alone take more ("2020-04", a bare
# "11:30" on today's date), so text is matched against these first, as tools/sql/macros.sql does.
_DIGITS = r"^\s*[+-]?[0-9]+\s*$"
_ISO_DATE = r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?$"
# The feed's own form of a time, "2020-04-07T11:30:00+02:00", with one of the offsets
# Flanders uses (or Z, or none: UTC). Spark's general cast spends most of its time
# resolving the zone text of every value, and a day holds 6.6 M of them; for these the
# offset is subtracted instead, which is the same instant. Any other text takes the
# general cast, so every text gets the value it always got. The regex admits exactly
# the offsets of _FEED_OFFSETS, so no further test of the offset is needed (each
# string function costs tens of nanoseconds on every reading of a backfill). Texts of
# this form are found without the regex first (`_feed_instant`).
_FEED_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+]0[0-2]:00)?$"
_FEED_OFFSETS = {"": 0, "Z": 0, "+00:00": 0, "+01:00": 3600, "+02:00": 7200}

# Typed columns the computation uses, in this order.
READING_COLUMNS = (
    S.LANE_ID,
    S.UNIT_ID,
    S.OBSERVED_AT,
    S.MODIFIED_AT,
    S.DEFECT,
    S.OCCUPANCY,
    *(S.intensity(k) for k in S.COUNTED_CLASSES),
    *(S.arithmetic_speed(k) for k in S.COUNTED_CLASSES),
)
_INT_COLUMNS = tuple(c for c in READING_COLUMNS if c not in (S.OBSERVED_AT, S.MODIFIED_AT))


_OBSERVED, _IN_CONTEXT = "_observed", "_in_context"
_MODIFIED_PRESENT, _MALFORMED = "_modified_present", "_malformed"


def typed_readings(raw: DataFrame, context: tuple[int, int] | None = None) -> DataFrame:
    """The columns the computation needs, typed, plus `reading_status`: a rejected
    status, `outside_days`, or NULL for a reading the rules of step 1 judge next.

    `context` is the run's context range in epoch seconds, [start, end)
    (`run_range.RunRange.context`). A reading measured outside it is not the run's:
    it is `outside_days` and its other columns are NULL, never parsed (in a one-day
    run, half of what the late folders hold). One without a usable time is rejected.
    """
    # Projections apart: the time, then the columns it guards, then the reason from
    # the parsed values by name. In one projection the reason's CASE branches would
    # parse tijd_laatst_gewijzigd again for every reading (Spark does not share
    # subexpressions inside conditional branches); Spark keeps projections apart that
    # would repeat such work (SPARK-36718).
    timed = _timed(raw, context)
    guarded = F.col(_IN_CONTEXT)
    parsed = timed.select(
        *(expression.alias(name) for name, expression in _typed(raw, guarded).items()),
        F.when(guarded, _present(raw, S.MODIFIED_AT).isNotNull()).alias(_MODIFIED_PRESENT),
        _malformed(raw).alias(_MALFORMED),
        guarded,
    )
    columns = {name: F.col(name) for name in READING_COLUMNS}
    status = _status(columns, F.col(_MODIFIED_PRESENT), F.col(_MALFORMED), guarded)
    return parsed.select(*READING_COLUMNS, status.alias(READING_STATUS))


def validated_by_run(raw: DataFrame, context: tuple[int, int]) -> Column | None:
    """The readings of `raw` the run judges (`typed_readings`: those measured in the
    context range, and those without a usable time) as a condition on the raw column
    that Parquet checks against each row group's statistics: a row group holding only
    other days' readings is not read at all (in a one-day run, most of the late
    folders). None where the time is not an integer column: text is validated once parsed.
    """
    if not isinstance(_type_of(raw, S.OBSERVED_AT), T.IntegralType):
        return None
    time = F.col(S.OBSERVED_AT)
    # Plain comparisons on the raw column, which Spark hands to Parquet (test_pipeline).
    unusable = time.isNull() | (time < MIN_EPOCH_SECONDS) | (time >= MAX_EPOCH_SECONDS)
    return unusable | _within(time, context)


def left_to_judge(raw: DataFrame, context: tuple[int, int]) -> tuple[int, int] | None:
    """The context range `typed_readings` must still test the readings of `raw` against
    once `validated_by_run`'s filter is applied to them: none where there is one (each
    reading it leaves is in the range or has no usable time: the run judges them all),
    else `context`. Without the range, no column is guarded by it, and Spark drops the
    guards: 4 % of a scan's time."""
    return None if validated_by_run(raw, context) is not None else context


def _within(seconds: Column, span: tuple[int, int]) -> Column:
    """`seconds` in `[start, end)`."""
    start, end = span
    return (seconds >= start) & (seconds < end)


def _timed(raw: DataFrame, context: tuple[int, int] | None) -> DataFrame:
    """`raw` plus the time in epoch seconds and whether the run judges the reading."""
    timed = raw.withColumn(_OBSERVED, as_epoch_seconds(raw, S.OBSERVED_AT))
    if context is None:
        return timed.withColumn(_IN_CONTEXT, F.lit(True))
    observed = F.col(_OBSERVED)
    # An unusable time is rejected by every run that reads it.
    in_context = observed.isNull() | _within(observed, context)
    return timed.withColumn(_IN_CONTEXT, in_context)


def _typed(raw: DataFrame, guarded: Column) -> dict[str, Column]:
    """Typed columns of `_timed(raw)`; all but the time only where `guarded` holds."""
    typed = {name: F.when(guarded, as_int(raw, name)) for name in _INT_COLUMNS}
    typed[S.OBSERVED_AT] = F.col(_OBSERVED)
    typed[S.MODIFIED_AT] = F.when(guarded, _as_instant(raw, S.MODIFIED_AT))
    return {name: typed[name] for name in READING_COLUMNS}


def _malformed(raw: DataFrame) -> Column:
    return F.col(CORRUPT_RECORD).isNotNull() if CORRUPT_RECORD in raw.columns else F.lit(False)


def rejected_readings(
    raw: DataFrame, source_file: Column, context: tuple[int, int] | None = None
) -> DataFrame:
    """The run's unusable readings as they arrived (every raw column as text), with the
    label of their status as `reject_reason`; `context` as in `typed_readings`."""
    guarded = F.col(_IN_CONTEXT)
    status = _status(
        _typed(raw, guarded), F.when(guarded, _present(raw, S.MODIFIED_AT).isNotNull()),
        _malformed(raw), guarded,
    )
    timed = _timed(raw, context)
    present = set(raw.columns)
    as_text = [
        (F.col(name).cast("string") if name in present else F.lit(None).cast("string")).alias(name)
        for name in S.RAW_COLUMNS
    ]
    corrupt = (
        F.col(CORRUPT_RECORD) if CORRUPT_RECORD in present else F.lit(None).cast("string")
    ).alias("raw_record")
    return (
        timed.select(*as_text, corrupt, status.alias(READING_STATUS),
                     source_file.alias("source_file"))
        .where(is_rejected())
        .select(*S.RAW_COLUMNS, "raw_record", label_of(F.col(READING_STATUS)).alias(REJECT_REASON),
                "source_file")
    )


def _status(
    typed: dict[str, Column], modified_present: Column, malformed: Column, in_context: Column
) -> Column:
    """The first reason a reading cannot be used, from its typed values; `outside_days`
    for another run's reading; else NULL."""
    intensities = [typed[S.intensity(k)] for k in S.COUNTED_CLASSES]
    speeds = [typed[S.arithmetic_speed(k)] for k in S.COUNTED_CLASSES]
    bad_speed = F.lit(False)
    for count, speed in zip(intensities, speeds):
        bad_speed = bad_speed | (
            (count > 0) & (speed.isNull() | (speed < 0) | (speed > MAX_SPEED))
        )
    return (
        F.when(malformed, code(ReadingStatus.MALFORMED_RECORD))
        .when(typed[S.OBSERVED_AT].isNull(), code(ReadingStatus.BAD_OBSERVED_AT))
        # Another run's reading: that run judges it (and quarantines it, once).
        .when(~in_context, code(ReadingStatus.OUTSIDE_DAYS))
        # The feed numbers lanes from 1; `-unieke_id` is an unconfigured lane's location.
        .when(typed[S.LANE_ID].isNull() | (typed[S.LANE_ID] <= 0), code(ReadingStatus.BAD_LANE_ID))
        .when(typed[S.UNIT_ID].isNull(), code(ReadingStatus.BAD_UNIT_ID))
        .when(modified_present & typed[S.MODIFIED_AT].isNull(), code(ReadingStatus.BAD_MODIFIED_AT))
        .when(_any(c.isNull() for c in intensities), code(ReadingStatus.BAD_INTENSITY))
        .when(_any(c < 0 for c in intensities), code(ReadingStatus.NEGATIVE_INTENSITY))
        .when(bad_speed, code(ReadingStatus.BAD_SPEED))
        .otherwise(code(None))
    )


def _any(conditions) -> Column:
    result = F.lit(False)
    for condition in conditions:
        result = result | condition
    return result


def _present(raw: DataFrame, name: str) -> Column:
    """The raw column, or NULL where this input does not carry it."""
    return F.col(name) if name in raw.columns else F.lit(None)


def _type_of(raw: DataFrame, name: str) -> T.DataType | None:
    return raw.schema[name].dataType if name in raw.columns else None


def _try_cast(name: str, to: str) -> Column:
    return F.expr(f"try_cast(`{name}` AS {to})")


def _text(name: str) -> str:
    return f"CAST(`{name}` AS STRING)"


def as_int(raw: DataFrame, name: str) -> Column:
    kind = _type_of(raw, name)
    if kind is None:
        return F.lit(None).cast("int")
    if isinstance(kind, (T.StringType, T.IntegralType)):
        return _try_cast(name, "int")  # on text, try_cast takes exactly sign and digits
    # A double, decimal or boolean column is read as its text: 12.0 and true are not
    # integers (try_cast would truncate 12.5 to 12 and make true 1).
    return F.expr(f"try_cast({_text(name)} AS int)")


def _iso_instant(name: str) -> Column:
    # The feed's own form first, without a regex (`_feed_instant`); every other text, and
    # one of that form that is no date, as before (`_any_iso_instant`): the same instant
    # or NULL for every text, and the regex's cost only for them.
    return F.coalesce(_feed_instant(name), _any_iso_instant(name))


def _offset_seconds(text: Column) -> Column:
    """Seconds east of UTC of a text of _FEED_TIME: its end names its offset (compared as
    bytes: `substr` counts characters)."""
    seconds_east = F.lit(0)
    for form, seconds in _FEED_OFFSETS.items():
        if seconds:
            seconds_east = F.when(text.endswith(form), seconds).otherwise(seconds_east)
    return seconds_east


def _feed_instant(name: str) -> Column:
    """The instant of a text of _FEED_TIME that is a date, by Spark's own parse of its
    first 19 bytes and no regex; NULL for every other text (and for some of that form:
    `_any_iso_instant` then decides). Each step costs a few nanoseconds of CPU a reading,
    the regex about 160 (docs/BENCHMARKS.md, "The evening's round").

    Why no other text gets a value here:
    - its length and its end are those of one of _FEED_OFFSETS after 19 bytes (any
      other has no offset, and so no value);
    - its first 19 bytes with ".0" after them parse as a date and time (`try_cast ... AS
      timestamp_ntz`). Spark's parse takes `[+-]yyyy[yy]-[m]m-[d]d[ T][h]h:[m]m:[s]s`, then
      a fraction and a zone, with blanks around it, and fails on any other byte (one above
      127 too, so bytes and characters agree). After the 19 bytes, ".0" would end a
      fraction or a zone that never parses, or a trailing blank, so the 19 bytes are five
      separators and 14 digits: the year's 4 to 6, every other field's 1 or 2;
    - their 5th byte is "-": the year is 4 digits (a sign or a blank would leave it 3), so
      every other field has 2; their 11th is "T", not the blank Spark also takes.
    The fraction ".0" changes no instant.
    """
    text = F.expr(_text(name))
    binary = f"CAST({_text(name)} AS BINARY)"
    length = F.expr(f"octet_length({_text(name)})")
    # The offset its end names, NULL for any other length and end. The last form wrapped
    # is tested first: Belgian summer time, then winter time.
    seconds_east = F.lit(None)
    for form, seconds in sorted(_FEED_OFFSETS.items(), key=lambda item: item[1]):
        seconds_east = F.when((length == 19 + len(form)) & text.endswith(form), seconds).otherwise(
            seconds_east)
    separators = F.expr(f"substr({binary}, 5, 1) = X'2D' AND substr({binary}, 11, 1) = X'54'")
    # The 19 bytes are a wall-clock time; as TIMESTAMP_NTZ their epoch seconds are UTC's
    # whatever the session's zone.
    wall_clock = F.expr(
        f"unix_timestamp(try_cast(CAST(concat(substr({binary}, 1, 19), X'2E30') AS STRING)"
        " AS timestamp_ntz))"
    )
    return F.when(separators, F.timestamp_seconds(wall_clock - seconds_east))


def _any_iso_instant(name: str) -> Column:
    text = F.expr(_text(name))
    # The first 19 characters are a wall-clock time; as TIMESTAMP_NTZ their epoch
    # seconds are UTC's whatever the session's zone. The regex admits only ASCII, so they
    # are the first 19 bytes, cut as bytes: `substr` of a string counts its characters
    # first.
    first_19 = f"CAST(substr(CAST({_text(name)} AS BINARY), 1, 19) AS STRING)"
    wall_clock = F.expr(f"unix_timestamp(try_cast({first_19} AS timestamp_ntz))")
    # (Regexes as Column.rlike arguments: inside SQL text '\s' would lose its backslash.)
    return F.when(
        text.rlike(_FEED_TIME), F.timestamp_seconds(wall_clock - _offset_seconds(text))
    ).when(text.rlike(_ISO_DATE), F.expr(f"try_cast({_text(name)} AS timestamp)"))


def as_epoch_seconds(raw: DataFrame, name: str) -> Column:
    kind = _type_of(raw, name)
    if kind is None:
        seconds = F.lit(None).cast("bigint")
    elif isinstance(kind, (T.TimestampType, T.TimestampNTZType)):
        seconds = F.unix_seconds(F.col(name).cast("timestamp"))
    elif isinstance(kind, T.IntegralType):
        seconds = _try_cast(name, "bigint")
    else:
        seconds = F.when(
            F.expr(_text(name)).rlike(_DIGITS), F.expr(f"try_cast(trim({_text(name)}) AS bigint)")
        ).otherwise(F.unix_seconds(_iso_instant(name)))
    return F.when(_within(seconds, (MIN_EPOCH_SECONDS, MAX_EPOCH_SECONDS)), seconds)


def _as_instant(raw: DataFrame, name: str) -> Column:
    kind = _type_of(raw, name)
    if kind is None:
        return F.lit(None).cast("timestamp")
    if isinstance(kind, (T.TimestampType, T.TimestampNTZType)):
        return F.col(name).cast("timestamp")
    return _iso_instant(name)
