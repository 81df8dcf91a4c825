"""What a run is doing, while it does it: one line as each phase starts and ends, and
a line at least every `heartbeat_seconds` while a phase lasts, saying where it is.

    traffic-glue [0:00] reading raw folders under data/raw: processing hours 2020-04-05 23:00 .. 2020-04-09 00:00 UTC
    traffic-glue [0:02] read 50 folders, 3,000 files, 8,641,212 readings (2.1 s)
    traffic-glue [0:02] computing and writing 2 days, 2020-04-06 .. 2020-04-07
    traffic-glue [0:32] still computing and writing (30 s): Spark stage 4, 9 of 16 tasks done
    ...

The lines go to standard output, as the summary does: on Glue, the job's CloudWatch
output log. They never hold a reading's values.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Callable, Iterator

HEARTBEAT_SECONDS = 30.0
PREFIX = "traffic-glue"


def clock_text(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from an hour on."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def spark_activity(spark) -> Callable[[], str]:
    """Where Spark is: the active stages and their tasks done (the status tracker's
    view, read on the driver; nothing is computed to find it)."""
    tracker = spark.sparkContext.statusTracker()

    def where() -> str:
        stages = [tracker.getStageInfo(s) for s in sorted(tracker.getActiveStageIds())]
        stages = [s for s in stages if s is not None]
        if not stages:
            return "between Spark stages"
        return "; ".join(
            f"Spark stage {s.stageId}, {s.numCompletedTasks} of {s.numTasks} tasks done"
            for s in stages
        )

    return where


class Progress:
    """Phases of a run, printed as they start and end, with a heartbeat in between."""

    def __init__(
        self,
        write: Callable[[str], None] | None = None,
        heartbeat_seconds: float | None = None,
        where: Callable[[], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._write = write or (lambda line: print(line, file=sys.stdout, flush=True))
        self.heartbeat_seconds = heartbeat_seconds or HEARTBEAT_SECONDS
        self.where = where
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._last_line = self._started

    def say(self, text: str) -> None:
        with self._lock:
            now = self._clock()
            self._last_line = now
            self._write(f"{PREFIX} [{clock_text(now - self._started)}] {text}")

    @contextlib.contextmanager
    def phase(self, name: str, detail: str = "") -> Iterator["PhaseEnd"]:
        """Say that phase `name` starts (with `detail`); while the block runs, say every
        `heartbeat_seconds` that it still does and where; at its end say what the block
        set in the `PhaseEnd` it gets (`<name>: done` by default), with the duration.
        A phase that fails says nothing more: the error says why."""
        self.say(f"{name}: {detail}" if detail else name)
        began = self._clock()
        end = PhaseEnd(f"{name}: done")
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(name, began, stop), daemon=True)
        beat.start()
        try:
            yield end
        finally:
            stop.set()
            beat.join()
        self.say(f"{end.text} ({self._clock() - began:.1f} s)")

    def _heartbeat(self, doing: str, began: float, stop: threading.Event) -> None:
        while not stop.wait(self._wait_for_next()):
            with self._lock:
                quiet_for = self._clock() - self._last_line
            if quiet_for < self.heartbeat_seconds:
                continue  # another line was said meanwhile
            where = ""
            if self.where is not None:
                try:
                    where = f": {self.where()}"
                except Exception:  # the heartbeat must never fail the run
                    where = ""
            self.say(f"still {doing} ({clock_text(self._clock() - began)}){where}")

    def _wait_for_next(self) -> float:
        with self._lock:
            due = self._last_line + self.heartbeat_seconds - self._clock()
        return max(due, 0.01)


class PhaseEnd:
    """The line a phase ends with; the block may fill it in once it knows the figures."""

    def __init__(self, text: str):
        self.text = text
