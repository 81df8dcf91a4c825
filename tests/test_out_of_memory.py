"""A run out of memory says so (runtime/memory.py): one line on standard error naming what
ran out, how much the run had and what to give the next one, exit status 4
(`memory.OUT_OF_MEMORY`), nothing published.

The errors are made by hand first, as py4j and pyspark raise them (their texts are
Spark 3.5's); then the transform job script runs out of memory for real, in a process
of its own with a driver too small for its landing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import subprocess
import time
import types
from pathlib import Path
from types import SimpleNamespace

import pytest
from py4j.protocol import Py4JError, Py4JJavaError, Py4JNetworkError

from tests.fault_landing import job_command, referenced_files, run_branches, table_state
from tests.job_helpers import SERIAL_GC, YOUNG_GENERATION, iceberg_table, job_env, last_report, run_job
from tools.sample_data import SampleSpec, generate
from traffic_glue.runtime import memory
from traffic_glue.runtime.memory import Capacity, Kind, Shortage

# --- the errors, by hand --------------------------------------------------------------------

# What str() of pyspark's py4j error gives: the call, then the Java stack trace with causes.
EXECUTION_MEMORY = (
    "An error occurred while calling o18483.overwritePartitions.\n"
    ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 in stage 41.0 "
    "failed 1 times, most recent failure: Lost task 3.0 in stage 41.0 (TID 811) (192.0.2.2 "
    "executor driver): org.apache.spark.memory.SparkOutOfMemoryError: [UNABLE_TO_ACQUIRE_MEMORY] "
    "Unable to acquire 65536 bytes of memory, got 0.\n"
    "\tat org.apache.spark.memory.MemoryConsumer.throwOom(MemoryConsumer.java:157)\n"
    "\tat org.apache.spark.memory.MemoryConsumer.allocatePage(MemoryConsumer.java:119)\n"
)
JAVA_HEAP = (
    "An error occurred while calling o912.overwritePartitions.\n"
    ": org.apache.spark.SparkException: Writing job aborted\n"
    "\tat org.apache.spark.sql.errors.QueryExecutionErrors$.writingJobAbortedError(QueryExecutionErrors.scala:767)\n"
    "Caused by: org.apache.spark.SparkException: Job aborted due to stage failure: Task 5 in stage 3.0 "
    "failed 1 times, most recent failure: Lost task 5.0 in stage 3.0 (TID 36) (192.0.2.2 executor "
    "driver): java.lang.OutOfMemoryError: Java heap space\n"
    "\tat org.apache.spark.util.collection.unsafe.sort.UnsafeSorterSpillWriter.<init>(UnsafeSorterSpillWriter.java:55)\n"
)
NOT_MEMORY = (  # a task's failure whose trace passes through Spark's memory classes
    "An error occurred while calling o77.overwritePartitions.\n"
    ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 2.0 "
    "failed 1 times, most recent failure: Lost task 0.0 in stage 2.0 (TID 4) (192.0.2.2 executor "
    "driver): java.io.FileNotFoundException: /data/raw/hour=05/part-0.parquet (No such file or directory)\n"
    "\tat org.apache.spark.memory.TaskMemoryManager.allocatePage(TaskMemoryManager.java:318)\n"
    "\tat org.apache.spark.util.collection.unsafe.sort.UnsafeExternalSorter.spill(UnsafeExternalSorter.java:229)\n"
    "hint: raise spark.executor.memoryOverhead only for an OutOfMemoryErrorHandler of your own\n"
)


class JavaError(Py4JJavaError):
    """pyspark's py4j Java error with its text given (no JVM to ask); counts how often
    its text was asked for, which a JVM that is gone cannot answer."""

    def __init__(self, text: str):
        Exception.__init__(self, text)
        self.text, self.asked = text, 0

    def __str__(self) -> str:
        self.asked += 1
        return self.text


def raised_from(error: BaseException, *, during: BaseException | None = None,
                cause: BaseException | None = None) -> BaseException:
    """`error` as Python leaves it raised while handling `during`, or `from cause`."""
    error.__context__, error.__cause__ = during, cause
    return error


def _connect(error: BaseException):
    raise error


# A function of py4j's gateway client (its module's name is py4j's), and one of another
# library: a refused connection means a dead JVM only when py4j's client met it.
connect_in_py4j = types.FunctionType(_connect.__code__, {"__name__": "py4j.clientserver"})
connect_elsewhere = types.FunctionType(_connect.__code__, {"__name__": "botocore.httpsession"})


def refused(connect) -> ConnectionRefusedError:
    try:
        connect(ConnectionRefusedError(111, "Connection refused"))
    except ConnectionRefusedError as error:
        return error
    raise AssertionError("not raised")


def gone_jvm_chain(write_error: JavaError) -> BaseException:
    """A run whose JVM died during its write, as it reaches the frame: the write's Java
    error, whose text can no longer be read, then py4j's lost answer, then the refused
    connection of the report it tried to write."""
    lost = raised_from(Py4JNetworkError("Answer from Java side is empty"), during=write_error)
    failed_call = raised_from(Py4JError("An error occurred while calling o832.tableExists"), during=lost)
    return raised_from(refused(connect_in_py4j), during=failed_call)


def test_a_task_without_execution_memory_is_sparks_out_of_memory_error():
    error = raised_from(RuntimeError("the run's write failed"), during=JavaError(EXECUTION_MEMORY))
    assert memory.classify(error) == Shortage(
        Kind.EXECUTION, "SparkOutOfMemoryError: [UNABLE_TO_ACQUIRE_MEMORY] Unable to acquire 65536 bytes of memory, got 0.")


def test_a_heap_out_of_memory_is_found_in_a_cause_of_a_cause():
    error = raised_from(RuntimeError("commit failed"), cause=JavaError(JAVA_HEAP))
    assert memory.classify(error) == Shortage(Kind.HEAP, "java.lang.OutOfMemoryError: Java heap space")


@pytest.mark.parametrize("jvm_exit, what", [
    (None, "Spark's JVM ended mid-run, most often for want of memory (its gateway: Answer from Java side is empty)"),
    (52, "out of memory: Spark's JVM ran out of memory and ended (exit status 52, Spark's for out of memory)"),
    (-9, "out of memory: Spark's JVM was killed (SIGKILL), as the system's out-of-memory killer does"),
])
def test_a_jvm_that_is_gone_is_out_of_memory_and_is_asked_nothing(jvm_exit, what):
    write = JavaError(JAVA_HEAP)
    shortage = memory.classify(gone_jvm_chain(write), jvm_exit)
    assert shortage.kind is Kind.JVM_ENDED and shortage.exit_status == jvm_exit
    assert shortage.what_ran_out() == what
    assert write.asked == 0  # its text is the dead JVM's: not asked for


def test_py4j_losing_its_answer_says_the_jvm_is_gone():
    lost = raised_from(Py4JNetworkError("Answer from Java side is empty"), during=JavaError(EXECUTION_MEMORY))
    assert memory.classify(lost) == Shortage(Kind.JVM_ENDED, "its gateway: Answer from Java side is empty")


def test_a_jvm_that_ended_is_gone_even_when_the_error_says_nothing_of_it():
    write = JavaError(JAVA_HEAP)
    shortage = memory.classify(raised_from(Py4JError("An error occurred while calling o1.count"), during=write), 52)
    assert (shortage.kind, shortage.exit_status, write.asked) == (Kind.JVM_ENDED, 52, 0)


def test_a_refused_connection_is_a_gone_jvm_only_from_py4js_client():
    assert memory.classify(refused(connect_in_py4j)) == Shortage(Kind.JVM_ENDED, "its gateway: Connection refused")
    assert memory.classify(refused(connect_elsewhere)) is None  # e.g. an S3 endpoint that is down


@pytest.mark.parametrize("error", [
    JavaError(NOT_MEMORY),
    raised_from(ValueError("bad row"), during=JavaError(NOT_MEMORY)),
    ZeroDivisionError("a bug"),
    MemoryError(),  # Python's own, not Spark's: a bug's traceback, as before
], ids=["java-error", "wrapped-java-error", "python-error", "python-memory-error"])
def test_any_other_error_is_not_out_of_memory(error):
    assert memory.classify(error) is None


def test_the_chain_is_read_once_even_when_it_loops():
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__context__, second.__context__ = second, first
    assert memory.chain(first) == [first, second]
    assert memory.classify(first) is None


@pytest.mark.parametrize("size, twice", [
    ("2g", "4g"), ("460m", "920m"), ("512m", "1g"), ("1536M", "3g"), ("3gb", "6g"), ("100k", "1m"), ("lots", None),
])
def test_the_driver_memory_to_ask_for_is_twice_the_runs(size, twice):
    assert memory.doubled(size) == twice


# --- the line -------------------------------------------------------------------------------

HEAP = Shortage(Kind.HEAP, "java.lang.OutOfMemoryError: Java heap space")


def test_locally_the_line_names_the_driver_memory_setting_and_a_bigger_one():
    assert HEAP.line(Capacity(on_glue=False, driver_memory="2g")) == (
        "out of memory: a Spark JVM ran out of memory (java.lang.OutOfMemoryError: Java heap space), "
        "with TRAFFIC_GLUE_DRIVER_MEMORY=2g: set TRAFFIC_GLUE_DRIVER_MEMORY=4g or more, or run fewer "
        "days at a time (--start_date/--end_date)")
    no_days = HEAP.line(Capacity(on_glue=False, driver_memory="lots"), days=False)
    assert no_days.endswith("with TRAFFIC_GLUE_DRIVER_MEMORY=lots: set a larger TRAFFIC_GLUE_DRIVER_MEMORY")


def test_a_jvm_killed_by_the_system_asks_for_free_memory_not_a_bigger_heap():
    killed = Shortage(Kind.JVM_ENDED, "", memory.SIGKILL_EXIT)
    assert killed.line(Capacity(on_glue=False, driver_memory="8g")).endswith(
        ", with TRAFFIC_GLUE_DRIVER_MEMORY=8g: free memory on this machine, or run fewer days at a "
        "time (--start_date/--end_date)")


# What a G.1X worker's executor gets (module constants: a test whose own text names Spark's
# settings would be taken for one that starts Spark, tests/fast_tests.py).
GLUE_GAVE = {"spark.executor.memory": "10g", "spark.executor.cores": "4"}
GLUE_GAVE_SAID = "on Glue with spark.executor.memory=10g, spark.executor.cores=4"


def test_on_glue_the_line_names_the_executors_glue_gave_the_run_and_bigger_workers():
    assert HEAP.line(Capacity(on_glue=True, glue_settings=tuple(GLUE_GAVE.items()))) == (
        "out of memory: a Spark JVM ran out of memory (java.lang.OutOfMemoryError: Java heap space) "
        f"{GLUE_GAVE_SAID}: run it with a larger --worker-type or more --number-of-workers, or run "
        "fewer days at a time (--start_date/--end_date)")
    assert HEAP.line(Capacity(on_glue=True), days=False).endswith(
        "Java heap space) on Glue: run it with a larger --worker-type or more --number-of-workers")


# --- around a run ---------------------------------------------------------------------------


class GlueRuntime:
    """A Glue job's runtime as `runtime.glue.Runtime` is one, its settings Glue's."""

    on_glue = True

    def __init__(self, settings: dict):
        self.spark = SimpleNamespace(conf=SimpleNamespace(get=lambda key, default=None: settings.get(key, default)))


def watched(runtime, error: BaseException, jvm_exit=None, answers: bool = True) -> BaseException:
    """What `memory.watch` lets out of a run that raised `error`, the JVM exiting with
    `jvm_exit` (None: still running) and answering or not."""
    with pytest.raises(BaseException) as raised:
        with memory.watch(runtime, jvm_exit=lambda wait: jvm_exit, jvm_answers=lambda: answers):
            raise error
    return raised.value


class UnreadableJavaError(Py4JJavaError):
    """A Java error the JVM answered with while it was ending: asking for its text met the
    lost connection, which py4j logs and turns into this error of its own."""

    def __init__(self):
        Exception.__init__(self, "An error occurred while calling o912.sql.\n")

    def __str__(self) -> str:
        raise Py4JError("An error occurred while calling NoneNone")


def ending_jvm_chain() -> BaseException:
    """The forced out-of-memory run's error as it once reached the frame: the write's Java
    error, then the Java error of the branch's drop in the write's cleanup, neither
    readable, and no error of py4j's network in the chain."""
    return raised_from(UnreadableJavaError(), during=UnreadableJavaError())


