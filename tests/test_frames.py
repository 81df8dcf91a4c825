"""Frames of the driver's rows (store/frames.py) against pyspark's own `createDataFrame`
of the same rows: the same frame, with no Python worker reading it."""

from __future__ import annotations

import ast
import datetime as dt
import math
import re
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

from traffic_glue.store import locations
from traffic_glue.store.frames import driver_frame

pytestmark = pytest.mark.spark

LANE = T.StructType([T.StructField("id", T.IntegerType()), T.StructField("name", T.StringType())])
SCHEMA = T.StructType([
    T.StructField("location_id", T.IntegerType(), False, metadata={"comment": "its id"}),
    T.StructField("since", T.LongType()),
    T.StructField("speed", T.DoubleType()),
    T.StructField("label", T.StringType()),
    T.StructField("open", T.BooleanType()),
    T.StructField("seen", T.TimestampType()),
    T.StructField("lanes", T.ArrayType(LANE)),
])
UTC = dt.timezone.utc
ROWS = [
    (2147483647, -2**62, 0.1 + 0.2, 'A14 km 94.7 (Parking Kruibeke) "é" \u2192 \\', True,
     dt.datetime(2020, 3, 29, 1, 59, 59, 999999, tzinfo=UTC), [(957, "H019L57"), (960, None)]),
    (-2147483648, 2**62, float("nan"), "", False, dt.datetime(1970, 1, 1, tzinfo=UTC), []),
    (0, None, float("-inf"), None, None, None, None),
    (1, 0, 1e-300, "\n\t", True, dt.datetime(2020, 10, 25, 1, 0, tzinfo=UTC), [None]),
]


def _python_rdds(frame) -> list[str]:
    """The Python RDDs (read by Python workers) in the lineage of the frame's rows."""
    return re.findall(r"PythonRDD\[\d+\]", frame._jdf.queryExecution().toRdd().toDebugString())


def test_the_rows_and_schema_are_pysparks(spark):
    ours = driver_frame(spark, ROWS, SCHEMA)
    theirs = spark.createDataFrame(ROWS, SCHEMA)
    assert_df_equality(ours, theirs, allow_nan_equality=True)
    assert ours.schema == SCHEMA  # nullability and the columns' comments too
    assert ours.rdd.getNumPartitions() == 1
    first, second, third, _ = ours.collect()
    assert first.speed == 0.30000000000000004 and math.isnan(second.speed)  # every bit kept
    assert first.seen == dt.datetime(2020, 3, 29, 1, 59, 59, 999999)  # microseconds (the session is UTC)
    assert (third.since, third.label, third.lanes) == (None, None, None)


def test_no_python_worker_reads_the_rows(spark):
    """The frame's RDDs are the JVM's alone; pyspark's own frame of the same rows passes
    them through Python workers (`PythonRDD`) first."""
    assert len(_python_rdds(spark.createDataFrame(ROWS, SCHEMA))) == 1
    assert _python_rdds(driver_frame(spark, ROWS, SCHEMA)) == []


def test_no_rows_give_an_empty_frame_of_the_schema(spark):
    empty = driver_frame(spark, [], SCHEMA)
    assert empty.count() == 0 and empty.schema == SCHEMA


@pytest.mark.parametrize("row", [
    (None, 0, 0.0, "", True, None, []),  # NULL in a column that has none
    ("957", 0, 0.0, "", True, None, []),
    (1, 0, "fast", "", True, None, []),
    (2**31, 0, 0.0, "", True, None, []),
    (1, 0, 0.0, "", True, "2020-04-07", []),
    (1, 0, 0.0, "", True, None, [("957", "H019L57")]),
    (1, 0, 0.0, "", True, None),  # a column short
])
def test_a_row_that_does_not_fit_the_schema_is_refused_as_pyspark_refuses_it(spark, row):
    with pytest.raises((TypeError, ValueError)) as theirs:
        spark.createDataFrame([row], SCHEMA)
    with pytest.raises(type(theirs.value)) as ours:
        driver_frame(spark, [ROWS[0], row], SCHEMA)
    assert str(ours.value) == str(theirs.value)


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
    assert _python_rdds(frame) == []


def test_the_jobs_make_their_frames_of_driver_rows_here():
    """No module of the package calls `createDataFrame` (a Python worker per task that
    reads its frame) but through `driver_frame`."""
    package = Path(__file__).resolve().parents[1] / "glue_jobs" / "traffic_glue"
    callers = [
        f"{path.relative_to(package).as_posix()}:{node.lineno}"
        for path in sorted(package.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "createDataFrame"
    ]
    assert callers == []


def test_the_tests_frames_of_ddl_text_are_pysparks(spark):
    """tests/factories.frame, which the DataFrame tests make their inputs with, takes a
    schema as DDL text too."""
    from tests.factories import frame

    rows = [(1, "a", [2.5, None]), (None, None, None)]
    ddl = "k int, name string, speeds array<double>"
    assert_df_equality(frame(spark, rows, ddl), spark.createDataFrame(rows, ddl))
