"""From raw readings as they land (any column may be a string) to typed readings.

A reading that cannot be used gets a `reject_reason` (docs/SEMANTICS_NOTES.md lists
them, in the order they are checked); it is quarantined, never silently dropped.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from traffic_glue import schema as S

REJECT_REASON = "reject_reason"
CORRUPT_RECORD = "_corrupt_record"

MALFORMED_RECORD = "malformed_record"
BAD_LANE_ID = "bad_unieke_id"
BAD_UNIT_ID = "bad_lve_nr"
BAD_OBSERVED_AT = "bad_tijd_waarneming"
BAD_MODIFIED_AT = "bad_tijd_laatst_gewijzigd"
BAD_INTENSITY = "bad_intensity"
NEGATIVE_INTENSITY = "negative_intensity"
BAD_SPEED = "bad_speed"
REJECT_REASONS = (
    MALFORMED_RECORD,
    BAD_LANE_ID,
    BAD_UNIT_ID,
    BAD_OBSERVED_AT,
    BAD_MODIFIED_AT,
    BAD_INTENSITY,
    NEGATIVE_INTENSITY,
    BAD_SPEED,
)

MAX_SPEED = 250
# Epoch seconds outside 1970..2100 are not a measurement time of this feed (epoch
# milliseconds, for one, land here).
MIN_EPOCH_SECONDS = 0
MAX_EPOCH_SECONDS = 4_102_444_800
# SEMANTICS_NOTES "Parsing text": an integer is an optional sign and digits; an ISO-8601
# time starts with a YYYY-MM-DD date. Spark's casts alone take more ("2020-04", a bare
# "11:30" on today's date), so text is matched against these first, as tools/sql/macros.sql does.
_DIGITS = r"^\s*[+-]?[0-9]+\s*$"
_ISO_DATE = r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?$"

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


_MODIFIED_PRESENT, _MALFORMED = "_modified_present", "_malformed"


def typed_readings(raw: DataFrame) -> DataFrame:
    """The columns the computation needs, typed, plus `reject_reason` (NULL if usable)."""
    # Two projections: parse once, then judge the parsed values by name. In one, the
    # reason's CASE branches would parse tijd_laatst_gewijzigd again for every reading
    # (Spark does not share subexpressions inside conditional branches), and that parse
    # was most of the job's time. Spark keeps projections apart that would repeat it.
    parsed = raw.select(
        *(expression.alias(name) for name, expression in _typed(raw).items()),
        _present(raw, S.MODIFIED_AT).isNotNull().alias(_MODIFIED_PRESENT),
        _malformed(raw).alias(_MALFORMED),
    )
    columns = {name: F.col(name) for name in READING_COLUMNS}
    reason = _reject_reason(columns, F.col(_MODIFIED_PRESENT), F.col(_MALFORMED))
    return parsed.select(*READING_COLUMNS, reason.alias(REJECT_REASON))


def _typed(raw: DataFrame) -> dict[str, Column]:
    typed = {name: _as_int(raw, name) for name in _INT_COLUMNS}
    typed[S.OBSERVED_AT] = _as_epoch_seconds(raw, S.OBSERVED_AT)
    typed[S.MODIFIED_AT] = _as_instant(raw, S.MODIFIED_AT)
    return {name: typed[name] for name in READING_COLUMNS}


def _malformed(raw: DataFrame) -> Column:
    return F.col(CORRUPT_RECORD).isNotNull() if CORRUPT_RECORD in raw.columns else F.lit(False)


def rejected_readings(raw: DataFrame, source_file: Column) -> DataFrame:
    """The unusable readings as they arrived (every raw column as text), with the reason."""
    reason = _reject_reason(
        _typed(raw), _present(raw, S.MODIFIED_AT).isNotNull(), _malformed(raw)
    )
    present = set(raw.columns)
    as_text = [
        (F.col(name).cast("string") if name in present else F.lit(None).cast("string")).alias(name)
        for name in S.RAW_COLUMNS
    ]
    corrupt = (
        F.col(CORRUPT_RECORD) if CORRUPT_RECORD in present else F.lit(None).cast("string")
    ).alias("raw_record")
    return (
        raw.select(*as_text, corrupt, reason.alias(REJECT_REASON),
                   source_file.alias("source_file"))
        .where(F.col(REJECT_REASON).isNotNull())
    )


def _reject_reason(typed: dict[str, Column], modified_present: Column, malformed: Column) -> Column:
    """The first reason a reading cannot be used, from its typed values."""
    intensities = [typed[S.intensity(k)] for k in S.COUNTED_CLASSES]
    speeds = [typed[S.arithmetic_speed(k)] for k in S.COUNTED_CLASSES]
    bad_speed = F.lit(False)
    for count, speed in zip(intensities, speeds):
        bad_speed = bad_speed | (
            (count > 0) & (speed.isNull() | (speed < 0) | (speed > MAX_SPEED))
        )
    return (
        F.when(malformed, MALFORMED_RECORD)
        .when(typed[S.LANE_ID].isNull(), BAD_LANE_ID)
        .when(typed[S.UNIT_ID].isNull(), BAD_UNIT_ID)
        .when(typed[S.OBSERVED_AT].isNull(), BAD_OBSERVED_AT)
        .when(modified_present & typed[S.MODIFIED_AT].isNull(), BAD_MODIFIED_AT)
        .when(_any(c.isNull() for c in intensities), BAD_INTENSITY)
        .when(_any(c < 0 for c in intensities), NEGATIVE_INTENSITY)
        .when(bad_speed, BAD_SPEED)
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


def _as_int(raw: DataFrame, name: str) -> Column:
    kind = _type_of(raw, name)
    if kind is None:
        return F.lit(None).cast("int")
    if isinstance(kind, (T.StringType, T.IntegralType)):
        return _try_cast(name, "int")  # on text, try_cast takes exactly sign and digits
    # A double, decimal or boolean column is read as its text: 12.0 and true are not
    # integers (try_cast would truncate 12.5 to 12 and make true 1).
    return F.expr(f"try_cast({_text(name)} AS int)")


def _iso_instant(name: str) -> Column:
    return F.when(
        F.expr(_text(name)).rlike(_ISO_DATE), F.expr(f"try_cast({_text(name)} AS timestamp)")
    )


def _as_epoch_seconds(raw: DataFrame, name: str) -> Column:
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
    in_range = (seconds >= MIN_EPOCH_SECONDS) & (seconds < MAX_EPOCH_SECONDS)
    return F.when(in_range, seconds)


def _as_instant(raw: DataFrame, name: str) -> Column:
    kind = _type_of(raw, name)
    if kind is None:
        return F.lit(None).cast("timestamp")
    if isinstance(kind, (T.TimestampType, T.TimestampNTZType)):
        return F.col(name).cast("timestamp")
    return _iso_instant(name)
