"""The Spark floor: the job's computation in one mode with none of the job's checks.

    .venv/bin/python -m benchmarks.floor --raw DIR --out DIR --start-date D --end-date D
        [--semantics athena|corrected] [--configuration-path FILE_OR_FOLDER]

What Spark itself needs on this machine for a run's computation: the job's own plan
(`sources.readings_to_validate`, the scan with its pruning; `pipeline.curated_minutes`;
the write's layout, `curated.layout_for_write`, into plain Parquet files), fed the raw columns as they are instead of validated readings.
It has no parsing or judging of readings, no counters, no quarantine, no locations
table, no commit and no run report.
`make bench` measures it beside the job and DuckDB, one floor per mode. The distance
from the job to DuckDB then splits in two: what the job adds, and what the engine
costs. Right only for clean input, like the benchmark's, because it judges nothing; in
`corrected` it orders duplicates by the modification time's text, not its instant
(the same order within one UTC offset). Prints `{"rows": ..., "seconds": ...}` last.
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

from pyspark.sql import types as T  # noqa: E402

from traffic_glue.compute import pipeline
from traffic_glue.store import configuration_files, curated as curated_table, sources
from traffic_glue.compute import schema as S
from traffic_glue.compute.modes import ATHENA, SEMANTICS  # noqa: E402
from traffic_glue.compute.run_range import RunRange  # noqa: E402
from traffic_glue.runtime.session import local_spark_session  # noqa: E402
from traffic_glue.compute.statuses import READING_STATUS, code  # noqa: E402
from traffic_glue.compute.validation import READING_COLUMNS  # noqa: E402

LOOKBACK_MINUTES, LATE_HOURS = 60, 24  # the job's defaults


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--start-date", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--end-date", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--semantics", choices=SEMANTICS, default=ATHENA)
    parser.add_argument("--configuration-path",
                        help="corrected: the configuration the job gets as --configuration_path")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    spark = local_spark_session("traffic-glue-floor")
    span = RunRange.for_days(args.start_date, args.end_date, LOOKBACK_MINUTES, LATE_HOURS)
    first, after = span.folder_hours
    files = sources.list_raw_files(spark, str(args.raw), first, after)
    # The landing's own types are the typed readings' (its Parquet has them), so the
    # raw columns go in as they are, every reading usable (status NULL, as validation
    # leaves a usable reading of the run's range; the scan filter drops the others).
    columns = T.StructType([f for f in S.RAW_SCHEMA.fields if f.name in READING_COLUMNS])
    raw = sources.RawInput(files=files, readings=spark.read.schema(columns).parquet(*(f.path for f in files)))
    readings = sources.readings_to_validate(raw, span).select(
        *READING_COLUMNS, code(None).alias(READING_STATUS)
    )
    lane_map = None
    if args.semantics != ATHENA and args.configuration_path:
        snapshots = configuration_files.read_configuration(spark, args.configuration_path, span)
        lane_map = configuration_files.configuration_lane_map(spark, snapshots)
    curated = pipeline.curated_minutes(readings, args.semantics, span, counted=False, lane_map=lane_map)
    (curated_table.layout_for_write(curated.rows).write.mode("overwrite").option("compression", "snappy")
     .partitionBy(*S.EVENT_PARTITIONS).parquet(str(args.out)))
    rows = spark.read.parquet(str(args.out)).count()
    print(json.dumps({"rows": rows, "seconds": round(time.monotonic() - started, 3)}))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
