"""AWS Glue job: raw traffic readings to the curated per-location minute table.

Runs unchanged as a Glue 5.1 job and locally on plain PySpark:

    python glue_jobs/traffic_transform.py --JOB_NAME local --source_path data/raw \
        --target_path data/curated --start_date 2020-04-07 --end_date 2020-04-07

See README.md (or --help) for every argument. All logic lives in the `traffic_glue`
package: the job in `traffic_glue.jobs.transform`, how every job runs in
`traffic_glue.runtime.frame`.
"""

import sys

from traffic_glue.jobs import transform
from traffic_glue.runtime import frame


def main(argv: list[str]) -> int:
    return frame.main(transform.SPEC, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
