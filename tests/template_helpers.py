"""What the template tests share: the templates' paths, the names they must hold, the
resolved views of a template (`render`, `as_list`, ...) and its roles' grants. The parsed
templates are fixtures of tests/conftest.py (`foundation`, `workflow`, `workflow_resources`)."""

import json
from fnmatch import fnmatchcase
from pathlib import Path

from pyspark.sql import types as T

from tests.workflow_helpers import WORKFLOW  # noqa: F401 (the templates' tests take it from here)


ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DIRS = ("infra", "workflows")
TEMPLATES = sorted(path for folder in TEMPLATE_DIRS for path in (ROOT / folder).glob("*.yaml"))
FOUNDATION = ROOT / "infra" / "foundation.yaml"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
# checkov pins an old `packaging` that conflicts with pytest, so it has its own venv.
CHECKOV_INSTALL = "python3.11 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov==3.3.30"

# The Glue release the project is pinned to (pyproject.toml: Glue 5.1, Spark 3.5.6).
GLUE_VERSION = "5.1"
# docs/SEMANTICS.md: the raw folders are Firehose's zero-padded processing hours (strings),
# the curated partitions are event hours stored as bigint.
RAW_TABLE = "raw_measurements"
CURATED_TABLE = "traffic_minutes"
SUMMARY_TABLE = "daily_summary"
RAW_PARTITION_TYPE = "string"
# The curated table's location, as the transform job's --target_path and the Iceberg
# catalog's warehouse write it.
CURATED_LOCATION = "s3://${CuratedBucketName}/${CuratedPrefix}"
# The summary table's, as the summary job's --target_path writes it: beside the curated table.
SUMMARY_LOCATION = "s3://${CuratedBucketName}/${SummaryPrefix}"
# Every Glue job of the workflow template: the conf they share is checked on each.
JOBS = ("TransformJob", "SummaryJob", "TableMaintenanceJob")
# The Glue settings of a run, as opposed to the job's own arguments: the summary job
# runs with the transform's.
GLUE_RUN_ARGUMENTS = (
    "--extra-py-files", "--enable-glue-datacatalog", "--datalake-formats", "--enable-metrics",
    "--enable-continuous-cloudwatch-log", "--TempDir", "--job-language", "--conf",
)
# The Spark UI's: on in every Spark job, each writing its event logs to a folder of its
# own (tests/test_alerts_template.py).
SPARK_UI_ARGUMENTS = ("--enable-spark-ui", "--spark-event-logs-path")
# ARNs as the templates write them (`render`ed).
GLUE_ARN = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:"

SPARK_TO_GLUE = {
    T.IntegerType: "int",
    T.LongType: "bigint",
    T.DoubleType: "double",
    T.StringType: "string",
}

FOUNDATION_OUTPUTS = (
    "RawBucketName",
    "CuratedBucketName",
    "ArtifactsBucketName",
    "TempBucketName",
    "DatabaseName",
    "GlueRoleArn",
    "SecurityConfigurationName",
    "ConfigurationPrefix",
    "ConfigurationFetchRoleArn",
    "KmsKeyArn",
)
# Buckets that hold data worth keeping (versioned); temp is scratch space.
VERSIONED_BUCKET_OUTPUTS = ("RawBucketName", "CuratedBucketName", "ArtifactsBucketName")
TEMP_BUCKET_OUTPUT = "TempBucketName"


# --- helpers -------------------------------------------------------------------------


def glue_columns(struct: T.StructType) -> list:
    return [(field.name, SPARK_TO_GLUE[type(field.dataType)]) for field in struct.fields]


def resources_of_type(template: dict, resource_type: str) -> dict:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def render(value) -> str:
    """An intrinsic as the string it stands for, references kept as ${...}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            return f"${{{arg}}}"
        if key == "Fn::GetAtt":
            return "${" + ".".join(as_list(arg)) + "}"
        if key == "Fn::Sub":
            return arg if isinstance(arg, str) else arg[0]
    return json.dumps(value, sort_keys=True)


def is_ref(value, logical_id: str) -> bool:
    return value == {"Ref": logical_id}


def output_resource(template: dict, output_name: str) -> str:
    """Logical id of the resource an output names (`!Ref X` or `!GetAtt X.Arn`)."""
    value = template["Outputs"][output_name]["Value"]
    if "Ref" in value:
        return value["Ref"]
    return value["Fn::GetAtt"][0]


def role_statements(template: dict):
    for name, role in resources_of_type(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in as_list(policy["PolicyDocument"]["Statement"]):
                yield name, statement
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, policy in resources_of_type(template, kind).items():
            for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"]):
                yield name, statement


def role_grants(foundation, output: str = "GlueRoleArn") -> dict:
    """{action: resource patterns} of the Allow statements of the role an output names
    (the Glue role by default)."""
    role_id = output_resource(foundation, output)
    granted = {}
    for name, statement in role_statements(foundation):
        if name == role_id and statement["Effect"] == "Allow":
            for action in as_list(statement["Action"]):
                granted.setdefault(action, set()).update(map(render, as_list(statement["Resource"])))
    return granted


def allowed(granted: dict, action: str, arn: str) -> bool:
    return any(fnmatchcase(arn, pattern) for pattern in granted.get(action, ()))


def bucket_arn(foundation, location: str) -> tuple:
    """s3://${XBucketName}/${Prefix} -> (the foundation's ${X.Arn}, ${Prefix})."""
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    output = bucket.removeprefix("${").removesuffix("}")
    return "${" + output_resource(foundation, output) + ".Arn}", prefix
