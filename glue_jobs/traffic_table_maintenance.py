"""AWS Glue job: expire old snapshots of the Iceberg tables (the curated table, the
locations table beside it, the daily summary) and delete the files no snapshot needs
any more (traffic_glue.jobs.maintenance).

Runs weekly on Glue (workflows/traffic_workflow.yaml, MaintenanceSchedule) and locally
against the embedded catalog:

    python glue_jobs/traffic_table_maintenance.py --JOB_NAME local \
        --target_table traffic.traffic_minutes,traffic.locations,traffic.daily_summary --retention_days 7

Prints what it removed as one JSON line per table. Exit codes: 0 done, 1 a table is missing or
not an Iceberg table (none is changed), 2 a bad argument.
"""

import sys

from traffic_glue.jobs import maintenance
from traffic_glue.runtime import frame


def main(argv: list[str]) -> int:
    return frame.main(maintenance.SPEC, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
