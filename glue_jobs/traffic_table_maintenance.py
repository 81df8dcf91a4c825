"""AWS Glue job: expire old snapshots of the Iceberg tables (the curated table, the
locations table beside it, the daily summary) and delete the files no snapshot needs
any more (traffic_glue.jobs.maintenance.expire).

Runs weekly on Glue (workflows/traffic_workflow.yaml, MaintenanceSchedule) and locally
against the embedded catalog:

    python glue_jobs/traffic_table_maintenance.py --JOB_NAME local \
        --target_table traffic.traffic_minutes,traffic.locations,traffic.daily_summary --retention_days 7

Prints what it removed as one JSON line per table. Exit codes: 0 done, 1 the table is missing or
not an Iceberg table, 2 a bad argument.
"""

from __future__ import annotations

import json
import sys

from traffic_glue.store import catalog
from traffic_glue.runtime import glue
from traffic_glue.jobs import maintenance
from traffic_glue.runtime.config import ArgumentError, parse_maintenance_args

PROGRAM = "traffic_table_maintenance"
ICEBERG_PROVIDER = "iceberg"


def main(argv: list[str]) -> int:
    try:
        args = parse_maintenance_args(argv)
    except ArgumentError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    runtime = glue.start_job(args.job_name, argv, catalog_dir=args.catalog_dir)
    tables = []
    for name in args.target_tables:  # every table checked before any is changed
        try:
            table = catalog.describe(runtime.spark, name)
        except catalog.CatalogError as error:
            print(f"{PROGRAM}: error: {error}", file=sys.stderr)
            return 1
        if table.provider != ICEBERG_PROVIDER:
            print(
                f"{PROGRAM}: error: table {name} is not an Iceberg table "
                f"(provider {table.provider or 'unknown'}): nothing to expire",
                file=sys.stderr,
            )
            return 1
        tables.append(table)
    for name, table in zip(args.target_tables, tables):
        result = maintenance.expire(runtime.spark, name, table.location, args.retention_days)
        print(json.dumps({"table": name, **result}, sort_keys=True))
    runtime.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
