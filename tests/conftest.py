"""Shared fixtures: one Spark session for the whole suite (local, UTC, few shuffle
partitions), no way to reach a real AWS account, and moto's server for the AWS tests."""

import logging
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from tests.aws_fakes import fake_aws_environment, list_moto_services_once
from tests.job_helpers import SERIAL_GC, YOUNG_GENERATION, suite_session
from tests.workflow_helpers import WORKFLOW
from tests.template_helpers import FOUNDATION as FOUNDATION_TEMPLATE
from traffic_glue.runtime.metastore import IDLE_ENV
from traffic_glue.runtime.session import EVENT_LOG_ENV
from workflows.template import load_template


# Every JVM of the suite (the session's below, and the jobs run in processes of their own,
# which inherit the environment) compiles with C1 only. Each is short-lived and its data
# tiny: measured on tests/test_job.py, C2's compiler threads were half of the JVM's CPU
# time (67 of 132 s), and with C1 only the suite takes 30% less CPU, which is what bounds
# it on two cores. A larger code cache keeps C1 compiling. The serial collector has no
# concurrent threads and cheaper write barriers than G1: 6% less CPU (test_job and test_s3:
# 256 -> 240 CPU-s; test_parity 98 -> 92). Numbers are unchanged: only how hot Java code
# is compiled and how the heap is collected differ. Nor do they verify the bytecode of the
# classes they load (the jars pinned from Maven Central and PyPI, and the classes Spark
# generates): verifying was ~1.7 of the ~16 CPU-s of a job run in a JVM of its own.
# Users' JVMs and Glue's verify. A young generation of 600 MB (of the 2 GB heap; the
# serial collector's own start is a third of its first heap, ~130 MB here) holds what a
# run's planning makes and drops: the collector's thread took 0.13-0.14 CPU-s of a warm
# tiny run (2.7 CPU-s in the JVM) and 0.03-0.06 with it (ten runs each, 2026-12-06).
TEST_JVM_OPTIONS = (f"-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=512m {SERIAL_GC} {YOUNG_GENERATION} "
                    "-XX:+UnlockDiagnosticVMOptions -XX:-BytecodeVerificationRemote")
os.environ.setdefault("SPARK_SUBMIT_OPTS", TEST_JVM_OPTIONS)

# The temporary files of the suite's JVMs (Spark's scratch folders, the native libraries
# LZ4 and Snappy unpack) go into one folder the suite removes as it ends. A JVM removes
# its own as it exits, but the suite kills some on purpose (tests/test_crashes.py,
# test_s3.py, test_out_of_memory.py): each run of the suite left a dozen of them in /tmp
# (28 MB), for good. Made once, by the process that runs pytest: its xdist workers
# inherit it.
JVM_TEMP_ENV = "TRAFFIC_GLUE_TEST_JVM_TEMP"
_MADE_JVM_TEMP = pytest.StashKey[str]()


def pytest_configure(config):
    if os.environ.get(JVM_TEMP_ENV):
        return  # an xdist worker: its controller made the folder and removes it
    folder = tempfile.mkdtemp(prefix="traffic-glue-tests-jvm-")
    config.stash[_MADE_JVM_TEMP] = folder
    os.environ[JVM_TEMP_ENV] = os.environ["SPARK_LOCAL_DIRS"] = folder
    os.environ["SPARK_SUBMIT_OPTS"] = f"{os.environ['SPARK_SUBMIT_OPTS']} -Djava.io.tmpdir={folder}"


