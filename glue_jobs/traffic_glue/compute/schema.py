"""Column names and types of the raw and curated tables, defined once.

Every other module refers to columns through the names here; see
`docs/SEMANTICS.md` ("Raw input", "The curated table") for what each column means.
"""

from pyspark.sql import types as T

# --- raw input (Firehose landing) -------------------------------------------

LANE_ID = "unieke_id"
LANE_NAME = "beschrijvende_id"
UNIT_ID = "lve_nr"
OBSERVED_AT = "tijd_waarneming"
MODIFIED_AT = "tijd_laatst_gewijzigd"
PUBLISHED = "actueel_publicatie"
AVAILABLE = "beschikbaar"
DEFECT = "defect"
VALID = "geldig"
OCCUPANCY = "rekendata_bezettingsgraad"
AVAILABILITY = "rekendata_beschikbaarheidsgraad"
UNREST = "rekendata_onrustigheid"

ALL_CLASSES = (1, 2, 3, 4, 5)
# Class 1 (motorbikes) is unreliable and ignored by the computation.
COUNTED_CLASSES = (2, 3, 4, 5)


def intensity(k: int) -> str:
    return f"verkeersintensiteit_klasse{k}"


def arithmetic_speed(k: int) -> str:
    return f"voertuigsnelheid_rekenkundig_klasse{k}"


def harmonic_speed(k: int) -> str:
    return f"voertuigsnelheid_harmonisch_klasse{k}"


def _class_fields(k: int) -> list:
    return [
        T.StructField(intensity(k), T.IntegerType()),
        T.StructField(arithmetic_speed(k), T.IntegerType()),
        T.StructField(harmonic_speed(k), T.IntegerType()),
    ]


# The raw table as docs/SEMANTICS.md types it (Parquet with record conversion on).
RAW_SCHEMA = T.StructType(
    [
        T.StructField(LANE_NAME, T.StringType()),
        T.StructField(LANE_ID, T.IntegerType()),
        T.StructField(UNIT_ID, T.IntegerType()),
        T.StructField(OBSERVED_AT, T.LongType()),
        T.StructField(MODIFIED_AT, T.StringType()),
        T.StructField(PUBLISHED, T.IntegerType()),
        T.StructField(AVAILABLE, T.IntegerType()),
        T.StructField(DEFECT, T.IntegerType()),
        T.StructField(VALID, T.IntegerType()),
    ]
    + [field for k in ALL_CLASSES for field in _class_fields(k)]
    + [
        T.StructField(OCCUPANCY, T.IntegerType()),
        T.StructField(AVAILABILITY, T.IntegerType()),
        T.StructField(UNREST, T.IntegerType()),
    ]
)

RAW_COLUMNS = tuple(RAW_SCHEMA.fieldNames())

# Columns without which a reading cannot be computed (in either mode). A raw file
# missing one of them stops the job; other columns may come and go.
ESSENTIAL_COLUMNS = (
    LANE_ID,
    UNIT_ID,
    OBSERVED_AT,
    DEFECT,
    OCCUPANCY,
    *(intensity(k) for k in COUNTED_CLASSES),
    *(arithmetic_speed(k) for k in COUNTED_CLASSES),
)
# Needed only where duplicates are resolved (the `corrected` mode).
ESSENTIAL_FOR_DEDUPLICATION = (MODIFIED_AT,)

# Hive-style folders of the processing (arrival) hour: year=YYYY/month=MM/day=DD/hour=HH
PROCESSING_PARTITIONS = ("year", "month", "day", "hour")

# --- curated output -----------------------------------------------------------

LOCATION_ID = "uniqueid"
RECORD_TIMESTAMP = "recordtimestamp"
CURRENT_SPEED = "currentspeed"
# The Athena query's name, kept for its readers: it is no occupancy rate ("bezettingsgraad")
# but the rounded mean number of vehicles per lane (docs/SEMANTICS.md, "Numbers").
MEAN_VEHICLES_PER_LANE = "bezettingsgraad"
PREVIOUS_SPEED = "previousspeed"
JAM = "trafficjamindicator"
JAM_LONG = "trafficjamindicatorlong"
SPEED_DIFF = "speeddiffindicator"
AVG_SPEED_3 = "avgspeed3minutes"
AVG_SPEED_20 = "avgspeed20minutes"


def class_total(k: int) -> str:
    return f"trafficintensityclass{k}"


CURATED_SCHEMA = T.StructType(
    [
        T.StructField(LOCATION_ID, T.IntegerType()),
        T.StructField(RECORD_TIMESTAMP, T.LongType()),
        T.StructField(CURRENT_SPEED, T.DoubleType()),
        T.StructField(MEAN_VEHICLES_PER_LANE, T.IntegerType()),
        T.StructField(PREVIOUS_SPEED, T.DoubleType()),
        T.StructField(JAM, T.IntegerType()),
        T.StructField(JAM_LONG, T.IntegerType()),
    ]
    + [T.StructField(class_total(k), T.IntegerType()) for k in COUNTED_CLASSES]
    + [
        T.StructField(SPEED_DIFF, T.IntegerType()),
        T.StructField(AVG_SPEED_3, T.DoubleType()),
        T.StructField(AVG_SPEED_20, T.DoubleType()),
    ]
)
CURATED_COLUMNS = tuple(CURATED_SCHEMA.fieldNames())

# Event-time hour partitions of the curated table (UTC), bigint in the catalog.
EVENT_PARTITIONS = ("year", "month", "day", "hour")
EVENT_PARTITION_SCHEMA = T.StructType(
    [T.StructField(name, T.LongType()) for name in EVENT_PARTITIONS]
)
CURATED_TABLE_SCHEMA = T.StructType(CURATED_SCHEMA.fields + EVENT_PARTITION_SCHEMA.fields)
