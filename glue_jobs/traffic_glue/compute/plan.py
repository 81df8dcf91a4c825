"""How much work one task gets: the same whatever the run's range (issue 20).

A run knows how many readings it reads before any Spark job runs (the Parquet footers;
for JSON, an estimate from the files' bytes). From that, and the run's hours:

- **shuffle partitions** (the shuffles to the windows, and the hour layout's): at least
  the session's own setting (16 locally, Glue's on Glue), and one per `readings_per_task`
  readings: thirty days of the full network get 186 tasks of a million readings instead
  of 16 of twelve million, whose sort before the write ran out of a 2 GB driver's memory;
- **write tasks**: as many, but never more than the run's hour partitions. Each task
  writes whole hours, its rows sorted by hour, through Iceberg's clustered writer (one
  open file at a time: `fanout-enabled=false`), so neither a task's rows nor its open
  files grow with the range: a year of a small network (8,760 hours) no longer holds
  hundreds of open Parquet writers in each of 16 tasks.

On Glue the floor is the session's shuffle partitions and the rule is the same; the
cores only decide how many of the tasks run at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# About 150 MB of a task's rows in Spark's memory at the widest stage (the readings'
# columns and the window's state): two at a time fit a 2 GB local driver's execution
# memory, and a Glue G.1X worker's four.
READINGS_PER_TASK = 1_000_000
# A JSON reading's bytes, for a landing whose files carry no row count.
JSON_BYTES_PER_READING = 120
# The Spark setting that overrides READINGS_PER_TASK (a run's --conf; tests).
READINGS_PER_TASK_CONF = "spark.traffic_glue.readingsPerTask"


@dataclass(frozen=True)
class Plan:
    readings: int  # read by the run (or estimated)
    hours: int  # hour partitions the run can write
    readings_per_task: int
    shuffle_partitions: int
    write_tasks: int

    def as_dict(self) -> dict:
        return {"readings": self.readings, "hours": self.hours, "readings_per_task": self.readings_per_task,
                "shuffle_partitions": self.shuffle_partitions, "write_tasks": self.write_tasks}


def estimated_readings(rows: list[int | None], sizes: list[int]) -> int:
    """The readings of files with footers' `rows` (None: a JSON file) and `sizes` in bytes."""
    return sum(r if r is not None else math.ceil(s / JSON_BYTES_PER_READING) for r, s in zip(rows, sizes))


def plan_for(readings: int, hours: int, floor: int, readings_per_task: int = READINGS_PER_TASK) -> Plan:
    """The tasks of a run of `readings` over `hours` hour partitions; `floor`: the
    session's shuffle partitions."""
    if readings_per_task < 1:
        raise ValueError(f"readings per task must be at least 1: {readings_per_task}")
    by_size = math.ceil(readings / readings_per_task)
    shuffle = max(floor, by_size, 1)
    return Plan(readings=readings, hours=hours, readings_per_task=readings_per_task,
                shuffle_partitions=shuffle, write_tasks=max(1, min(hours, shuffle)))
