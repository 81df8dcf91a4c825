"""Column names and types of the raw and curated tables, defined once, and the
comment of each curated column (`column`).

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


# Spark's metadata key for a column's comment: `DESCRIBE TABLE` shows it, DDL writes it,
# Iceberg keeps it as the field's doc and the Glue catalog as the column's comment.
COMMENT = "comment"
# Glue's limit on a column's comment (bytes, one line).
COMMENT_MAX_BYTES = 255


def column(name: str, data_type: T.DataType, comment: str) -> T.StructField:
    """A column of a table the jobs create, with its comment."""
    return T.StructField(name, data_type, metadata={COMMENT: comment})


_JAM_BANDS = (
    "1 jam (0 to 40 km/h), 0 flowing (above 40 to 250 km/h; athena: 41 to 250), "
    "-1 unknown (NULL or outside these bands)"
)

CURATED_SCHEMA = T.StructType(
    [
        column(LOCATION_ID, T.IntegerType(),
               "Location id. corrected: one carriageway at one measurement point of the configuration "
               "(-unieke_id: a lane not in it), named in the locations table; athena: the largest kept "
               "unieke_id of the lve_nr that minute"),
        column(RECORD_TIMESTAMP, T.LongType(), "Time of the measurement (tijd_waarneming), epoch seconds UTC"),
        column(CURRENT_SPEED, T.DoubleType(),
               "Mean lane speed of the location in the minute, km/h; NULL when no vehicle of class 2..5 passed"),
        column(MEAN_VEHICLES_PER_LANE, T.IntegerType(),
               "Not an occupancy: vehicles of classes 2..5 per lane in the minute, mean over the location's "
               "lanes, rounded half away from zero"),
        column(PREVIOUS_SPEED, T.DoubleType(),
               "currentspeed of the location's previous row, km/h; corrected: only if it is at most 60 s "
               "earlier, else NULL"),
        column(JAM, T.IntegerType(), f"Jam indicator from avgspeed3minutes: {_JAM_BANDS}"),
        column(JAM_LONG, T.IntegerType(), f"Jam indicator from avgspeed20minutes: {_JAM_BANDS}"),
    ]
    + [
        column(class_total(k), T.IntegerType(), f"Vehicles of class {k} in the minute, summed over the location's lanes")
        for k in COUNTED_CLASSES
    ]
    + [
        column(SPEED_DIFF, T.IntegerType(),
               "1 if currentspeed - previousspeed >= 20 km/h, -1 if <= -20 km/h, else 0 (also when either "
               "is NULL)"),
        column(AVG_SPEED_3, T.DoubleType(),
               "Mean currentspeed over [t-120 s, t] (the last 3 minutes), km/h, NULLs left out; athena: over "
               "this row and the 2 previous rows"),
        column(AVG_SPEED_20, T.DoubleType(),
               "Mean currentspeed over [t-1140 s, t] (the last 20 minutes), km/h, NULLs left out; athena: over "
               "this row and the 19 previous rows"),
    ]
)
CURATED_COLUMNS = tuple(CURATED_SCHEMA.fieldNames())

# Event-time hour partitions of the curated table (UTC), bigint in the catalog.
EVENT_PARTITION_SCHEMA = T.StructType(
    [
        column("year", T.LongType(), "Partition: the UTC year of recordtimestamp"),
        column("month", T.LongType(), "Partition: the UTC month of recordtimestamp, 1..12"),
        column("day", T.LongType(), "Partition: the UTC day of the month of recordtimestamp, 1..31"),
        column("hour", T.LongType(), "Partition: the UTC hour of recordtimestamp, 0..23"),
    ]
)
EVENT_PARTITIONS = tuple(EVENT_PARTITION_SCHEMA.fieldNames())
CURATED_TABLE_SCHEMA = T.StructType(CURATED_SCHEMA.fields + EVENT_PARTITION_SCHEMA.fields)
