"""AWS Glue job: the curated minutes of some days to the daily summary table.

Runs as a Glue 5.1 job after the transform job in the workflow (a CONDITIONAL trigger
on its success), and locally on plain PySpark:

    python glue_jobs/traffic_daily_summary.py --JOB_NAME local --source_path data/curated \
        --target_path data/daily_summary --start_date 2020-04-06 --end_date 2020-04-07

In a workflow run it summarises exactly the days the transform replaced (the run
property `curated_days`). See README.md (or --help) for every argument; the logic lives
in `traffic_glue.compute.summary` (the computation), `traffic_glue.jobs.summary_job`
(the run) and `traffic_glue.jobs.daily_summary` (the job).
"""

import sys

from traffic_glue.jobs import daily_summary
from traffic_glue.runtime import frame


def main(argv: list[str]) -> int:
    return frame.main(daily_summary.SPEC, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
