"""The Spark floor: the job's `athena` computation with none of the job's checks.

    .venv/bin/python -m benchmarks.floor --raw DIR --out DIR --start-date D --end-date D

What Spark itself needs on this machine for a run's computation: the job's own plan
(`pipeline.curated_minutes`, then `publish.write_staged`, after the same scan filter on
the run's time range), fed the raw columns as they are instead of validated readings. It has no parsing or judging of readings, no counts,
no quarantine, no publish and no run report. `make bench` measures it beside the job
and DuckDB. The distance from the job to DuckDB then splits in two: what the job adds,
and what the engine costs. Right only for clean input, like the benchmark's, because it
judges nothing. Prints `{"rows": ..., "seconds": ...}` as its last line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "glue_jobs")]

from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

from tools import duckdb_reference  # noqa: E402
from traffic_glue import pipeline, publish  # noqa: E402
from traffic_glue import schema as S  # noqa: E402
from traffic_glue.config import ATHENA  # noqa: E402
from traffic_glue.session import local_spark_session  # noqa: E402
from traffic_glue.validation import READING_COLUMNS, REJECT_REASON, validated_by_run  # noqa: E402

LOOKBACK_MINUTES, LATE_HOURS = 60, 24  # the job's defaults


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--start-date", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--end-date", required=True, type=dt.date.fromisoformat)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    spark = local_spark_session("traffic-glue-floor")
    ranges = duckdb_reference.run_ranges(args.start_date, args.end_date, LOOKBACK_MINUTES, LATE_HOURS)
    files = duckdb_reference.raw_files(args.raw, ranges["first_folder_hour"], ranges["folders_end"])
    # The raw table's own types are the typed readings' (the landing's Parquet has them).
    columns = T.StructType([f for f in S.RAW_SCHEMA.fields if f.name in READING_COLUMNS])
    window = pipeline.RunWindow.for_days(args.start_date, args.end_date, LOOKBACK_MINUTES)
    raw = spark.read.schema(columns).parquet(*files)
    readings = (
        raw.where(validated_by_run(raw, window.context))  # the job's scan filter, as in the job
        .select(*READING_COLUMNS, F.lit(None).cast("string").alias(REJECT_REASON))
    )
    publish.write_staged(pipeline.curated_minutes(readings, ATHENA, window), str(args.out))
    rows = spark.read.parquet(str(args.out)).count()
    print(json.dumps({"rows": rows, "seconds": round(time.monotonic() - started, 3)}))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
