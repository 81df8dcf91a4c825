"""How much memory a run has, and a run that runs out of it saying so in one line.

Spark says it in py4j errors a user should not have to read:

- a task could not get execution memory: `org.apache.spark.memory.SparkOutOfMemoryError`
  (`[UNABLE_TO_ACQUIRE_MEMORY]`), in the text of the aborted job's `SparkException`;
- a JVM's heap ran out: `java.lang.OutOfMemoryError: Java heap space`;
- the JVM is gone: a local driver whose task ran out of heap exits (status 52, Spark's
  for out of memory), the system's out-of-memory killer sends it SIGKILL. py4j then says
  `Py4JNetworkError` ("Answer from Java side is empty") or its gateway refuses the
  connection, and nothing more can be asked of Spark: not a Java error's text, not a
  setting. While it ends (its shutdown stops the SparkContext, then the gateway) it may
  still answer a call with a Java error whose text it then cannot give: py4j keeps the
  lost connection to its log, and only asking Spark afterwards (`spark_answers`) tells.

`classify` reads an error's chain (`__cause__` and `__context__`, as Python prints it) and
the Java text of its py4j errors, asking the JVM nothing once it is gone; `Shortage.line`
says what ran out and what to give the next run. `watch` is the frame's (`runtime.frame`):
around a job's run it turns such an error into `OutOfMemory`, which the frame prints as
its one line with the exit status `OUT_OF_MEMORY`, and meanwhile keeps py4j's own log of
the lost gateway (a traceback on standard error) off the console.

Imports nothing of Spark at module level: a Python shell job's frame imports this too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterator

# The exit status of a run that ran out of memory: not 1 (an expected error), 2 (an
# argument) nor 3 (`frame.CHECK_FAILED`, data that failed a check), so that a caller can
# rerun it bigger rather than look for a fault in the data or the code.
OUT_OF_MEMORY = 4

# The local driver's memory (`runtime.session`): local mode runs every task in the driver.
DRIVER_MEMORY_ENV = "TRAFFIC_GLUE_DRIVER_MEMORY"
DEFAULT_DRIVER_MEMORY = "2g"

# What Glue's worker type sets, shown when a run on Glue runs out (Spark's settings do
# not name the worker type or count themselves).
GLUE_SETTINGS = (
    "spark.executor.memory", "spark.executor.cores",
    "spark.executor.instances", "spark.dynamicAllocation.maxExecutors",
)

# Spark's exit status for a JVM that ran out of memory (SparkExitCode.OOM): a local
# driver's task that runs out of heap ends the whole JVM with it.
SPARK_OOM_EXIT = 52
SIGKILL_EXIT = -9  # subprocess's returncode for a process killed by SIGKILL
# How long a JVM whose gateway is gone is given to end, for its exit status.
JVM_EXIT_WAIT_SECONDS = 10.0

# What the line says of a JVM that answers no more, when no error of py4j's says it: the
# error's text could not be read (py4j met the lost connection while asking for it, and
# kept that to its log), or Spark's context was stopped under the run.
SILENT = "its gateway: Spark answers no more"

# A Java out-of-memory error's class (java.lang.OutOfMemoryError, Spark's
# SparkOutOfMemoryError) and its message, wherever a stack trace or message names it; not
# a stack frame of its constructor (`...OutOfMemoryError.<init>`).
_JAVA_OUT_OF_MEMORY = re.compile(
    r"((?:[A-Za-z_$][\w$]*\.)*(Spark)?OutOfMemoryError)(?![\w$.])(?::[ \t]*([^\n]*))?"
)
_MOST_CHARS = 200  # of an error's words in the line
_UNIT_BYTES = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}  # a JVM size's suffix


def driver_memory(environ=os.environ) -> str:
    """The local driver's memory, as Spark's `spark.driver.memory` takes it."""
    return environ.get(DRIVER_MEMORY_ENV) or DEFAULT_DRIVER_MEMORY


def doubled(size: str) -> str | None:
    """Twice a JVM memory size (`2g` -> `4g`, `460m` -> `920m`); None if it is no size."""
    found = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)b?\s*", size, re.IGNORECASE)
    if not found:
        return None
    size_bytes = int(found.group(1)) * _UNIT_BYTES[found.group(2).lower()]
    twice_mib = max(1, -(-2 * size_bytes // 2**20))  # whole MiB, rounded up
    return f"{twice_mib // 1024}g" if twice_mib % 1024 == 0 else f"{twice_mib}m"


class Kind(Enum):
    EXECUTION = "execution"  # SparkOutOfMemoryError: a task got no execution memory
    HEAP = "heap"  # java.lang.OutOfMemoryError
    JVM_ENDED = "jvm ended"  # the JVM is gone


@dataclass(frozen=True)
class Capacity:
    """What the run had: locally the driver's memory setting, on Glue the executors'
    settings Glue gave it (empty when they could not be read)."""

    on_glue: bool
    driver_memory: str = DEFAULT_DRIVER_MEMORY
    glue_settings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Shortage:
    """A run out of memory: how it ended, in Spark's words, and the JVM's exit status if
    the JVM ended."""

    kind: Kind
    said: str  # the Java error (`java.lang.OutOfMemoryError: Java heap space`), or the gateway's
    exit_status: int | None = None

    def what_ran_out(self) -> str:
        if self.kind is Kind.EXECUTION:
            return f"out of memory: Spark's execution memory ran out ({self.said})"
        if self.kind is Kind.HEAP:
            return f"out of memory: a Spark JVM ran out of memory ({self.said})"
        if self.exit_status == SPARK_OOM_EXIT:
            return (f"out of memory: Spark's JVM ran out of memory and ended (exit status "
                    f"{SPARK_OOM_EXIT}, Spark's for out of memory)")
        if self.exit_status == SIGKILL_EXIT:
            return ("out of memory: Spark's JVM was killed (SIGKILL), as the system's "
                    "out-of-memory killer does")
        how = f"exit status {self.exit_status}" if self.exit_status is not None else self.said
        return f"Spark's JVM ended mid-run, most often for want of memory ({how})"

    def line(self, capacity: Capacity, days: bool = True) -> str:
        """The one line: what ran out, with how much, and what the next run needs.
        `days`: the job takes --start_date/--end_date (fewer days a run is a way out)."""
        fewer_days = ", or run fewer days at a time (--start_date/--end_date)" if days else ""
        if capacity.on_glue:
            settings = ", ".join(f"{k}={v}" for k, v in capacity.glue_settings)
            return (f"{self.what_ran_out()} on Glue{' with ' + settings if settings else ''}: "
                    f"run it with a larger --worker-type or more --number-of-workers{fewer_days}")
        setting = f"{DRIVER_MEMORY_ENV}={capacity.driver_memory}"
        if self.exit_status == SIGKILL_EXIT:  # the machine, not the heap, ran short
            return (f"{self.what_ran_out()}, with {setting}: free memory on this machine"
                    f"{fewer_days}")
        more = doubled(capacity.driver_memory)
        give = f"set {DRIVER_MEMORY_ENV}={more} or more" if more else f"set a larger {DRIVER_MEMORY_ENV}"
        return f"{self.what_ran_out()}, with {setting}: {give}{fewer_days}"


class OutOfMemory(RuntimeError):
    """The run ran out of memory; the message is the line that says so."""

    def __init__(self, shortage: Shortage, line: str):
        super().__init__(line)
        self.shortage = shortage


# --- reading an error ---------------------------------------------------------------------


def chain(error: BaseException) -> list[BaseException]:
    """`error` and every error it was raised from or while handling, outermost first."""
    found, seen, todo = [], set(), [error]
    while todo:
        link = todo.pop(0)
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        found.append(link)
        todo += [link.__cause__, link.__context__]
    return found


def _is_py4j(error: BaseException, name: str) -> bool:
    """`error` is py4j's `name` (or of a class derived from it), known by name: py4j
    need not be importable here."""
    return any(c.__name__ == name and c.__module__.startswith("py4j") for c in type(error).__mro__)


def _raised_by_py4j(error: BaseException) -> bool:
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_globals.get("__name__", "").startswith("py4j."):
            return True
        traceback = traceback.tb_next
    return False


def _words(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MOST_CHARS else text[:_MOST_CHARS - 3] + "..."


def gateway_gone(error: BaseException) -> str | None:
    """py4j's words if `error`'s chain says the JVM's gateway is gone, else None."""
    links = chain(error)
    for link in links:
        if _is_py4j(link, "Py4JNetworkError"):
            return _words(f"its gateway: {link}")
    for link in links:
        if isinstance(link, ConnectionError) and _raised_by_py4j(link):
            return _words(f"its gateway: {link.strerror or link}")
    return None


