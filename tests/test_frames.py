"""Frames of the driver's rows, read in the JVM (store/frames.py), against pyspark's own
`createDataFrame` of the same rows."""

from __future__ import annotations

import math

import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

from traffic_glue.store import locations
from traffic_glue.store.frames import driver_frame

pytestmark = pytest.mark.spark

LANE = T.StructType([T.StructField("id", T.IntegerType()), T.StructField("name", T.StringType())])
SCHEMA = T.StructType([
    T.StructField("location_id", T.IntegerType(), metadata={"comment": "its id"}),
    T.StructField("since", T.LongType()),
    T.StructField("speed", T.DoubleType()),
    T.StructField("label", T.StringType()),
    T.StructField("open", T.BooleanType()),
    T.StructField("lanes", T.ArrayType(LANE)),
])
ROWS = [
    (2147483647, -2**62, 0.1 + 0.2, 'A14 km 94.7 (Parking Kruibeke) "é" \u2192 \\', True,
     [(957, "H019L57"), (960, None)]),
    (-2147483648, 2**62, float("nan"), "", False, []),
    (0, None, float("-inf"), None, None, None),
    (None, 0, 1e-300, "\n\t", True, [None]),
]


def test_the_rows_and_schema_are_pysparks(spark):
    ours = driver_frame(spark, ROWS, SCHEMA)
    theirs = spark.createDataFrame(ROWS, SCHEMA)
    assert_df_equality(ours, theirs, allow_nan_equality=True, ignore_row_order=False)
    assert [f.metadata for f in ours.schema.fields] == [f.metadata for f in SCHEMA.fields]
    first, second, *_ = ours.collect()
    assert first.speed == 0.30000000000000004 and math.isnan(second.speed)  # every bit kept


def test_mappings_by_column_name_give_the_same_frame(spark):
    names = SCHEMA.fieldNames()
    as_dicts = [{**dict(zip(names, row)), "not_a_column": 1} for row in ROWS]
    as_dicts[0]["lanes"] = [{"name": "H019L57", "id": 957}, {"id": 960, "name": None}]
    assert_df_equality(driver_frame(spark, as_dicts, SCHEMA), driver_frame(spark, ROWS, SCHEMA),
                       allow_nan_equality=True)


def test_no_rows_give_an_empty_frame_of_the_schema(spark):
    empty = driver_frame(spark, [], SCHEMA)
    assert empty.count() == 0 and empty.schema == SCHEMA


def test_the_locations_tables_rows_go_through_whole(spark):
    """The locations table's frame (nested lanes, epoch times turned into timestamps)."""
    rows = [{**{f.name: None for f in locations.LOCATIONS_SCHEMA.fields},
             locations.LOCATION_ID: 1780434701, locations.LABEL: "A14 km 94.7 (Parking Kruibeke), direction 2",
             "direction": 2, "kilometre_point": 94.692, "latitude": 51.1764,
             locations.LANES: [{"unieke_id": 957, "beschrijvende_id": "H019L57", "lane_type": "R11", "lve_nr": 19}],
             locations.VALID_FROM: 1586347200, locations.CONFIGURATION: "miv-config-2020-04-08T120000Z.xml.gz"}]
    frame = locations.as_frame(spark, rows)
    assert frame.schema == locations.LOCATIONS_SCHEMA
    assert locations.as_rows(frame) == [{**rows[0], locations.VALID_TO: None}]


@pytest.mark.parametrize("value", ["957", 2**31, 1.5, True])
def test_a_value_that_does_not_fit_its_column_fails_instead_of_becoming_null(spark, value):
    frame = driver_frame(spark, [(value, None, None, None, None, None)], SCHEMA)
    with pytest.raises(Exception, match="MALFORMED_RECORD_IN_PARSING"):
        frame.collect()


def test_a_type_json_does_not_carry_exactly_is_refused_naming_the_column(spark):
    nested = T.StructType([T.StructField("lanes", T.ArrayType(T.StructType([
        T.StructField("seen", T.TimestampType())])))])
    with pytest.raises(TypeError, match=r"column lanes\[\]\.seen is timestamp"):
        driver_frame(spark, [], nested)


def test_no_python_worker_reads_the_rows(spark):
    """The frame's RDDs are the JVM's alone; pyspark's own frame of the same rows is read
    by Python workers (`PythonRDD`)."""
    def lineage(frame) -> str:
        return frame._jdf.queryExecution().toRdd().toDebugString()

    assert "PythonRDD" in lineage(spark.createDataFrame(ROWS, SCHEMA))
    assert "PythonRDD" not in lineage(driver_frame(spark, ROWS, SCHEMA))
