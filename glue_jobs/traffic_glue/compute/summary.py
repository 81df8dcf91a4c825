"""The daily summary: curated minutes of a location folded into its UTC hours.

`daily_summary(curated)` is the pure computation of the table `traffic.daily_summary`
(docs/SEMANTICS.md, "The daily summary"): one row per location, UTC day and UTC hour
with at least one curated row; `with_location_names` adds each row's location name
from the locations table. Its column names and types are defined once, here.
The session time zone must be UTC (the job's sessions set it): `day` and `hour` are
read from timestamps in it, and `from_utc_timestamp` assumes it.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from traffic_glue.compute import schema as S

DAY = "day"
HOUR = "hour"
LOCAL_HOUR = "local_hour"
MINUTES_MEASURED = "minutes_measured"
JAM_MINUTES = "jam_minutes"
LONG_JAM_MINUTES = "long_jam_minutes"
MEAN_SPEED = "mean_speed"
P15_SPEED = "p15_speed"
WORST_AVG_SPEED_20 = "worst_avgspeed20"


def vehicles(k: int) -> str:
    return f"vehicles_class{k}"


SUMMARY_SCHEMA = T.StructType(
    [
        S.column(S.LOCATION_ID, T.IntegerType(), "The location's id, as in the curated table"),
        S.column(DAY, T.DateType(), "The UTC day of recordtimestamp; the partition column"),
        S.column(HOUR, T.IntegerType(),
                 "The UTC hour of recordtimestamp, 0..23: the row holds recordtimestamp in [hour:00, hour+1:00)"),
        S.column(LOCAL_HOUR, T.IntegerType(),
                 "The Europe/Brussels wall-clock hour at the start of the UTC hour, 0..23 (summer time "
                 "included); a label, not a key"),
        S.column(MINUTES_MEASURED, T.IntegerType(), "Curated rows of the location in the hour, whatever their values"),
        S.column(JAM_MINUTES, T.IntegerType(),
                 "Of them, rows with trafficjamindicator = 1 (0 flowing, -1 unknown and NULL add nothing)"),
        S.column(LONG_JAM_MINUTES, T.IntegerType(), "Of them, rows with trafficjamindicatorlong = 1"),
        S.column(MEAN_SPEED, T.DoubleType(),
                 "Mean currentspeed of the hour's rows, km/h, not weighted by vehicles, NULLs left out; NULL if "
                 "there is none"),
        S.column(P15_SPEED, T.DoubleType(),
                 "15th percentile of the hour's non-NULL currentspeed values, km/h: percentile(currentspeed, "
                 "0.15), linear between the closest ranks; NULL if there is none"),
    ]
    + [
        S.column(vehicles(k), T.LongType(),
                 f"Vehicles of class {k} in the hour: the sum of trafficintensityclass{k}, NULLs left out; "
                 "0 when every value is NULL")
        for k in S.COUNTED_CLASSES
    ]
    + [
        S.column(WORST_AVG_SPEED_20, T.DoubleType(),
                 "The lowest avgspeed20minutes of the hour, km/h, NULLs left out; NULL if there is none"),
    ]
)
SUMMARY_COLUMNS = tuple(SUMMARY_SCHEMA.fieldNames())
# The table: the computed columns and the location's name (`with_location_names`).
LOCATION_NAME = "location"
TABLE_SCHEMA = T.StructType(SUMMARY_SCHEMA.fields + [
    S.column(LOCATION_NAME, T.StringType(),
             "The location's label in the locations table, of its version in force at 00:00 UTC of day (before "
             "every version: the earliest); NULL for an id it does not name (an athena table's lane ids)"),
])
TABLE_COLUMNS = tuple(TABLE_SCHEMA.fieldNames())
# The names `with_location_names` takes: the locations table's id, label and validity
# (epoch seconds, NULL unbounded).
NAMES_SCHEMA = T.StructType([
    T.StructField("location_id", T.IntegerType()),
    T.StructField("label", T.StringType()),
    T.StructField("valid_from", T.LongType()),
    T.StructField("valid_to", T.LongType()),
])
# The table is partitioned by the UTC day.
SUMMARY_PARTITIONS = (DAY,)

LOCAL_TIME_ZONE = "Europe/Brussels"
JAM = 1  # the curated indicators' "jam"; 0 (flowing) and -1 (unknown) are not jam minutes
SLOW_SPEED_PERCENTILE = 0.15

_HOUR_START = "_hour_start"


def _jam_minutes(indicator: str) -> Column:
    # count_if counts true only: an indicator of 0, -1 or NULL adds nothing.
    return F.count_if(F.col(indicator) == JAM)


def daily_summary(curated: DataFrame) -> DataFrame:
    """One row per (`uniqueid`, UTC hour of `recordtimestamp`) of the curated rows, with
    the columns of `SUMMARY_SCHEMA` in its order. Other columns of `curated` (the
    table's partition columns, for one) are not read: day and hour come from
    `recordtimestamp`."""
    hour_start = F.date_trunc("hour", F.timestamp_seconds(F.col(S.RECORD_TIMESTAMP)))
    summary = (
        curated
        .groupBy(F.col(S.LOCATION_ID), hour_start.alias(_HOUR_START))
        .agg(
            F.count(F.lit(1)).alias(MINUTES_MEASURED),
            _jam_minutes(S.JAM).alias(JAM_MINUTES),
            _jam_minutes(S.JAM_LONG).alias(LONG_JAM_MINUTES),
            F.avg(S.CURRENT_SPEED).alias(MEAN_SPEED),
            F.percentile(S.CURRENT_SPEED, SLOW_SPEED_PERCENTILE).alias(P15_SPEED),
            *(
                # A sum of only NULLs is NULL; the table says 0 vehicles then.
                F.coalesce(F.sum(F.col(S.class_total(k)).cast(T.LongType())), F.lit(0))
                .alias(vehicles(k))
                for k in S.COUNTED_CLASSES
            ),
            F.min(S.AVG_SPEED_20).alias(WORST_AVG_SPEED_20),
        )
    )
    hour = F.col(_HOUR_START)
    derived = {
        DAY: F.to_date(hour),
        HOUR: F.hour(hour),
        # Brussels is a whole number of hours off UTC, so the local hour of the UTC
        # hour's start is the local hour of each of its minutes.
        LOCAL_HOUR: F.hour(F.from_utc_timestamp(hour, LOCAL_TIME_ZONE)),
    }
    return summary.select(
        *(
            derived.get(field.name, F.col(field.name)).cast(field.dataType).alias(field.name)
            for field in SUMMARY_SCHEMA.fields
        )
    )


def with_location_names(summary: DataFrame, names: DataFrame | None) -> DataFrame:
    """`summary` with each row's `location`: the label of its location's version in
    force at the start of its day in `names` (`NAMES_SCHEMA`, from the locations table);
    of a day before every version, the earliest version's (the earliest configuration
    covers older readings, docs/SEMANTICS.md "The configuration"); NULL for an id the
    table does not name (an `athena` table's lane ids). Columns of `TABLE_SCHEMA`."""
    if names is None:
        return summary.withColumn(LOCATION_NAME, F.lit(None).cast("string")).select(*TABLE_COLUMNS)
    day_start = F.unix_timestamp(F.col(DAY).cast("timestamp"))
    valid_from, valid_to = F.col("valid_from"), F.col("valid_to")
    in_force = (valid_from.isNull() | (valid_from <= day_start)) & (valid_to.isNull() | (day_start < valid_to))
    best_first = Window.partitionBy(S.LOCATION_ID, DAY, HOUR).orderBy(
        in_force.desc(), valid_from.asc_nulls_first()
    )
    return (
        summary.join(F.broadcast(names), F.col(S.LOCATION_ID) == F.col("location_id"), "left")
        .withColumn("_version", F.row_number().over(best_first))
        .where(F.col("_version") == 1)
        .withColumn(LOCATION_NAME, F.col("label"))
        .select(*TABLE_COLUMNS)
    )
