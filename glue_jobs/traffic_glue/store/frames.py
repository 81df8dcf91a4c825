"""DataFrames of rows the driver holds: the configuration's lane map, the locations
table's rows, the summary's location names.

`spark.createDataFrame(rows, schema)` pickles the rows into a Python RDD: every task that
reads it has a Python worker process (started, or reused) turn them into the JVM's rows,
on every executor that runs one, each time the frame is read. `driver_frame` hands them
to the JVM as one JSON document instead, which Spark's JSON reader parses in the JVM: no
Python worker takes part in a run: on Glue no executor starts Python for the job, and
locally no `pyspark.daemon` process starts (a tiny run's CPU, measured over ten warm runs
twice: 3.42-3.44 CPU-s before, 3.25-3.38 after).

The reader is strict (`FAILFAST`): a value that does not fit its column's type fails the
Spark job that reads it instead of becoming NULL. Its columns are nullable, whatever the
schema says: Spark's JSON reader makes them so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from traffic_glue.store import storage

# The types JSON carries exactly (a double as its shortest repr, NaN and infinities as
# Spark's reader reads them); times go as epoch seconds (`LongType`).
_SCALARS = (T.BooleanType, T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType,
            T.DoubleType, T.StringType)


def _check(data_type: T.DataType, where: str) -> None:
    if isinstance(data_type, T.StructType):
        for field in data_type.fields:
            _check(field.dataType, f"{where}.{field.name}" if where else field.name)
    elif isinstance(data_type, T.ArrayType):
        _check(data_type.elementType, f"{where}[]")
    elif not isinstance(data_type, _SCALARS):
        raise TypeError(f"driver_frame: column {where} is {data_type.simpleString()}: only numbers, "
                        "strings, booleans, structs and arrays of them go through JSON exactly")


def _plain(value, data_type: T.DataType):
    """`value` as JSON holds it: a struct (a tuple or Row in field order, or a mapping by
    field name) as an object, an array as a list."""
    if value is None:
        return None
    if isinstance(data_type, T.StructType):
        items = value if isinstance(value, Mapping) else dict(zip(data_type.fieldNames(), value))
        return {field.name: _plain(items.get(field.name), field.dataType) for field in data_type.fields}
    if isinstance(data_type, T.ArrayType):
        return [_plain(item, data_type.elementType) for item in value]
    return value


def driver_frame(spark: SparkSession, rows: Iterable[Sequence | Mapping], schema: T.StructType) -> DataFrame:
    """`rows` (tuples in the schema's order, or mappings by column name) as a DataFrame of
    `schema` (its columns' comments too), read in the JVM: one partition."""
    _check(schema, "")
    document = json.dumps([_plain(row, schema) for row in rows])
    jspark = spark._jsparkSession
    lines = storage.java_class(spark, "java.util.Collections").singletonList(document)
    dataset = jspark.createDataset(lines, storage.java_class(spark, "org.apache.spark.sql.Encoders").STRING())
    reader = jspark.read().schema(jspark.parseDataType(schema.json())).option("mode", "FAILFAST")
    return DataFrame(reader.json(dataset), spark)
