"""Inline test rows: typed readings and raw Firehose folders, written out by hand."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import types as T
from pyspark.sql.types import _parse_datatype_string

from traffic_glue.compute import schema as S
from traffic_glue.compute.statuses import READING_STATUS
from traffic_glue.compute.validation import READING_COLUMNS
from traffic_glue.store.frames import driver_frame

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


def frame(spark, rows, schema):
    """`rows` as the DataFrame `spark.createDataFrame(rows, schema)` makes (`schema` a
    StructType or DDL text such as "k int, name string"), made as the job makes its frames
    of driver rows (`frames.driver_frame`, held equal to pyspark's by test_frames): no
    Python worker reads it, which took a quarter of the DataFrame tests' time."""
    return driver_frame(spark, rows, _parse_datatype_string(schema) if isinstance(schema, str) else schema)


def reading(lane, unit, t, counts=(1, 0, 0, 0), speeds=(100, 0, 0, 0), defect=0, occupancy=5,
            modified=None, status=None) -> tuple:
    """A typed reading: `counts`/`speeds` are classes 2..5; `status` as validation gives it."""
    modified_at = dt.datetime.fromisoformat(modified) if modified else None
    return (lane, unit, t, modified_at, defect, occupancy, *counts, *speeds,
            None if status is None else int(status))


def readings_df(spark, rows):
    return frame(spark, rows, READING_SCHEMA)


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


# --- lanes that come and go, and one that moves (tests/test_job.py, tests/test_parity.py) ---

NOON_8TH = T0 + 86400 + 12 * 3600  # 2020-04-08 12:00Z


def minutes(lane: int, unit: int, start: int, end: int) -> list[dict]:
    """A reading a minute in [start, end] (epoch seconds), speeds varying by the minute."""
    return [raw_reading(lane, unit, t, counts=(2, 1, 0, 0), speeds=(60 + t // 60 % 37, 50, 0, 0))
            for t in range(start, end + 1, 60)]


def moving_lane_readings() -> list[dict]:
    """Lanes that come and go, 2020-04-07 and 08, as the readings' lve_nr tell it:

    - lve 18: lane 50 on the 7th only (06:00-06:29, 22:00-23:59), lane 957 on the 8th
      only, until noon (an id made of the largest lane read was 957 in a two-day run
      and 50 in a run of the 7th alone);
    - at noon on the 8th lane 957 moves to lve 19: it reports for both at 12:00 (the
      same reading twice, under two lve_nr), then for 19 until 13:00;
    - lve 19: lane 960 on both days, 11:00-14:00.
    """
    day_8 = T0 + 86400
    return (
        minutes(50, 18, T0 + 6 * 3600, T0 + 6 * 3600 + 29 * 60)
        + minutes(50, 18, T0 + 22 * 3600, day_8 - 60)
        + minutes(957, 18, day_8, NOON_8TH)
        + minutes(957, 19, NOON_8TH, NOON_8TH + 3600)
        + minutes(960, 19, T0 + 11 * 3600, T0 + 14 * 3600)
        + minutes(960, 19, day_8 + 11 * 3600, day_8 + 14 * 3600)
    )


def curated_row(location, t, speed=80.0, jam=0, counts=(1, 0, 0, 0), at=None, **values) -> tuple:
    """A curated row in the table's column order; its partition is `t`'s UTC hour (or
    `at`, a datetime, where `t` is NULL). `values` overrides columns by name."""
    row = {
        S.LOCATION_ID: location, S.RECORD_TIMESTAMP: t, S.CURRENT_SPEED: speed,
        S.MEAN_VEHICLES_PER_LANE: sum(counts), S.PREVIOUS_SPEED: speed, S.JAM: jam, S.JAM_LONG: jam,
        **{S.class_total(k): n for k, n in zip(S.COUNTED_CLASSES, counts)},
        S.SPEED_DIFF: 0, S.AVG_SPEED_3: speed, S.AVG_SPEED_20: speed,
    }
    row.update(values)
    moment = at or dt.datetime.fromtimestamp(t, dt.timezone.utc)
    row.update(year=moment.year, month=moment.month, day=moment.day, hour=moment.hour)
    return tuple(row[c] for c in S.CURATED_TABLE_SCHEMA.fieldNames())


def curated_df(spark, rows):
    """Rows of `curated_row` as a DataFrame of the curated table's schema."""
    return frame(spark, rows, S.CURATED_TABLE_SCHEMA)