@pytest.mark.parametrize("jvm_exit, what", [
    (52, "out of memory: Spark's JVM ran out of memory and ended (exit status 52, Spark's for out of memory)"),
    (None, "Spark's JVM ended mid-run, most often for want of memory (its gateway: Spark answers no more)"),
])
def test_an_error_after_which_spark_answers_no_more_is_the_jvm_ending(jvm_exit, what):
    waits = []

    def exit_status(wait: float):
        waits.append(wait)
        return jvm_exit

    with pytest.raises(memory.OutOfMemory) as raised:
        with memory.watch(SimpleNamespace(), jvm_exit=exit_status, jvm_answers=lambda: False):
            raise ending_jvm_chain()
    assert str(raised.value).startswith(what + ", with TRAFFIC_GLUE_DRIVER_MEMORY=")
    assert waits == [memory.JVM_EXIT_WAIT_SECONDS]  # the exit status is waited for
    # The same error while Spark still answers is not the JVM's end: it goes on as it was.
    error = ending_jvm_chain()
    assert watched(SimpleNamespace(), error, answers=True) is error


@pytest.mark.parametrize("context, answers", [
    (None, True),  # no context to ask
    (SimpleNamespace(_jsc=SimpleNamespace(sc=lambda: SimpleNamespace(isStopped=lambda: False))), True),
    (SimpleNamespace(_jsc=SimpleNamespace(sc=lambda: SimpleNamespace(isStopped=lambda: True))), False),
    (SimpleNamespace(_jsc=SimpleNamespace(sc=lambda: _connect(Py4JError("An error occurred while calling o0.sc")))), False),
], ids=["no-context", "running", "stopped", "no-answer"])
def test_spark_answers_while_its_context_runs(monkeypatch, context, answers):
    from pyspark import SparkContext

    monkeypatch.setattr(SparkContext, "_active_spark_context", context)
    assert memory.spark_answers() is answers


