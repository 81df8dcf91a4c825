"""Inline test rows: typed readings and raw Firehose folders, written out by hand."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import types as T

from traffic_glue import schema as S
from traffic_glue.statuses import READING_STATUS
from traffic_glue.validation import READING_COLUMNS

# 2020-04-07 00:00:00 UTC: a Tuesday, in Belgian summer time (+02:00).
DAY = dt.date(2020, 4, 7)
T0 = 1586217600

READING_SCHEMA = T.StructType(
    [
        T.StructField(
            name,
            T.LongType()
            if name == S.OBSERVED_AT
            else T.TimestampType()
            if name == S.MODIFIED_AT
            else T.IntegerType(),
        )
        for name in READING_COLUMNS
    ]
    + [T.StructField(READING_STATUS, T.IntegerType())]
)


def reading(lane, unit, t, counts=(1, 0, 0, 0), speeds=(100, 0, 0, 0), defect=0, occupancy=5,
            modified=None, status=None) -> tuple:
    """A typed reading: `counts`/`speeds` are classes 2..5; `status` as validation gives it."""
    modified_at = dt.datetime.fromisoformat(modified) if modified else None
    return (lane, unit, t, modified_at, defect, occupancy, *counts, *speeds,
            None if status is None else int(status))


def readings_df(spark, rows):
    return spark.createDataFrame(rows, READING_SCHEMA)


_ARROW = {"int": pa.int32(), "bigint": pa.int64(), "string": pa.string()}
RAW_ARROW_SCHEMA = pa.schema(
    [pa.field(f.name, _ARROW[f.dataType.simpleString()]) for f in S.RAW_SCHEMA.fields]
)


def raw_reading(lane, unit, t, counts=(1, 0, 0, 0), speeds=(100, 0, 0, 0), defect=0,
                occupancy=5, modified="2020-04-07T02:00:30+02:00") -> dict:
    """A raw reading as the Parquet landing types it (class 1 present but ignored)."""
    row = {name: None for name in S.RAW_COLUMNS}
    row.update({
        S.LANE_NAME: f"H{unit:03d}L{lane % 100:02d}", S.LANE_ID: lane, S.UNIT_ID: unit,
        S.OBSERVED_AT: t, S.MODIFIED_AT: modified, S.PUBLISHED: 1, S.AVAILABLE: 1,
        S.DEFECT: defect, S.VALID: 0, S.OCCUPANCY: occupancy, S.AVAILABILITY: 100, S.UNREST: 0,
        S.intensity(1): 0, S.arithmetic_speed(1): 0, S.harmonic_speed(1): 252,
    })
    for k, count, speed in zip(S.COUNTED_CLASSES, counts, speeds):
        row[S.intensity(k)] = count
        row[S.arithmetic_speed(k)] = speed
        row[S.harmonic_speed(k)] = speed if count else 252
    return row


def hour_folder(root: Path, arrival_epoch: int) -> Path:
    moment = dt.datetime.fromtimestamp(arrival_epoch, dt.timezone.utc)
    return root / moment.strftime("year=%Y/month=%m/day=%d/hour=%H")


def land_parquet(root: Path, rows: list[dict], arrival_delay: int = 90, name="part-0.parquet",
                 schema: pa.Schema = RAW_ARROW_SCHEMA) -> list[Path]:
    """Write rows into the processing-hour folders they arrive in (event + delay)."""
    by_folder: dict[Path, list[dict]] = {}
    for row in rows:
        by_folder.setdefault(hour_folder(root, row[S.OBSERVED_AT] + arrival_delay), []).append(row)
    written = []
    for folder, folder_rows in by_folder.items():
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(folder_rows, schema=schema), folder / name)
        written.append(folder / name)
    return written


def land_json(root: Path, rows: list[dict], arrival_epoch: int, name="part-0.json") -> Path:
    folder = hour_folder(root, arrival_epoch)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
