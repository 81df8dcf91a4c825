"""Pure transforms, one per step of docs/SEMANTICS.md's table ("Step by step").

Each takes a DataFrame and plain values and returns a DataFrame; the mode is
`config.ATHENA` or `config.CORRECTED`. `pipeline.curated_minutes` chains them.

Every window and grouping is keyed by the location plus more, so that every step shares
the job's one partitioning:

- `corrected`: a reading's location is known before the shuffle, from the configuration
  in force at its minute (`with_location`: one carriageway at one point), so a
  duplicate (lane, time), a minute (location, time) and a series (location) are found
  within one location;
- `athena`: the Athena query's grouping by `lve_nr`, its id the minute's largest lane,
  so everything is keyed by `lve_nr` (docs/SEMANTICS.md, "Step 4: the location").
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from traffic_glue.compute import schema as S
from traffic_glue.compute.modes import ATHENA, CORRECTED
from traffic_glue.compute.run_range import SECONDS_PER_DAY
from traffic_glue.compute.statuses import READING_STATUS, REPLACES_ITS_DAY, ReadingStatus, code, has_status

LANE_SPEED = "lane_speed"
READINGS = "_readings"  # group_lanes by status: the readings a row is of
WRONG_WAY = "_wrong_way_lane"  # corrected: a TR lane's reading (`with_location`)

# The lane map (`sources.configuration_lane_map`): where a lane's readings go while a
# configuration snapshot is in force, [valid_from, valid_to) in epoch seconds (NULL:
# unbounded); a NULL location is a wrong-way lane's.
MAP_LANE, MAP_FROM, MAP_TO, MAP_LOCATION = "_map_lane", "_map_from", "_map_to", "_map_location"
LANE_MAP_SCHEMA = T.StructType([
    T.StructField(MAP_LANE, T.IntegerType(), False),
    T.StructField(MAP_FROM, T.LongType()),
    T.StructField(MAP_TO, T.LongType()),
    T.StructField(MAP_LOCATION, T.IntegerType()),
])
_MAPPED = "_map_found"

NOT_DEFECT = 0
UNKNOWN_OCCUPANCY_MAX = -1  # occupancy must be above this

SPEED_JUMP = 20  # km/h between consecutive minutes that counts as a speed change
PREVIOUS_ROW_MAX_GAP_SECONDS = 60
# athena: rows before the current one; corrected: seconds before the current one.
SHORT_WINDOW_ROWS, LONG_WINDOW_ROWS = 2, 19
SHORT_WINDOW_SECONDS, LONG_WINDOW_SECONDS = 120, 1140
JAM_MAX_SPEED = 40
FREE_FLOW_MIN_SPEED_ATHENA = 41
MAX_PLAUSIBLE_SPEED = 250
JAM, FLOWING, UNKNOWN = 1, 0, -1

_COUNTS = [S.intensity(k) for k in S.COUNTED_CLASSES]
_SPEEDS = [S.arithmetic_speed(k) for k in S.COUNTED_CLASSES]
# group_lanes: the vehicles of a minute's readings, and how many readings counted them
_VEHICLES, _VEHICLE_READINGS = "_vehicles", "_vehicle_readings"


def _vehicles() -> Column:
    """Vehicles of classes 2..5 in the reading: i2 + i3 + i4 + i5."""
    return sum((F.col(c) for c in _COUNTS), F.lit(0))


def with_location(readings: DataFrame, lane_map: DataFrame | None) -> DataFrame:
    """Step 4 of `corrected`, before the shuffle: each reading's location (`uniqueid`),
    by the configuration snapshot in force at its minute (`lane_map`, a few thousand
    rows, broadcast): one carriageway at one point (docs/SEMANTICS.md, "Step 4: the
    location").

    A lane the configuration does not hold then is a location of its own, `-unieke_id`,
    never merged with a configured one; without a configuration (`lane_map` None) every
    lane is. A wrong-way lane's reading (`TR`) gets no location and is marked
    `WRONG_WAY`, for step 1 to leave it out.
    """
    unconfigured = (-F.col(S.LANE_ID)).cast("int")
    if lane_map is None:
        return readings.withColumns({S.LOCATION_ID: unconfigured, WRONG_WAY: F.lit(False)})
    observed = F.col(S.OBSERVED_AT)
    in_force = (
        (F.col(S.LANE_ID) == F.col(MAP_LANE))
        & (F.col(MAP_FROM).isNull() | (observed >= F.col(MAP_FROM)))
        & (F.col(MAP_TO).isNull() | (observed < F.col(MAP_TO)))
    )
    lanes = lane_map.withColumn(_MAPPED, F.lit(True))
    mapped = F.coalesce(F.col(_MAPPED), F.lit(False))
    return (
        readings.join(F.broadcast(lanes), in_force, "left")
        .withColumns({S.LOCATION_ID: F.when(mapped, F.col(MAP_LOCATION)).otherwise(unconfigured),
                      WRONG_WAY: mapped & F.col(MAP_LOCATION).isNull()})
        .drop(MAP_LANE, MAP_FROM, MAP_TO, MAP_LOCATION, _MAPPED)
    )


def with_reading_status(readings: DataFrame) -> DataFrame:
    """Step 1: the status of each reading validation left usable (`reading_status`
    NULL): `defect`, `unknown_occupancy`, in `corrected` `wrong_way_lane` (a `TR`
    lane's reading, `with_location`), or `kept`. Rejected and `outside_days` readings
    keep the status validation gave them.

    NULL `defect` or occupancy fails the rule, as it did in the Athena `WHERE`.
    """
    status = (
        F.when(F.col(READING_STATUS).isNotNull(), F.col(READING_STATUS))
        .when(~F.coalesce(F.col(S.DEFECT) == NOT_DEFECT, F.lit(False)), code(ReadingStatus.DEFECT))
        .when(
            ~F.coalesce(F.col(S.OCCUPANCY) > UNKNOWN_OCCUPANCY_MAX, F.lit(False)),
            code(ReadingStatus.UNKNOWN_OCCUPANCY),
        )
    )
    if WRONG_WAY in readings.columns:
        status = status.when(F.col(WRONG_WAY), code(ReadingStatus.WRONG_WAY_LANE))
    return readings.withColumn(READING_STATUS, status.otherwise(code(ReadingStatus.KEPT)))


def filter_kept_readings(readings: DataFrame) -> DataFrame:
    return readings.where(has_status(ReadingStatus.KEPT))


def kept_rows(rows: DataFrame) -> DataFrame:
    """The rows of kept readings of `group_lanes(..., by_status=True)`, as `group_lanes`
    gives them without it."""
    return rows.transform(filter_kept_readings).drop(READING_STATUS, READINGS)


def deduplication_order() -> list[Column]:
    """Latest modification first (NULL oldest), then the documented tie-break."""
    return [F.col(S.MODIFIED_AT).desc_nulls_last()] + [
        F.col(name).desc_nulls_last() for name in (*_COUNTS, *_SPEEDS, S.OCCUPANCY)
    ]


_READING_KEY = "_reading_key"
_LANE_SPAN = 1 << 32  # unieke_id + 2**31 lies in [0, 2**32)


def deduplicate_readings(readings: DataFrame, context_start: int) -> DataFrame:
    """Step 2 (`corrected`): of the kept readings, one per lane and measurement time:
    the winner of `deduplication_order`, whatever `lve_nr` the copies carry (a lane's
    location is the configuration's, `with_location`).

    The window is keyed by one long that is unique per (lane, time) for readings
    measured from `context_start` on, put first so that the 64-bit prefix Spark's sort
    compares first almost always decides; the location (a function of lane and time)
    second, so that the window reuses the partitioning by location.
    """
    key = (F.col(S.OBSERVED_AT).cast("long") - F.lit(context_start)) * F.lit(_LANE_SPAN) + (
        F.col(S.LANE_ID).cast("long") + F.lit(_LANE_SPAN // 2)
    )
    same_reading = Window.partitionBy(_READING_KEY, S.LOCATION_ID).orderBy(*deduplication_order())
    return (
        readings.withColumn(_READING_KEY, key)
        .withColumn("_copy", F.row_number().over(same_reading))
        .where(F.col("_copy") == 1)
        .drop("_copy", _READING_KEY)
    )


def with_lane_speed(readings: DataFrame, semantics: str) -> DataFrame:
    """Step 3: one speed per lane and minute, NULL when no vehicle of class 2..5 passed."""
    vehicles = _vehicles()
    if semantics == ATHENA:
        # The Athena query averaged the class speeds with integer division (DIV
        # truncates), over the classes that saw a vehicle.
        speed_sum = " + ".join(f"`{s}`" for s in _SPEEDS)
        classes_seen = " + ".join(f"IF(`{c}` > 0, 1, 0)" for c in _COUNTS)
        speed = F.expr(f"({speed_sum}) DIV ({classes_seen})")
    else:
        # Speed of the average vehicle; a class with no vehicle contributes nothing
        # (its speed field may be 0, 252 or missing).
        weighted = sum(
            (F.when(F.col(c) > 0, F.col(c) * F.col(s)).otherwise(0) for c, s in zip(_COUNTS, _SPEEDS)),
            F.lit(0),
        )
        speed = weighted.cast("double") / vehicles
    return readings.withColumn(LANE_SPEED, F.when(vehicles > 0, speed.cast("double")))


def group_lanes(readings: DataFrame, semantics: str, by_status: bool = False) -> DataFrame:
    """Steps 4 and 4a: one row per location and minute, from its kept readings (each
    has its four intensities: validation rejects a reading without them).

    `corrected`: per location (`with_location`), of deduplicated readings. `athena`: per
    `lve_nr`, and the row is named here: its id is the minute's largest lane id.

    `by_status`: of every reading, with its status as one more key and the number of
    readings each row is of (`READINGS`), so that the statuses can be counted from the
    rows (`counting.RunCounters.count_statuses`) before `kept_rows` keeps the kept ones.
    A reading that is not kept is only counted there: by its status and the day it
    replaces. So its row keeps no `lve_nr` (location) and has its day's first second for
    its minute: a task sums such readings in a few rows, not one per `lve_nr` and minute
    (thirty days of the benchmark's network: 26.3 M rows cross the shuffle to the
    grouping instead of 29.7 M).
    """
    if semantics == ATHENA:
        keys, location = [S.UNIT_ID, S.OBSERVED_AT], [F.max(S.LANE_ID).alias(S.LOCATION_ID)]
    else:
        keys, location = [S.LOCATION_ID, S.OBSERVED_AT], []
    counted = READINGS if by_status else _VEHICLE_READINGS
    if by_status:
        readings = readings.withColumns(_counted_only(keys[0]))
        keys = [*keys, READING_STATUS]
    # A row's vehicles are thus the sum of its class totals, and each of its readings
    # counted them: no sum of each reading's vehicles and no count of its own. The
    # partial sums cross the shuffle two columns narrower (thirty days of `athena`: 3%
    # less CPU).
    totals = [S.class_total(k) for k in S.COUNTED_CLASSES]
    rows = readings.groupBy(*keys).agg(
        *location,
        F.count(F.lit(1)).alias(counted),
        F.avg(LANE_SPEED).alias(S.CURRENT_SPEED),
        *(F.sum(S.intensity(k)).alias(total) for k, total in zip(S.COUNTED_CLASSES, totals)),
    )
    # The Athena query's "bezettingsgraad" is the rounded mean vehicle count per lane.
    rows = rows.withColumn(_VEHICLES, sum((F.col(total) for total in totals), F.lit(0)))
    rows = rows.withColumns({**{total: F.col(total).cast("int") for total in totals},
                             S.MEAN_VEHICLES_PER_LANE: _rounded_quotient(_VEHICLES, counted)})
    return rows.drop(_VEHICLES, *([] if by_status else [counted]))


def _counted_only(unit: str) -> dict[str, Column]:
    """`group_lanes` by status: the keys of a reading that is not kept, as its counts
    need them: no `unit` (`lve_nr` or location), and for its time the first second of
    its day where it replaces its day (`counting`: output days are whole UTC days), else
    none."""
    kept, observed = has_status(ReadingStatus.KEPT), F.col(S.OBSERVED_AT)
    its_day = observed - F.pmod(observed, F.lit(SECONDS_PER_DAY))
    return {unit: F.when(kept, F.col(unit)),
            S.OBSERVED_AT: F.when(kept, observed).when(has_status(*REPLACES_ITS_DAY), its_day)}


def _rounded_quotient(total: str, count: str) -> Column:
    """`ROUND(total / count)` of two whole-number columns, half away from zero, as an int
    (NULL for a count of 0): what `round(avg(x))` gives, computed in whole numbers. Spark
    rounds a double through a BigDecimal of its decimal text (`Double.toString`), which
    took a sixth of the grouping stage's time."""
    total_, count_ = f"`{total}`", f"`{count}`"
    magnitude = f"(2 * abs({total_}) + {count_}) div (2 * {count_})"
    signed = f"IF({total_} < 0, -{magnitude}, {magnitude})"
    return F.expr(f"CAST(IF({count_} > 0, {signed}, NULL) AS INT)")


def series(semantics: str) -> Window:
    """Step 5: one series per location, in time order (a function: specs need a JVM).

    `athena`'s per (`lve_nr`, `uniqueid`): its ids are lane ids of a minute.
    """
    if semantics == CORRECTED:
        return Window.partitionBy(S.LOCATION_ID).orderBy(S.OBSERVED_AT)
    return Window.partitionBy(S.UNIT_ID, S.LOCATION_ID).orderBy(S.OBSERVED_AT)


# `presorted_for_series`: the bits of its key, highest first: `lve_nr`, the minute's id,
# the seconds since the run's context start (8.5 years).
_SERIES_UNIT_SHIFT, _SERIES_LOCATION_SHIFT = 44, 28
_SERIES_KEY = "_series_key"


def presorted_for_series(rows: DataFrame, context_start: int) -> DataFrame:
    """`athena`'s minute rows in series order within each task (of the grouping, before
    they cross the shuffle to the series windows): the same rows, only ordered.

    The windows' sort is by `lve_nr`, the minute's id and the time; Spark's sort compares
    a 64-bit prefix of the first column only, `lve_nr`, and most of its comparisons reach
    the rows. Sorted here by one long that orders them the same way, with Spark's radix
    sort, the rows cross the shuffle as runs already in order: the windows' sort merges
    them (thirty days of the benchmark's network: 6.5 s less there, 2.6 s more here).

    The key orders the rows exactly as the series do while `lve_nr` is in [0, 2^19), the
    minute's id (a lane id) in [0, 2^16) and the time within 2^28 s (8.5 years) of the
    context start: the feed's numbers are below 5,000. Any other row only sorts less
    well here; the windows' own sort still orders every row.
    """
    # Shifts and ORs: no overflow to fail on, even with ANSI arithmetic.
    key = (
        F.shiftleft(F.col(S.UNIT_ID).cast("long"), _SERIES_UNIT_SHIFT)
        .bitwiseOR(F.shiftleft(F.col(S.LOCATION_ID).cast("long"), _SERIES_LOCATION_SHIFT))
        .bitwiseOR(F.col(S.OBSERVED_AT).cast("long") - F.lit(context_start))
    )
    return rows.withColumn(_SERIES_KEY, key).sortWithinPartitions(_SERIES_KEY).drop(_SERIES_KEY)


def with_previous_speed(rows: DataFrame, semantics: str) -> DataFrame:
    """Step 6: the previous row's speed (`corrected`: only if at most 60 s earlier)."""
    in_series = series(semantics)
    previous = F.lag(S.CURRENT_SPEED).over(in_series)
    if semantics == CORRECTED:
        gap = F.col(S.OBSERVED_AT) - F.lag(S.OBSERVED_AT).over(in_series)
        previous = F.when(gap <= PREVIOUS_ROW_MAX_GAP_SECONDS, previous)
    return rows.withColumn(S.PREVIOUS_SPEED, previous)


def with_speed_diff_indicator(rows: DataFrame) -> DataFrame:
    """Step 7: +1 for a jump of 20 km/h or more, -1 for a drop of 20 or more, else 0."""
    change = F.col(S.CURRENT_SPEED) - F.col(S.PREVIOUS_SPEED)
    indicator = F.when(change >= SPEED_JUMP, 1).when(change <= -SPEED_JUMP, -1).otherwise(0)
    return rows.withColumn(S.SPEED_DIFF, indicator.cast("int"))


def with_rolling_speeds(rows: DataFrame, semantics: str) -> DataFrame:
    """Steps 8 and 9: mean speed over the last 3 and 20 minutes (rows in `athena`)."""
    in_series = series(semantics)
    if semantics == ATHENA:
        short = in_series.rowsBetween(-SHORT_WINDOW_ROWS, Window.currentRow)
        long = in_series.rowsBetween(-LONG_WINDOW_ROWS, Window.currentRow)
    else:
        short = in_series.rangeBetween(-SHORT_WINDOW_SECONDS, Window.currentRow)
        long = in_series.rangeBetween(-LONG_WINDOW_SECONDS, Window.currentRow)
    return rows.withColumns({S.AVG_SPEED_3: F.avg(S.CURRENT_SPEED).over(short),
                             S.AVG_SPEED_20: F.avg(S.CURRENT_SPEED).over(long)})


def jam_indicator(average: Column, semantics: str) -> Column:
    """Step 10: 1 jam, 0 flowing, -1 unknown (NULL or implausible)."""
    if semantics == ATHENA:
        # BETWEEN bounds as the Athena query wrote them: 40.5 falls in neither band.
        band = F.when(average.between(0, JAM_MAX_SPEED), JAM).when(
            average.between(FREE_FLOW_MIN_SPEED_ATHENA, MAX_PLAUSIBLE_SPEED), FLOWING
        )
    else:
        band = F.when((average >= 0) & (average <= JAM_MAX_SPEED), JAM).when(
            (average > JAM_MAX_SPEED) & (average <= MAX_PLAUSIBLE_SPEED), FLOWING
        )
    return band.otherwise(UNKNOWN).cast("int")


def with_jam_indicators(rows: DataFrame, semantics: str) -> DataFrame:
    return rows.withColumns({S.JAM: jam_indicator(F.col(S.AVG_SPEED_3), semantics),
                             S.JAM_LONG: jam_indicator(F.col(S.AVG_SPEED_20), semantics)})


def with_event_hour_partitions(rows: DataFrame) -> DataFrame:
    """Step 11: year, month, day, hour of the measurement, in UTC (the session's zone)."""
    moment = F.timestamp_seconds(F.col(S.RECORD_TIMESTAMP))
    parts = {
        "year": F.year(moment),
        "month": F.month(moment),
        "day": F.dayofmonth(moment),
        "hour": F.hour(moment),
    }
    return rows.withColumns({name: part.cast("bigint") for name, part in parts.items()})


def filter_output_rows(
    rows: DataFrame, output_start: int, output_end: int, locations: tuple[int, ...] | None
) -> DataFrame:
    """The run's rows: measured in `[output_start, output_end)`, of the chosen locations."""
    observed = F.col(S.OBSERVED_AT)
    selected = (observed >= output_start) & (observed < output_end)
    if locations:
        selected = selected & F.col(S.LOCATION_ID).isin(list(locations))
    return rows.where(selected)


def to_curated(rows: DataFrame) -> DataFrame:
    """The curated table's columns and types, partition columns last."""
    rows = rows.withColumnRenamed(S.OBSERVED_AT, S.RECORD_TIMESTAMP)
    return with_event_hour_partitions(rows).select(
        *(F.col(f.name).cast(f.dataType) for f in S.CURATED_TABLE_SCHEMA.fields)
    )


def top_jam_locations(curated: DataFrame, count: int) -> DataFrame:
    """The `count` locations with the most jam minutes (`trafficjamindicator` = 1) among
    curated rows, most first, then by id: `uniqueid`, `jam_minutes`."""
    return (
        curated.where(F.col(S.JAM) == JAM)
        .groupBy(S.LOCATION_ID)
        .agg(F.count(F.lit(1)).alias("jam_minutes"))
        .orderBy(F.desc("jam_minutes"), S.LOCATION_ID)
        .limit(count)
    )