def pytest_unconfigure(config):
    folder = config.stash.get(_MADE_JVM_TEMP, None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


# No Spark event logs from the suite's sessions (its own, and its jobs' processes, which
# inherit this): they would pile up in the project's .local/spark-events, which `make
# history` shows. tests/test_history_server.py turns them on for the one run it serves.
os.environ[EVENT_LOG_ENV] = "off"

# The local catalog's metastore server (runtime/metastore) of a test's catalog stops a
# few seconds after its last session, not the five minutes a user gets.
os.environ.setdefault(IDLE_ENV, "3")

# `make test` runs the suite on one worker process per core (pytest-xdist), each with its
# own Spark session, moto server and temporary folders. A module is one unit of work, so
# its module-scoped runs happen once; modules that share a session-scoped run are one unit
# (XDIST_GROUPS). The longest units start first (RUN_FIRST, measured: longest-first keeps
# the workers ending together).
XDIST_GROUPS = {"test_bad_input": "baseline", "test_crashes": "baseline"}  # the `baseline` fixture
RUN_FIRST = ("test_bad_input", "test_crashes", "test_shared_catalog", "test_job", "test_s3",
             "test_parity", "test_local_workflow", "test_migrate", "test_validation",
             "test_configured_locations", "test_quality_job", "test_out_of_memory", "test_transforms",
             "test_rerun_report",
             "test_summary_job", "test_metrics", "test_pipeline", "test_curated", "test_maintenance",
             "test_security", "test_history_server", "test_local_sql")


def pytest_collection_modifyitems(items):
    rank = {name: position for position, name in enumerate(RUN_FIRST)}
    items.sort(key=lambda item: rank.get(Path(item.path).stem, len(RUN_FIRST)))  # stable: file order within


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's scheduling by module (`--dist loadscope`, in collection order), with the
    modules of XDIST_GROUPS as one unit. (`--dist loadgroup` would do it with marks, but
    pytest 9 no longer lets xdist 3.8 rename a test, which that needs.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return XDIST_GROUPS.get(Path(module).stem, module)

    return ModulesAndGroups(config, log)


@pytest.fixture(scope="session")
def spark():
    session = suite_session()
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch, tmp_path):
    """Every test: fake credentials, a fixed region, no real account's config or endpoint."""
    fake_aws_environment(monkeypatch, tmp_path)


@pytest.fixture
def jvm_commands(spark, monkeypatch) -> list[str]:
    """The commands this process sends the suite's JVM through py4j from now on, one
    round trip each; not py4j's releases of Java objects Python let go of (`m d oNN`),
    which the garbage collector sends whenever it runs."""
    from py4j.protocol import MEMORY_COMMAND_NAME, MEMORY_DEL_SUBCOMMAND_NAME

    client = spark.sparkContext._gateway._gateway_client
    sent: list[str] = []
    send = client.send_command

    def counted(command, *args, **kwargs):
        if not command.startswith(MEMORY_COMMAND_NAME + MEMORY_DEL_SUBCOMMAND_NAME):
            sent.append(command)
        return send(command, *args, **kwargs)

    monkeypatch.setattr(client, "send_command", counted)
    return sent


@pytest.fixture(scope="session")
def moto_server():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    list_moto_services_once()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def endpoint(moto_server, monkeypatch):
    """A clean moto server that boto3 reaches through AWS_ENDPOINT_URL."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server


@pytest.fixture
def template() -> dict:
    """The workflow's CloudFormation template, parsed (a fresh copy per test)."""
    return load_template(WORKFLOW)


@pytest.fixture(scope="session")
def baseline(spark, tmp_path_factory):
    """The good landing of the bad-input and crash tests (tests/fault_landing.py) and the
    table a clean run makes of it: one run per session, whichever modules ask for it. The
    run (in this process) and the tests' own runs share the suite's `spark`."""
    from tests.fault_landing import make_baseline  # pyarrow and pyiceberg only when asked for

    return make_baseline(tmp_path_factory.mktemp("baseline"))


# The templates, parsed once per module that asks (tests/test_*_template.py).
@pytest.fixture(scope="module")
def foundation() -> dict:
    return load_template(FOUNDATION_TEMPLATE)


@pytest.fixture(scope="module")
def workflow() -> dict:
    return load_template(WORKFLOW)


@pytest.fixture(scope="module")
def workflow_resources(workflow) -> dict:
    return workflow["Resources"]
