"""Query the local catalog the workflow and the job use, as Athena would query Glue's.

    python -m workflows.local_sql "SELECT year, month, day, count(*) FROM traffic.traffic_minutes GROUP BY 1, 2, 3"

Embedded Derby lets one process at a time open the catalog: not while a workflow runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workflows.local_runner import default_catalog_dir, describe_catalog_error

DEFAULT_LIMIT = 50


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflows.local_sql", description="Run a SQL query on the local catalog.")
    parser.add_argument("query", help='e.g. "SHOW PARTITIONS traffic.raw_measurements"')
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help=f"rows to show (default {DEFAULT_LIMIT})")
    parser.add_argument("--catalog-dir", default=None,
                        help="local catalog (default $TRAFFIC_GLUE_CATALOG_DIR or .local/catalog)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    catalog_dir = Path(args.catalog_dir or default_catalog_dir()).resolve()
    if not (catalog_dir / "metastore_db").is_dir():
        print(f"local_sql: error: no local catalog in {catalog_dir}: run "
              "python -m workflows.local_runner first (or give --catalog-dir)", file=sys.stderr)
        return 2
    from traffic_glue.session import local_spark_session

    spark = local_spark_session(app_name="traffic-glue-sql", catalog_dir=str(catalog_dir))
    try:
        spark.sql(args.query).show(args.limit, truncate=False)
    except Exception as error:  # a bad query or a locked catalog: one line, not a JVM trace
        print(f"local_sql: error: {describe_catalog_error(error, str(catalog_dir))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
