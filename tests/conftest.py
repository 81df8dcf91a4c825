"""Shared fixtures: one Spark session for the whole suite (local, UTC, few shuffle
partitions), no way to reach a real AWS account, and moto's server for the AWS tests."""

import logging
import urllib.request

import pytest
from moto.server import ThreadedMotoServer

from tests.aws_fakes import REGION
from tests.workflow_helpers import WORKFLOW
from tests.template_helpers import FOUNDATION as FOUNDATION_TEMPLATE
from workflows.template import load_template

from traffic_glue.runtime.session import local_spark_session


@pytest.fixture(scope="session")
def spark():
    session = local_spark_session(app_name="traffic-glue-tests", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch, tmp_path):
    """Every test: fake credentials, a fixed region, no real account's config or endpoint."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture(scope="session")
def moto_server():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
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