def test_a_run_out_of_memory_comes_out_as_one_line_from_the_error(monkeypatch):
    monkeypatch.setenv(memory.DRIVER_MEMORY_ENV, "3g")
    write = JavaError(EXECUTION_MEMORY)
    out = watched(SimpleNamespace(), raised_from(RuntimeError("write failed"), during=write))
    assert isinstance(out, memory.OutOfMemory) and out.__cause__.__context__ is write
    assert str(out) == (
        "out of memory: Spark's execution memory ran out (SparkOutOfMemoryError: [UNABLE_TO_ACQUIRE_MEMORY] "
        "Unable to acquire 65536 bytes of memory, got 0.), with TRAFFIC_GLUE_DRIVER_MEMORY=3g: set "
        "TRAFFIC_GLUE_DRIVER_MEMORY=6g or more, or run fewer days at a time (--start_date/--end_date)")


def test_on_glue_the_settings_are_read_unless_the_jvm_is_gone():
    glue = GlueRuntime(GLUE_GAVE)
    alive = watched(glue, JavaError(JAVA_HEAP))
    assert f"{GLUE_GAVE_SAID}: run it with a larger" in str(alive)
    gone = watched(glue, gone_jvm_chain(JavaError(JAVA_HEAP)), jvm_exit=None)
    assert "mid-run, most often for want of memory (its gateway: Answer from Java side is empty) on Glue: run it" in str(gone)


