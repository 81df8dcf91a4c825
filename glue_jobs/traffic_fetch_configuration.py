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
from traffic_glue.runtime.arguments import help_text
from traffic_glue.runtime.config import ArgumentError

PROGRAM = "traffic_fetch_configuration"
USAGE = "--configuration_url URL --configuration_folder (PATH | s3://bucket/prefix/) [--timeout_seconds N]"


def main(argv: list) -> int:
    if {"--help", "-h"} & set(argv[1:]):
        print(help_text(PROGRAM, USAGE, config_feed.FETCH_ARGUMENTS))
        return 0
    try:
        args = config_feed.parse_fetch_args(argv)
    except ArgumentError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    outcome = config_feed.fetch(args.url, args.folder, timeout=args.timeout_seconds)
    # A refusal goes to the error log (and is the failure's reason when nothing is left).
    print(f"{PROGRAM}: {outcome.message}", file=sys.stderr if outcome.status == config_feed.REFUSED else sys.stdout)
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