def _text(error: BaseException) -> str:
    """The error's text: a py4j Java error's is the Java stack trace with its causes (read
    from the JVM); pyspark's own exceptions keep theirs."""
    try:
        text = str(error)
    except Exception:  # a Java error's text is not to be had
        text = ""
    trace = getattr(error, "_stackTrace", None)
    return text + ("\n" + trace if isinstance(trace, str) else "")


def java_out_of_memory(error: BaseException, jvm_alive: bool = True) -> tuple[Kind, str] | None:
    """The first Java out-of-memory error the chain's texts name, if any. With the JVM
    gone, a py4j Java error's text is not asked for (it is the JVM's to give)."""
    for link in chain(error):
        if not jvm_alive and _is_py4j(link, "Py4JJavaError"):
            continue
        found = _JAVA_OUT_OF_MEMORY.search(_text(link))
        if found:
            name, spark, message = found.groups()
            said = name.rsplit(".", 1)[-1] if spark else name
            return (Kind.EXECUTION if spark else Kind.HEAP), _words(f"{said}: {message}" if message else said)
    return None


def classify(error: BaseException, jvm_exit: int | None = None, silent: bool = False) -> Shortage | None:
    """What ran out, if `error` says memory ran out (or the JVM ended: `jvm_exit`, its
    exit status if it is known to have ended; `silent`, it no longer answers); None for
    any other error."""
    gone = gateway_gone(error) or (SILENT if silent else None)
    ended = gone is not None or jvm_exit is not None
    found = java_out_of_memory(error, jvm_alive=not ended)
    if ended:
        return Shortage(Kind.JVM_ENDED, found[1] if found else (gone or ""), jvm_exit)
    if found:
        return Shortage(*found)
    return None


