"""AWS Glue Python shell job: fetch the traffic centre's configuration feed into a
dated snapshot (traffic_glue.jobs.config_feed), before the transform reads it.

Runs as a Glue Python shell job (Python 3.9; no Spark) at the start of the workflow,
and locally:

    python glue_jobs/traffic_fetch_configuration.py \
        --configuration_url http://miv.opendata.belfla.be/miv/configuratie/xml \
        --configuration_folder data/configuration

Prints one line: the snapshot stored, or that the configuration is unchanged, or why
the response was refused and which snapshot stays in use. Exit codes: 0 a snapshot is
in use (new, unchanged, or the last good one after a refusal), 1 refused with no
snapshot to fall back on, 2 a bad argument.
"""

import sys

from traffic_glue.jobs import config_feed
from traffic_glue.runtime import frame


def main(argv: list) -> int:
    return frame.main(config_feed.SPEC, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