def test_any_other_error_goes_on_as_it_was_and_a_shell_job_is_not_watched():
    bug = ZeroDivisionError("a bug")
    assert watched(SimpleNamespace(), bug) is bug
    out_of_memory = JavaError(JAVA_HEAP)
    assert watched(None, out_of_memory) is out_of_memory  # no runtime: a Python shell job


def test_py4js_log_of_a_lost_gateway_is_kept_off_the_console_while_a_run_is_watched(caplog):
    def py4j_logs_the_lost_gateway():  # as py4j's GatewayClient.send_command does
        logging.getLogger().error("Exception while sending command.",
                                  exc_info=Py4JNetworkError("Answer from Java side is empty"))

    with memory.watch(SimpleNamespace()):
        py4j_logs_the_lost_gateway()
        logging.getLogger().error("another error")
    assert [r.getMessage() for r in caplog.records] == ["another error"]
    py4j_logs_the_lost_gateway()  # unwatched, as before
    assert [r.getMessage() for r in caplog.records][-1] == "Exception while sending command."


# --- a real run out of memory ---------------------------------------------------------------

DAY = "2020-04-07"
# Found by trying (Spark 3.5.6, local mode, this project's plan): a driver of 460 MB
# (Spark refuses to start below about 450 MB) running 16 tasks at once on a day of 1,000
# lanes (1.4 M readings) runs out of heap while the tasks sort and spill, within a
# minute, every time tried; 512m failed as well, 640m passed.
TOO_SMALL_DRIVER = "460m"
TASKS_AT_ONCE = "local[16]"
LANES = 1000


