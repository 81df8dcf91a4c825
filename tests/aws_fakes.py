"""Fakes for the AWS tests: stand-in templates, stubbed clients, a session that records.

The fixtures that go with them (`fake_aws`, `moto_server`, `endpoint`) are in conftest.py.
"""

import datetime as dt
from pathlib import Path

import boto3
from botocore.stub import Stubber
from moto import backends as moto_backends

from tools import stacks

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "deploy"
FOUNDATION_STAND_IN = FIXTURES / "foundation.yaml"
WORKFLOW_STAND_IN = FIXTURES / "workflow.yaml"
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
T0 = dt.datetime(2024, 3, 4, 5, 0, 0, tzinfo=dt.timezone.utc)


def fake_aws_environment(monkeypatch, folder: Path) -> None:
    """Fake credentials, a fixed region, no real account's config or endpoint: what
    conftest's `fake_aws` gives every test, and a module's shared AWS fixtures their runs."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(folder / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "no-aws-credentials"))


def list_moto_services_once() -> None:
    """moto's server (5.x) finds the service of every request it is sent by listing its
    own package folder (`os.listdir` and an `isdir` for each of ~170 entries, in
    `moto.backends.list_of_moto_modules`, called by the server's dispatcher per request).
    The folder does not change while the suite runs: it is listed once here. Measured on
    tests/test_s3.py alone, whose job processes send moto's server thousands of S3A
    requests: 149 -> 115 busy CPU-s, 107 -> 85 s. Requests are served as before."""
    original = moto_backends.list_of_moto_modules
    if hasattr(original, "__wrapped__"):  # listed already
        return
    services = tuple(original())

    def listed() -> tuple[str, ...]:
        return services

    listed.__wrapped__ = original
    moto_backends.list_of_moto_modules = listed


class FakeSession:
    """Hands out the given (stubbed) clients and records which services were asked for."""

    def __init__(self, **clients):
        self.clients, self.asked = clients, []

    def client(self, service):
        self.asked.append(service)
        return self.clients[service]


def stubbed(service):
    client = boto3.client(service, region_name=REGION)
    return client, Stubber(client)


def no_sleep():
    slept = []
    return slept, slept.append


def as_params(parameters: dict) -> list:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]


def create_stand_in_workflow_stack(cfn):
    parameters = {key: f"{key}-value" for key in stacks.SHARED_OUTPUTS}
    cfn.create_stack(StackName="traffic-glue-workflow", TemplateBody=WORKFLOW_STAND_IN.read_text(),
                     Parameters=as_params(parameters))