# --- around a run -------------------------------------------------------------------------


class _LostGatewayLog(logging.Filter):
    """py4j's log of a call to a JVM that is gone (`logging.exception("Exception while
    sending command.")` on the root logger, which prints a traceback): the run's line
    says it instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (error is not None and _is_py4j(error, "Py4JNetworkError"))


def jvm_exit_status(wait: float) -> int | None:
    """The local JVM's exit status if it ended (waiting up to `wait` seconds), else None;
    None on Glue, where the JVM started this process rather than the other way round."""
    from pyspark import SparkContext

    process = getattr(SparkContext._gateway, "proc", None)
    if process is None:
        return None
    try:
        return process.wait(timeout=wait) if wait else process.poll()
    except subprocess.TimeoutExpired:
        return None


def spark_answers() -> bool:
    """The JVM answers py4j and the run's SparkContext still runs. After an error that is
    not the JVM's end, it does; a JVM ending for want of memory (its shutdown stops the
    context, then the gateway) can still answer the error's call and then nothing more."""
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is None:  # no context to ask: nothing says the JVM is going
        return True
    try:
        return not context._jsc.sc().isStopped()
    except Exception:  # py4j's log of it is kept off the console (`watch`)
        return False


def capacity_of(runtime, ended: bool) -> Capacity:
    """What the run had: on Glue Spark's executor settings, unless the JVM ended."""
    if not getattr(runtime, "on_glue", False):
        return Capacity(on_glue=False, driver_memory=driver_memory())
    settings = []
    if not ended:
        for key in GLUE_SETTINGS:
            try:
                value = runtime.spark.conf.get(key, None)
            except Exception:  # a setting is a courtesy: the line is said without it
                value = None
            if value:
                settings.append((key, value))
    return Capacity(on_glue=True, glue_settings=tuple(settings))


@contextlib.contextmanager
def watch(runtime, days: bool = True,
          jvm_exit: Callable[[float], int | None] = jvm_exit_status,
          jvm_answers: Callable[[], bool] = spark_answers) -> Iterator[None]:
    """Around a job's run on `runtime` (none: a Python shell job, nothing to watch): an
    error that says memory ran out becomes `OutOfMemory` with its line (`Shortage.line`);
    any other goes on as it was. An error after which Spark answers no more is the JVM
    ending whatever the error says (its own text may be the JVM's to give): its exit
    status is waited for."""
    if runtime is None:
        yield
        return
    quiet = _LostGatewayLog()
    root = logging.getLogger()
    root.addFilter(quiet)
    try:
        yield
    except Exception as error:
        silent = gateway_gone(error) is not None or not jvm_answers()
        exit_status = jvm_exit(JVM_EXIT_WAIT_SECONDS if silent else 0)
        shortage = classify(error, exit_status, silent)
        if shortage is None:
            raise
        line = shortage.line(capacity_of(runtime, shortage.kind is Kind.JVM_ENDED), days)
        raise OutOfMemory(shortage, line) from error
    finally:
        root.removeFilter(quiet)