def files_under(root: Path) -> dict[str, str]:
    """Every file under `root` and its bytes' hash, less the one a new metadata version
    rewrites (`version-hint.text`) and checksums."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and p.name != "version-hint.text" and not p.name.endswith(".crc")
    }


def test_a_run_out_of_memory_says_so_in_one_line_exits_4_and_publishes_nothing(tmp_path):
    small, big, target = tmp_path / "small", tmp_path / "big", tmp_path / "curated"
    generate(str(small), SampleSpec(start_date=dt.date(2020, 4, 7), lanes=6, seed=5))
    generate(str(big), SampleSpec(start_date=dt.date(2020, 4, 7), lanes=LANES, seed=5))
    assert run_job(small, target, DAY, DAY) == 0  # the table, by a run with memory enough
    before, listed, files = table_state(target), referenced_files(target), files_under(target)
    reports = len(list(target.glob("_reports/run_date=*/*.json")))

    env = job_env(TRAFFIC_GLUE_DRIVER_MEMORY=TOO_SMALL_DRIVER)
    env["TRAFFIC_GLUE_MASTER"] = TASKS_AT_ONCE
    # G1 and its own sizing of the young generation. Under the suite's serial collector
    # (conftest), and the parallel one a user's local run has (session.THROUGHPUT_GC), the
    # heap reported is smaller and Spark refuses to start with 460m; with 520m they run
    # this day to its end (G1's small heaps fill with Spark's pages, which it places in
    # regions of their own). The suite's young generation is more than 460m.
    env["SPARK_SUBMIT_OPTS"] = " ".join([*(option for option in env.get("SPARK_SUBMIT_OPTS", "").split()
                                           if option not in (SERIAL_GC, YOUNG_GENERATION)), "-XX:+UseG1GC"])
    started = time.monotonic()
    ran = subprocess.run(job_command(big, target, DAY, DAY), env=env, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started

    lines = ran.stderr.strip().splitlines()
    # The whole of standard error on a failure: its start says what failed first.
    assert ran.returncode == memory.OUT_OF_MEMORY, f"exit status {ran.returncode} after {took:.0f} s:\n" + ran.stderr
    assert re.fullmatch(
        r"traffic_transform: error: out of memory: .+, with TRAFFIC_GLUE_DRIVER_MEMORY=460m: set "
        r"TRAFFIC_GLUE_DRIVER_MEMORY=920m or more, or run fewer days at a time \(--start_date/--end_date\)",
        lines[-1]), lines[-1]
    # Spark's own log lines (its tasks' Java errors) come before it; no Python traceback,
    # nothing of py4j's, and the line is said once.
    assert not [line for line in lines if "Traceback" in line or line.startswith(("py4j", "ERROR:root"))]
    assert sum("error:" in line for line in lines) == 1

    # Nothing published: main's snapshot, its files' bytes and rows, and every file the
    # table had, as they were. (A run whose JVM died leaves its branch, as a killed one
    # does, for the maintenance job to drop.)
    after = table_state(target)
    assert after == before and iceberg_table(target).current_snapshot().snapshot_id == before.snapshot_id
    assert referenced_files(target) == listed
    now = files_under(target)
    assert {name: now.get(name) for name in files} == files
    assert all(name.startswith(("metadata/", "data/", "_reports/", "_reports_by_day/"))
               for name in now.keys() - files.keys())
    assert len(run_branches(target)) <= 1
    if len(list(target.glob("_reports/run_date=*/*.json"))) > reports:  # the JVM lived to write it
        assert last_report(target)["status"] == "failed"
