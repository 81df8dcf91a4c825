"""The one `main` every job script runs: Glue's start, parsing, the run, the report,
errors to exit statuses.

A job is a `JobSpec`: its name, its arguments (`arguments.Arguments`), how its days are
resolved, its run, the errors it expects. `main(spec, argv)`:

- `--help`/`-h`: the help text, exit status 0;
- a bad argument (`ArgumentError`): `<program>: error: <message>` on standard error,
  exit status 2, before Spark starts;
- the run's days from the workflow run, where the job asks (`spec.resolve`);
- the runtime: Glue's session and Job on Glue, a local session elsewhere (none for a
  Python shell job, `spark=False`);
- the run; an error the job expects: one line `<program>: error: <message>`, exit
  status 1; an error of the arguments found only by the run: the same line, exit 2;
  data that failed a check the run makes before it commits (the transform's blocking
  data quality rules): the same line, exit 3 (`CHECK_FAILED`); a run that ran out of
  memory (`runtime.memory`: Spark's out-of-memory errors, or its JVM gone): the same line
  saying what ran out and what to give the next run, exit 4 (`memory.OUT_OF_MEMORY`);
- its outcome's summary printed; when it did its work (exit status 0), the job's
  `after_success` (the transform tells the workflow run its days) and Glue's job commit.

Any other error goes on with its traceback: Glue marks the run failed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from traffic_glue.runtime import memory
from traffic_glue.runtime.arguments import ArgumentError, Arguments, help_text, plain_values

# The exit status of a run whose data failed a check it makes before it commits: not 1
# (an expected error) nor 2 (an argument), so a caller tells bad data from a bad run.
CHECK_FAILED = 3


class Outcome(Protocol):
    """What a job's run returns: a report, or another account of what it did."""

    @property
    def exit_status(self) -> int: ...  # 0: the job did its work

    @property
    def error_log(self) -> bool: ...  # the summary goes to standard error

    def summary(self) -> str: ...


@dataclass(frozen=True)
class JobSpec:
    program: str  # as the error lines name it: the script's name without .py
    usage: str  # --help's usage line after the program
    arguments: Arguments
    run: Callable[[Any, Any], Outcome]  # (spark or None, config)
    resolve: Callable[[Any], Any] | None = None  # config -> config with its days resolved
    expected_errors: tuple[type[BaseException], ...] = ()  # one line, exit status 1
    argument_errors: tuple[type[BaseException], ...] = ()  # found by the run: exit status 2
    check_errors: tuple[type[BaseException], ...] = ()  # the data failed a check: CHECK_FAILED
    after_success: Callable[[Any, Outcome], None] | None = None  # (config, outcome)
    spark: bool = True  # False: a Glue Python shell job, no Spark and no Glue Job
    start: Callable[[Any, list[str]], Any] | None = None  # (config, argv) -> Runtime; glue.start


def main(spec: JobSpec, argv: list[str]) -> int:
    """Run the job `spec` with `sys.argv`; its exit status."""
    if {"--help", "-h"} & set(argv[1:]):
        print(help_text(spec.program, spec.usage, spec.arguments))
        return 0
    glue = _glue() if spec.spark else None
    try:
        config = spec.arguments.parse(argv, glue.resolved_options if glue else plain_values)
        if spec.resolve is not None:
            config = spec.resolve(config)
    except ArgumentError as error:
        return _error(spec, error, 2)
    runtime = (spec.start or glue.start)(config, argv) if glue else None
    try:
        with memory.watch(runtime, days="end_date" in spec.arguments.names):
            outcome = spec.run(runtime.spark if runtime else None, config)
    except memory.OutOfMemory as error:
        return _error(spec, error, memory.OUT_OF_MEMORY)
    except (ArgumentError, *spec.argument_errors) as error:
        return _error(spec, error, 2)
    except spec.check_errors as error:
        return _error(spec, error, CHECK_FAILED)
    except spec.expected_errors as error:
        return _error(spec, error, 1)
    print(outcome.summary(), file=sys.stderr if outcome.error_log else sys.stdout)
    if outcome.exit_status == 0:
        if spec.after_success is not None:
            spec.after_success(config, outcome)
        if runtime is not None:
            runtime.commit()
    return outcome.exit_status


def _glue():
    # Imported only for a Spark job: a Python shell job has neither Spark nor awsglue.
    from traffic_glue.runtime import glue

    return glue


def _error(spec: JobSpec, error: BaseException, status: int) -> int:
    print(f"{spec.program}: error: {error}", file=sys.stderr)
    return status
