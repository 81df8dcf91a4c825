"""`make test-fast`: every test that runs no Spark job, for the edit loop.

A test is marked `spark` at collection when it, or a fixture it uses, names Spark or runs
a job (the `spark` fixture, `run_job`, a job script, a subprocess); `make test-fast`
deselects those (`-m "not spark"`). So that a test marked wrongly is found rather than
slowing the loop down, a fast run (`TRAFFIC_GLUE_FAST_TESTS=1`) makes any Spark session
start fail, naming the test.

Loaded for every run by `-p tests.fast_tests` (pyproject.toml).
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path

import pytest

FAST_RUN = "TRAFFIC_GLUE_FAST_TESTS"
# What a test or fixture's source says when it starts Spark or a job.
STARTS_SPARK = re.compile(
    r"\bspark\b|run_job|run_script|run_workflow|local_runner|local_spark_session|SparkSession"
    r"|subprocess|Popen|traffic_transform|glue_jobs/"
)


def _source(function) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


TESTS = str(Path(__file__).resolve().parent)


def _in_tests(function) -> bool:
    try:
        return str(Path(inspect.getfile(function)).resolve()).startswith(TESTS)
    except TypeError:
        return False


def _called_helpers(function, depth: int = 2) -> list:
    """`function` and the test suite's own functions it calls (to `depth`)."""
    found, frontier = [function], [function]
    for _ in range(depth):
        following = []
        for caller in frontier:
            names = getattr(caller, "__globals__", {})
            for name in set(re.findall(r"\b(\w+)\(", _source(caller))):
                callee = names.get(name)
                if inspect.isfunction(callee) and _in_tests(callee) and callee not in found:
                    found.append(callee)
                    following.append(callee)
        frontier = following
    return found


def starts_spark(item: pytest.Item) -> bool:
    if "spark" in getattr(item, "fixturenames", ()):
        return True
    functions = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    if info is not None:
        for definitions in info.name2fixturedefs.values():
            functions += [d.func for d in definitions if not d.baseid == ""]  # the suite's own fixtures
    return any(
        STARTS_SPARK.search(_source(f))
        for function in functions if function is not None for f in _called_helpers(function)
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "spark: starts Spark or runs a job (deselected by make test-fast)")
    if os.environ.get(FAST_RUN) == "1":
        _refuse_spark()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if starts_spark(item):
            item.add_marker(pytest.mark.spark)


_CURRENT: list[str] = ["(collection)"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _CURRENT[0] = item.nodeid
    yield


def _refuse_spark() -> None:
    """In a fast run, a Spark session that starts (in a test or in any fixture, whatever
    its scope) is a test marked wrongly: it fails, naming the test."""
    from pyspark.sql import SparkSession

    def refuse(self, *args, **kwargs):
        raise AssertionError(
            f"{_CURRENT[0]} starts Spark in a fast run: tests/fast_tests.py should mark it `spark`"
        )

    SparkSession.Builder.getOrCreate = refuse
