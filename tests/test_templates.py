"""The CloudFormation templates: lint, security scan, and the structure others rely on.

Expected columns and types come from `traffic_glue.compute.schema` (the one definition of
the tables), expected partitioning from docs/SEMANTICS.md; the templates are only ever the
thing under test.
"""

import json
import os
import subprocess
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from cfnlint.api import lint_all
from pyspark.sql import types as T

from traffic_glue.compute import schema
from traffic_glue.store import locations
from traffic_glue.jobs import maintenance
from traffic_glue.store.iceberg import glue_session_catalog_conf
from workflows.template import load_template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DIRS = ("infra", "workflows")
TEMPLATES = sorted(path for folder in TEMPLATE_DIRS for path in (ROOT / folder).glob("*.yaml"))
FOUNDATION = ROOT / "infra" / "foundation.yaml"
WORKFLOW = ROOT / "workflows" / "traffic_workflow.yaml"
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


@pytest.fixture(scope="module")
def foundation() -> dict:
    return load_template(FOUNDATION)


@pytest.fixture(scope="module")
def workflow() -> dict:
    return load_template(WORKFLOW)


@pytest.fixture(scope="module")
def workflow_resources(workflow) -> dict:
    return workflow["Resources"]


# --- the loader -------------------------------------------------------------------------


def test_loader_turns_short_form_intrinsics_into_long_form(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n"
        "  A:\n"
        "    Type: X\n"
        "    Properties:\n"
        "      R: !Ref B\n"
        "      S: !Sub arn:${AWS::Partition}:s3:::${B}\n"
        "      G: !GetAtt B.Arn\n"
        "      J: !Join ['', [!Ref B, x]]\n"
        "      C: !If [Cond, !GetAtt [B, Arn], !Ref AWS::NoValue]\n"
    )
    properties = load_template(path)["Resources"]["A"]["Properties"]
    assert properties == {
        "R": {"Ref": "B"},
        "S": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${B}"},
        "G": {"Fn::GetAtt": ["B", "Arn"]},
        "J": {"Fn::Join": ["", [{"Ref": "B"}, "x"]]},
        "C": {"Fn::If": ["Cond", {"Fn::GetAtt": ["B", "Arn"]}, {"Ref": "AWS::NoValue"}]},
    }


# --- cfn-lint and checkov ---------------------------------------------------------------


def test_templates_exist():
    assert FOUNDATION in TEMPLATES and WORKFLOW in TEMPLATES, TEMPLATES


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_cfn_lint_finds_no_error_or_warning(path):
    # lint_all: every region, every rule; informational (I*) findings are advice only.
    matches = [m for m in lint_all(path.read_text(encoding="utf-8")) if not m.rule.id.startswith("I")]
    assert not matches, "cfn-lint:\n" + "\n".join(
        f"  {path.name}:{m.linenumber} {m.rule.id} {m.message}" for m in matches
    )


def _require_checkov():
    if CHECKOV.exists():
        return
    reason = f"checkov is not installed at {CHECKOV.relative_to(ROOT)}; install it with: {CHECKOV_INSTALL}"
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.mark.parametrize("folder", TEMPLATE_DIRS)
def test_checkov_finds_no_failed_check(folder):
    _require_checkov()
    completed = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(ROOT / folder),
            "--framework",
            "cloudformation",
            "-o",
            "json",
            "--quiet",
            # No network here or in CI: do not fetch guidelines from the vendor's platform.
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_COLOR": "true"},
    )
    # Exit code 1 means "failed checks", which the JSON below lists; anything else is a crash.
    assert completed.returncode in (0, 1), completed.stderr[-4000:]
    reports = json.loads(completed.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    reports = [r for r in reports if r.get("check_type") == "cloudformation"]
    assert reports, f"checkov scanned no CloudFormation template in {folder}: {completed.stdout[:2000]}"
    failed = [check for r in reports for check in r["results"].get("failed_checks", [])]
    parsing_errors = [error for r in reports for error in r["results"].get("parsing_errors", [])]
    assert not parsing_errors, f"checkov could not parse: {parsing_errors}"
    assert not failed, "checkov:\n" + "\n".join(
        f"  {c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}" for c in failed
    )


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_checkov_suppression_is_explained(path):
    for name, resource in load_template(path)["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip.get("id", "").startswith("CKV"), f"{name}: {skip}"
            assert len(skip.get("comment", "").split()) >= 5, f"{name}: {skip['id']} needs a written reason"


# --- foundation: encryption, buckets, role ----------------------------------------------


def test_foundation_parameters_and_exported_outputs(foundation):
    parameters = foundation["Parameters"]
    assert parameters["ProjectName"]["Default"] == "traffic-glue"
    assert "AllowedPattern" in parameters["ProjectName"]
    assert parameters["DatabaseName"]["Default"] == "traffic"
    assert int(parameters["TempExpiryDays"]["Default"]) == 7
    for name in FOUNDATION_OUTPUTS:
        output = foundation["Outputs"][name]
        assert output["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{name}"}, name


def test_workflow_takes_the_foundation_outputs_as_parameters(foundation, workflow):
    # Deploying the workflow is "foundation outputs as parameter overrides".
    needed = set(FOUNDATION_OUTPUTS) - {"KmsKeyArn"}
    assert needed <= set(workflow["Parameters"]), needed - set(workflow["Parameters"])


def test_kms_key_rotates_and_lets_glue_and_logs_use_it(foundation):
    keys = resources_of_type(foundation, "AWS::KMS::Key")
    assert list(keys) == [output_resource(foundation, "KmsKeyArn")]
    key = next(iter(keys.values()))["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = key["KeyPolicy"]["Statement"]
    principals = [render(as_list(s["Principal"].get("AWS", s["Principal"].get("Service")))[0]) for s in statements]
    assert any(p.endswith(":root") for p in principals), principals
    assert any(p.startswith("logs.") for p in principals), principals
    logs = next(s for s in statements if "Service" in s["Principal"])
    assert "kms:EncryptionContext:aws:logs:arn" in json.dumps(logs["Condition"])
    glue = [s for s in statements if "role/" in json.dumps(s)]
    assert glue, "no key policy statement for the Glue role"
    assert resources_of_type(foundation, "AWS::KMS::Alias")


def _buckets(foundation) -> dict:
    buckets = resources_of_type(foundation, "AWS::S3::Bucket")
    named = {output_resource(foundation, name) for name in VERSIONED_BUCKET_OUTPUTS + (TEMP_BUCKET_OUTPUT,)}
    assert set(buckets) == named, "every bucket is one of raw, curated, artifacts, temp"
    return buckets


def test_every_bucket_is_kms_encrypted_and_private(foundation):
    key_id = output_resource(foundation, "KmsKeyArn")
    for name, bucket in _buckets(foundation).items():
        properties = bucket["Properties"]
        assert "BucketName" not in properties or "${AWS::" in render(properties["BucketName"]), name
        (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms", name
        assert key_id in render(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]), name
        assert rule["BucketKeyEnabled"] is True, name
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name


def test_every_bucket_denies_requests_without_tls(foundation):
    policies = resources_of_type(foundation, "AWS::S3::BucketPolicy").values()
    for name in _buckets(foundation):
        statements = [
            statement
            for policy in policies
            if is_ref(policy["Properties"]["Bucket"], name)
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        tls_only = [
            s
            for s in statements
            if s["Effect"] == "Deny"
            and s["Principal"] in ("*", {"AWS": "*"})
            and "s3:*" in as_list(s["Action"])
            and str(s["Condition"]["Bool"]["aws:SecureTransport"]).lower() == "false"
        ]
        assert tls_only, f"{name} has no TLS-only bucket policy"
        covered = {render(r) for s in tls_only for r in as_list(s["Resource"])}
        assert {f"${{{name}.Arn}}", f"${{{name}.Arn}}/*"} <= covered, (name, covered)


def test_data_buckets_are_versioned_and_temp_expires(foundation):
    for output in VERSIONED_BUCKET_OUTPUTS:
        properties = foundation["Resources"][output_resource(foundation, output)]["Properties"]
        assert properties["VersioningConfiguration"]["Status"] == "Enabled", output
        rules = properties["LifecycleConfiguration"]["Rules"]
        assert any("NoncurrentVersionExpiration" in r and r["Status"] == "Enabled" for r in rules), output
    temp = foundation["Resources"][output_resource(foundation, TEMP_BUCKET_OUTPUT)]["Properties"]
    rules = temp["LifecycleConfiguration"]["Rules"]
    assert any(is_ref(r.get("ExpirationInDays"), "TempExpiryDays") and r["Status"] == "Enabled" for r in rules)


def _role_statements(template: dict):
    for name, role in resources_of_type(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in as_list(policy["PolicyDocument"]["Statement"]):
                yield name, statement
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, policy in resources_of_type(template, kind).items():
            for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"]):
                yield name, statement


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_s3_or_glue_action_on_a_wildcard_resource(path):
    template = load_template(path)
    for name, statement in _role_statements(template):
        if statement["Effect"] != "Allow":
            continue
        actions = [a.lower() for a in as_list(statement["Action"])]
        scoped = [a for a in actions if a.split(":")[0] in ("s3", "glue") or a == "*"]
        if not scoped:
            continue
        assert not any(a in ("*", "s3:*", "glue:*") for a in scoped), (name, statement.get("Sid"), scoped)
        for resource in map(render, as_list(statement["Resource"])):
            assert resource != "*", (name, statement.get("Sid"), scoped)
            assert not resource.startswith("arn:aws:s3:::*"), (name, resource)
            assert "database/*" not in resource and "table/*" not in resource, (name, resource)
    for role in resources_of_type(template, "AWS::IAM::Role").values():
        managed = json.dumps(role["Properties"].get("ManagedPolicyArns", []))
        assert "AWSGlueServiceRole" not in managed


def test_glue_role_is_for_glue_and_reaches_only_this_project(foundation):
    role_id = output_resource(foundation, "GlueRoleArn")
    role = foundation["Resources"][role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "glue.amazonaws.com"}
    statements = [s for name, s in _role_statements(foundation) if name == role_id]
    granted = {}
    for statement in statements:
        for action in as_list(statement["Action"]):
            granted.setdefault(action, set()).update(map(render, as_list(statement["Resource"])))

    database = "${DatabaseName}"
    catalog_actions = (
        "GetDatabase GetTable GetTables CreateTable UpdateTable GetPartition GetPartitions "
        "BatchGetPartition CreatePartition BatchCreatePartition UpdatePartition DeletePartition "
        "BatchDeletePartition"
    ).split()
    for action in catalog_actions:
        resources = granted[f"glue:{action}"]
        assert any(r.endswith(f":table/{database}/*") for r in resources) or action == "GetDatabase"
        assert any(r.endswith(f":database/{database}") for r in resources), action
    # Iceberg's GlueCatalog (both jobs): on the catalog, this database and its tables only
    # ("default" only for the session's start-up lookup, GetDatabase).
    catalog = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:"
    ours = {f"{catalog}catalog", f"{catalog}database/{database}", f"{catalog}table/{database}/*"}
    for action in ("GetDatabase", "GetTable", "GetTables", "CreateTable", "UpdateTable"):
        resources = granted[f"glue:{action}"]
        assert ours <= resources, (action, ours - resources)
        assert resources - ours <= ({f"{catalog}database/default"} if action == "GetDatabase" else set()), action
    # The transform writes curated_days, the summary reads them: this project's workflow only.
    for action in ("glue:GetWorkflowRunProperties", "glue:PutWorkflowRunProperties", "glue:GetWorkflowRun"):
        assert granted[action] == {f"{catalog}workflow/${{ProjectName}}-workflow"}, action
    raw = "${" + output_resource(foundation, "RawBucketName") + ".Arn}"
    curated = "${" + output_resource(foundation, "CuratedBucketName") + ".Arn}"
    assert granted["s3:GetObject"] >= {f"{raw}/${{RawPrefix}}*", f"{curated}/*"}
    assert f"{curated}/*" in granted["s3:PutObject"] and f"{curated}/*" in granted["s3:DeleteObject"]
    # S3FileIO's part uploads, and the maintenance job's search for orphan files.
    assert f"{curated}/*" in granted["s3:AbortMultipartUpload"]
    assert curated in granted["s3:ListBucket"]
    assert not any(r.startswith(raw) for r in granted["s3:PutObject"] | granted["s3:DeleteObject"])
    metrics = next(s for s in statements if "cloudwatch:PutMetricData" in as_list(s["Action"]))
    assert metrics["Condition"]["StringEquals"]["cloudwatch:namespace"] == "Glue"
    key = "${" + output_resource(foundation, "KmsKeyArn") + ".Arn}"
    for action in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"):
        assert granted[action] == {key}, action


def _role_grants(foundation) -> dict:
    """{action: resource patterns} of the Glue role's Allow statements."""
    role_id = output_resource(foundation, "GlueRoleArn")
    granted = {}
    for name, statement in _role_statements(foundation):
        if name == role_id and statement["Effect"] == "Allow":
            for action in as_list(statement["Action"]):
                granted.setdefault(action, set()).update(map(render, as_list(statement["Resource"])))
    return granted


def _allowed(granted: dict, action: str, arn: str) -> bool:
    return any(fnmatchcase(arn, pattern) for pattern in granted.get(action, ()))


def _bucket_arn(foundation, location: str) -> tuple:
    """s3://${XBucketName}/${Prefix} -> (the foundation's ${X.Arn}, ${Prefix})."""
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    output = bucket.removeprefix("${").removesuffix("}")
    return "${" + output_resource(foundation, output) + ".Arn}", prefix


@pytest.mark.parametrize("job", JOBS)
def test_the_glue_role_reaches_what_each_job_names_and_the_workflow_it_runs_in(foundation, workflow, job):
    """Read from the jobs' arguments: the catalog tables they read and write, the S3
    location a job creates its table at; and the run properties of the workflow."""
    granted = _role_grants(foundation)
    arguments = {k: render(v) for k, v in workflow["Resources"][job]["Properties"]["DefaultArguments"].items()}
    for argument, actions in (
        ("--source_table", ("GetTable",)),
        ("--target_table", ("GetTable", "CreateTable", "UpdateTable")),
    ):
        if argument not in arguments:
            continue
        names = arguments[argument].split(",")  # the maintenance job's several tables
        if job == "TransformJob" and argument == "--target_table":
            names.append(f"{names[0].split('.')[0]}.{locations.TABLE_NAME}")  # kept beside it
        for name in names:
            database, table = name.split(".")
            for action in actions:
                assert _allowed(granted, f"glue:{action}", f"{GLUE_ARN}table/{database}/{table}"), (name, action)
            assert _allowed(granted, "glue:GetDatabase", f"{GLUE_ARN}database/{database}"), name
    if "--target_path" in arguments:
        bucket, prefix = _bucket_arn(foundation, arguments["--target_path"])
        for action in ("GetObject", "PutObject", "DeleteObject", "AbortMultipartUpload"):
            for key in ("metadata/00001-a.metadata.json", "data/day=2020-04-06/00000-1.parquet"):
                assert _allowed(granted, f"s3:{action}", f"{bucket}/{prefix}{key}"), (action, key)
        assert _allowed(granted, "s3:ListBucket", bucket)
    workflow_arn = f"{GLUE_ARN}workflow/{render(workflow['Resources']['TrafficWorkflow']['Properties']['Name'])}"
    for action in ("GetWorkflowRunProperties", "PutWorkflowRunProperties"):
        assert _allowed(granted, f"glue:{action}", workflow_arn), action


def test_security_configuration_encrypts_everything_with_the_key(foundation):
    config_id = output_resource(foundation, "SecurityConfigurationName")
    encryption = foundation["Resources"][config_id]["Properties"]["EncryptionConfiguration"]
    key = "${" + output_resource(foundation, "KmsKeyArn") + ".Arn}"
    (s3,) = encryption["S3Encryptions"]
    assert (s3["S3EncryptionMode"], render(s3["KmsKeyArn"])) == ("SSE-KMS", key)
    cloudwatch = encryption["CloudWatchEncryption"]
    assert (cloudwatch["CloudWatchEncryptionMode"], render(cloudwatch["KmsKeyArn"])) == ("SSE-KMS", key)
    bookmarks = encryption["JobBookmarksEncryption"]
    assert (bookmarks["JobBookmarksEncryptionMode"], render(bookmarks["KmsKeyArn"])) == ("CSE-KMS", key)


# --- workflow: tables, crawler, job, triggers -----------------------------------------------


def _table(workflow_resources, logical_id: str) -> dict:
    resource = workflow_resources[logical_id]
    assert resource["Type"] == "AWS::Glue::Table"
    return resource["Properties"]["TableInput"]


def _columns(columns: list) -> list:
    return [(column["Name"], column["Type"]) for column in columns]


def test_raw_table_has_the_raw_schema_and_processing_hour_folders(workflow_resources):
    table = _table(workflow_resources, "RawTable")
    assert table["Name"] == RAW_TABLE
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert _columns(table["StorageDescriptor"]["Columns"]) == glue_columns(schema.RAW_SCHEMA)
    assert _columns(table["PartitionKeys"]) == [
        (name, RAW_PARTITION_TYPE) for name in schema.PROCESSING_PARTITIONS
    ]
    assert "Parquet" in table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    assert render(table["StorageDescriptor"]["Location"]) == "s3://${RawBucketName}/${RawPrefix}"


def test_curated_table_is_left_to_the_transform_job_to_create(workflow, workflow_resources):
    """An Iceberg table that the transform job creates at its --target_path on its first
    run (schema and partitioning from traffic_glue): the template declares no table."""
    tables = [r["Properties"]["TableInput"]["Name"] for r in workflow_resources.values()
              if r["Type"] == "AWS::Glue::Table"]
    assert tables == [RAW_TABLE]
    arguments = workflow_resources["TransformJob"]["Properties"]["DefaultArguments"]
    assert render(arguments["--target_table"]) == f"${{DatabaseName}}.{CURATED_TABLE}"
    assert render(arguments["--target_path"]) == CURATED_LOCATION
    assert arguments["--table_format"] == "iceberg"
    output = workflow["Outputs"]["CuratedTableName"]
    assert render(output["Value"]) == render(arguments["--target_table"])
    assert "Iceberg" in output["Description"]


def test_raw_crawler_adds_new_folders_to_the_raw_table_without_changing_it(workflow_resources):
    crawler = workflow_resources["RawCrawler"]
    assert crawler["Type"] == "AWS::Glue::Crawler"
    properties = crawler["Properties"]
    assert properties["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}
    assert properties["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
    configuration = json.loads(properties["Configuration"])
    assert configuration["Version"] == 1.0
    assert configuration["CrawlerOutput"]["Partitions"]["AddOrUpdateBehavior"] == "InheritFromTable"
    assert configuration["Grouping"]["TableGroupingPolicy"] == "CombineCompatibleSchemas"
    # The crawler finds RawTable by location: its one S3 target is the table's location.
    raw_location = _table(workflow_resources, "RawTable")["StorageDescriptor"]["Location"]
    (target,) = properties["Targets"]["S3Targets"]
    assert target["Path"] == raw_location
    assert is_ref(properties["DatabaseName"], "DatabaseName")
    assert is_ref(properties["CrawlerSecurityConfiguration"], "SecurityConfigurationName")
    assert is_ref(properties["Role"], "GlueRoleArn")


def test_transform_job_runs_one_at_a_time_on_glue_5_1_with_the_library(workflow, workflow_resources):
    job = workflow_resources["TransformJob"]
    assert job["Type"] == "AWS::Glue::Job"
    properties = job["Properties"]
    assert properties["GlueVersion"] == GLUE_VERSION
    assert properties["ExecutionProperty"]["MaxConcurrentRuns"] == 1
    assert properties["Command"]["Name"] == "glueetl"
    assert str(properties["Command"]["PythonVersion"]) == "3"
    assert is_ref(properties["SecurityConfiguration"], "SecurityConfigurationName")
    assert properties["MaxRetries"] == 0
    arguments = properties["DefaultArguments"]
    assert render(arguments["--extra-py-files"]) == "s3://${ArtifactsBucketName}/${LibraryKey}"
    assert render(arguments["--source_table"]) == f"${{DatabaseName}}.{RAW_TABLE}"
    assert render(arguments["--target_table"]) == f"${{DatabaseName}}.{CURATED_TABLE}"
    assert arguments["--enable-glue-datacatalog"] == "true"
    assert is_ref(arguments["--semantics"], "Semantics")
    # docs/SEMANTICS.md: the two modes, `corrected` the default.
    semantics = workflow["Parameters"]["Semantics"]
    assert set(semantics["AllowedValues"]) == {"corrected", "athena"}
    assert semantics["Default"] == "corrected"


def test_summary_job_reads_the_curated_table_and_creates_its_own_beside_it(workflow, workflow_resources):
    job = workflow_resources["SummaryJob"]
    assert job["Type"] == "AWS::Glue::Job"
    properties = job["Properties"]
    assert render(properties["Name"]) == "${ProjectName}-daily-summary"
    assert properties["GlueVersion"] == GLUE_VERSION
    assert properties["Command"]["Name"] == "glueetl"
    assert str(properties["Command"]["PythonVersion"]) == "3"
    assert render(properties["Command"]["ScriptLocation"]) == "s3://${ArtifactsBucketName}/${SummaryScriptKey}"
    script_key = workflow["Parameters"]["SummaryScriptKey"]["Default"]
    assert script_key == "glue/traffic_daily_summary.py"
    assert (ROOT / "glue_jobs" / script_key.rsplit("/", 1)[-1]).is_file(), script_key
    assert is_ref(properties["Role"], "GlueRoleArn")
    assert is_ref(properties["SecurityConfiguration"], "SecurityConfigurationName")
    assert properties["WorkerType"] == "G.1X"
    assert is_ref(properties["NumberOfWorkers"], "SummaryNumberOfWorkers")
    assert is_ref(properties["Timeout"], "SummaryTimeoutMinutes")
    assert properties["ExecutionProperty"]["MaxConcurrentRuns"] == 1
    assert properties["MaxRetries"] == 0
    parameters = workflow["Parameters"]
    workers = parameters["SummaryNumberOfWorkers"]
    assert (workers["Type"], int(workers["Default"]), int(workers["MinValue"])) == ("Number", 2, 2)
    timeout = parameters["SummaryTimeoutMinutes"]
    assert timeout["Type"] == "Number" and 0 < int(timeout["Default"]) <= 60 and int(timeout["MinValue"]) >= 1

    arguments = properties["DefaultArguments"]
    transform = workflow_resources["TransformJob"]["Properties"]["DefaultArguments"]
    assert {key: arguments[key] for key in GLUE_RUN_ARGUMENTS} == {key: transform[key] for key in GLUE_RUN_ARGUMENTS}
    # Only what the summary's parser takes (traffic_glue.runtime.arguments.SUMMARY_ARGUMENTS):
    # none of the transform's own arguments.
    assert set(arguments) - set(GLUE_RUN_ARGUMENTS) == {"--source_table", "--target_table", "--target_path"}
    assert arguments["--source_table"] == transform["--target_table"]
    assert render(arguments["--target_table"]) == f"${{DatabaseName}}.{SUMMARY_TABLE}"
    assert render(arguments["--target_path"]) == SUMMARY_LOCATION
    summary_prefix, curated_prefix = parameters["SummaryPrefix"], parameters["CuratedPrefix"]
    assert summary_prefix["Default"] == "daily_summary/"
    assert summary_prefix["AllowedPattern"] == curated_prefix["AllowedPattern"]
    assert not summary_prefix["Default"].startswith(curated_prefix["Default"])
    # Two tables at one location would share data/ (and the curated table's maintenance
    # would take the summary's files for orphans): the stack refuses equal prefixes.
    assertions = [a["Assert"] for rule in workflow["Rules"].values() for a in rule["Assertions"]]
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "SummaryPrefix"}, {"Ref": "CuratedPrefix"}]}]} in assertions

    outputs = workflow["Outputs"]
    assert render(outputs["SummaryJobName"]["Value"]) == "${SummaryJob}"
    assert render(outputs["SummaryTableName"]["Value"]) == render(arguments["--target_table"])
    assert "Iceberg" in outputs["SummaryTableName"]["Description"]


def _spark_conf(value: str) -> dict:
    """Glue's --conf value `k1=v1 --conf k2=v2 ...` as {k: v}; a key set twice fails."""
    pairs = [item.partition("=") for item in value.split(" --conf ")]
    assert all(sep and key and " " not in key for key, sep, _ in pairs), value
    keys = [key for key, _, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key set twice: {keys}"
    return {key: conf_value for key, _, conf_value in pairs}


@pytest.mark.parametrize("job", JOBS)
def test_each_job_runs_on_the_iceberg_session_catalog_of_the_library(workflow_resources, job):
    """The one definition of the catalog settings is traffic_glue.store.iceberg; the job's
    --conf must say exactly that, with the curated table's location as warehouse."""
    arguments = workflow_resources[job]["Properties"]["DefaultArguments"]
    assert arguments["--datalake-formats"] == "iceberg"
    assert arguments["--enable-glue-datacatalog"] == "true"
    assert _spark_conf(render(arguments["--conf"])) == {
        "spark.sql.session.timeZone": "UTC",
        **glue_session_catalog_conf(CURATED_LOCATION),
    }


def test_spark_conf_reads_glues_joined_conf_parameter():
    assert _spark_conf("a=1 --conf b.c=x=y") == {"a": "1", "b.c": "x=y"}
    with pytest.raises(AssertionError, match="a key set twice"):
        _spark_conf("a=1 --conf a=2")
    with pytest.raises(AssertionError):
        _spark_conf("a=1 --conf  b=2")  # two spaces: Glue would not see b


def test_maintenance_job_expires_the_snapshots_of_every_table_the_jobs_keep(workflow, workflow_resources):
    job = workflow_resources["TableMaintenanceJob"]
    assert job["Type"] == "AWS::Glue::Job"
    properties = job["Properties"]
    assert render(properties["Name"]) == "${ProjectName}-table-maintenance"
    assert properties["GlueVersion"] == GLUE_VERSION
    assert properties["Command"]["Name"] == "glueetl"
    assert str(properties["Command"]["PythonVersion"]) == "3"
    assert render(properties["Command"]["ScriptLocation"]) == "s3://${ArtifactsBucketName}/${MaintenanceScriptKey}"
    script_key = workflow["Parameters"]["MaintenanceScriptKey"]["Default"]
    assert (ROOT / "glue_jobs" / script_key.rsplit("/", 1)[-1]).is_file(), script_key
    assert is_ref(properties["Role"], "GlueRoleArn")
    assert is_ref(properties["SecurityConfiguration"], "SecurityConfigurationName")
    assert (properties["WorkerType"], properties["NumberOfWorkers"]) == ("G.1X", 2)
    assert properties["ExecutionProperty"]["MaxConcurrentRuns"] == 1
    assert properties["MaxRetries"] == 0
    assert 0 < properties["Timeout"] <= 60
    arguments = properties["DefaultArguments"]
    assert render(arguments["--extra-py-files"]) == "s3://${ArtifactsBucketName}/${LibraryKey}"
    # Every Iceberg table the jobs keep: the transform's, the locations table beside it
    # (locations.TABLE_NAME, in its database), the summary's.
    transform = workflow_resources["TransformJob"]["Properties"]["DefaultArguments"]
    summary = workflow_resources["SummaryJob"]["Properties"]["DefaultArguments"]
    curated = render(transform["--target_table"])
    assert render(arguments["--target_table"]).split(",") == [
        curated, f"{curated.rsplit('.', 1)[0]}.{locations.TABLE_NAME}", render(summary["--target_table"])]
    assert is_ref(arguments["--retention_days"], "SnapshotRetentionDays")
    retention = workflow["Parameters"]["SnapshotRetentionDays"]
    assert retention["Type"] == "Number"
    assert int(retention["Default"]) == maintenance.DEFAULT_RETENTION_DAYS
    assert int(retention["MinValue"]) == 1
    assert render(workflow["Outputs"]["MaintenanceJobName"]["Value"]) == "${TableMaintenanceJob}"


def test_maintenance_runs_weekly_outside_the_workflow(workflow_resources):
    trigger = workflow_resources["MaintenanceSchedule"]
    assert trigger["Type"] == "AWS::Glue::Trigger"
    properties = trigger["Properties"]
    assert "WorkflowName" not in properties  # a daily run neither waits for it nor fails with it
    assert properties["Type"] == "SCHEDULED"
    assert properties["StartOnCreation"] is True
    assert properties["Actions"] == [{"JobName": {"Ref": "TableMaintenanceJob"}}]
    # Glue's cron: minutes hours day-of-month month day-of-week year; one day of the week.
    fields = properties["Schedule"].removeprefix("cron(").removesuffix(")").split()
    assert len(fields) == 6 and fields[2] == "?" and fields[4] in ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def test_workflow_runs_one_at_a_time(workflow_resources):
    workflows = {n: r for n, r in workflow_resources.items() if r["Type"] == "AWS::Glue::Workflow"}
    assert list(workflows) == ["TrafficWorkflow"]
    assert workflows["TrafficWorkflow"]["Properties"]["MaxConcurrentRuns"] == 1


def _triggers_by_workflow(workflow_resources) -> dict:
    """{workflow logical id (None: no workflow): {trigger logical id: properties}}."""
    grouped = {}
    for name, resource in workflow_resources.items():
        if resource["Type"] == "AWS::Glue::Trigger":
            workflow = resource["Properties"].get("WorkflowName", {}).get("Ref")
            grouped.setdefault(workflow, {})[name] = resource["Properties"]
    return grouped


def test_start_triggers_crawl_and_fetch_both_start_the_transform_and_it_the_summary(workflow_resources):
    grouped = _triggers_by_workflow(workflow_resources)
    assert set(grouped) == {"TrafficWorkflow", None}
    assert set(grouped[None]) == {"MaintenanceSchedule"}
    triggers = grouped["TrafficWorkflow"]
    assert set(triggers) == {
        "ScheduledStart", "OnDemandStart", "StartTransformWhenRawCrawled", "StartSummaryWhenTransformed"}

    # Crawling and fetching the configuration are independent: Glue runs them together.
    crawl_raw = [{"CrawlerName": {"Ref": "RawCrawler"}}, {"JobName": {"Ref": "ConfigurationFetchJob"}}]
    assert triggers["ScheduledStart"]["Type"] == "SCHEDULED"
    assert is_ref(triggers["ScheduledStart"]["Schedule"], "Schedule")
    assert triggers["ScheduledStart"]["StartOnCreation"] is True
    assert triggers["ScheduledStart"]["Actions"] == crawl_raw
    assert triggers["OnDemandStart"]["Type"] == "ON_DEMAND"
    assert triggers["OnDemandStart"]["Actions"] == crawl_raw

    conditional = triggers["StartTransformWhenRawCrawled"]
    assert conditional["Type"] == "CONDITIONAL"
    assert conditional["StartOnCreation"] is True
    assert conditional["Actions"] == [{"JobName": {"Ref": "TransformJob"}}]
    assert conditional["Predicate"]["Logical"] == "AND"
    # Both: the raw partitions registered, and a configuration snapshot in place (the
    # fetch job fails only when there is none at all).
    assert conditional["Predicate"]["Conditions"] == [
        {"LogicalOperator": "EQUALS", "CrawlerName": {"Ref": "RawCrawler"}, "CrawlState": "SUCCEEDED"},
        {"LogicalOperator": "EQUALS", "JobName": {"Ref": "ConfigurationFetchJob"}, "State": "SUCCEEDED"},
    ]

    # Only a transform that succeeded has named the days it replaced (curated_days).
    summary = triggers["StartSummaryWhenTransformed"]
    assert render(summary["Name"]) == "${ProjectName}-start-daily-summary"
    assert summary["Type"] == "CONDITIONAL"
    assert summary["StartOnCreation"] is True
    assert summary["Actions"] == [{"JobName": {"Ref": "SummaryJob"}}]
    assert summary["Predicate"] == {"Logical": "AND", "Conditions": [
        {"LogicalOperator": "EQUALS", "JobName": {"Ref": "TransformJob"}, "State": "SUCCEEDED"}]}


def _depends_on(resource: dict) -> set:
    return set(as_list(resource.get("DependsOn", [])))


def test_triggers_are_created_one_at_a_time(workflow_resources):
    # Glue refuses a trigger added while another is being added to the same workflow,
    # so every two triggers of a workflow must be ordered by (transitive) DependsOn.
    # A trigger of no workflow (MaintenanceSchedule) modifies none.
    grouped = _triggers_by_workflow(workflow_resources)
    grouped.pop(None, None)
    for triggers in grouped.values():
        _assert_created_in_order(workflow_resources, set(triggers))


def _assert_created_in_order(workflow_resources, triggers: set) -> None:
    def before(name: str) -> set:
        direct = _depends_on(workflow_resources[name]) & triggers
        return direct.union(*(before(d) for d in direct))

    parallel = [
        (a, b) for a in sorted(triggers) for b in sorted(triggers)
        if a < b and a not in before(b) and b not in before(a)
    ]
    assert not parallel, f"triggers created in parallel: {parallel}"


# --- the configuration feed: fetch job, its role, the transform's snapshots ---------------


def test_fetch_job_is_a_small_python_shell_job_with_the_library_and_defusedxml(workflow, workflow_resources):
    properties = workflow_resources["ConfigurationFetchJob"]["Properties"]
    assert render(properties["Name"]) == "${ProjectName}-fetch-configuration"
    assert properties["Command"]["Name"] == "pythonshell"
    assert str(properties["Command"]["PythonVersion"]) == "3.9"
    assert properties["GlueVersion"] == "3.0"  # Python shell 3.9's
    assert properties["MaxCapacity"] == 0.0625
    assert "WorkerType" not in properties and "NumberOfWorkers" not in properties
    assert properties["ExecutionProperty"]["MaxConcurrentRuns"] == 1
    assert is_ref(properties["SecurityConfiguration"], "SecurityConfigurationName")
    assert is_ref(properties["Role"], "ConfigurationFetchRoleArn")
    assert render(properties["Command"]["ScriptLocation"]) == "s3://${ArtifactsBucketName}/${FetchScriptKey}"
    script_key = workflow["Parameters"]["FetchScriptKey"]["Default"]
    assert (ROOT / "glue_jobs" / script_key.rsplit("/", 1)[-1]).is_file(), script_key
    arguments = properties["DefaultArguments"]
    assert render(arguments["--extra-py-files"]) == "s3://${ArtifactsBucketName}/${LibraryKey}"
    import defusedxml

    assert arguments["--additional-python-modules"] == f"defusedxml=={defusedxml.__version__}"
    assert is_ref(arguments["--configuration_url"], "ConfigurationUrl")
    assert workflow["Parameters"]["ConfigurationUrl"]["Default"] == "http://miv.opendata.belfla.be/miv/configuratie/xml"
    # No Spark: none of the Spark jobs' settings.
    assert not {"--conf", "--datalake-formats", "--enable-glue-datacatalog"} & set(arguments)


def test_the_transform_reads_the_snapshots_the_fetch_job_writes(workflow_resources):
    fetch = workflow_resources["ConfigurationFetchJob"]["Properties"]["DefaultArguments"]
    transform = workflow_resources["TransformJob"]["Properties"]["DefaultArguments"]
    folder = render(fetch["--configuration_folder"])
    assert folder == "s3://${RawBucketName}/${ConfigurationPrefix}"
    assert render(transform["--configuration_path"]) == folder


def test_the_configuration_prefix_is_beside_the_raw_landing(foundation, workflow):
    for template in (foundation, workflow):
        parameters = template["Parameters"]
        assert parameters["ConfigurationPrefix"]["Default"] == "configuration/"
        assert not parameters["ConfigurationPrefix"]["Default"].startswith(parameters["RawPrefix"]["Default"])
    assert is_ref(foundation["Outputs"]["ConfigurationPrefix"]["Value"], "ConfigurationPrefix")


def _grants(foundation, role_id: str) -> dict:
    granted = {}
    for name, statement in _role_statements(foundation):
        if name == role_id and statement["Effect"] == "Allow":
            for action in as_list(statement["Action"]):
                granted.setdefault(action, set()).update(map(render, as_list(statement["Resource"])))
    return granted


def test_the_fetch_role_reads_and_adds_snapshots_under_the_prefix_only(foundation, workflow_resources):
    role_id = output_resource(foundation, "ConfigurationFetchRoleArn")
    role = foundation["Resources"][role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "glue.amazonaws.com"}
    assert "ManagedPolicyArns" not in role
    granted = _grants(foundation, role_id)
    raw = "${" + output_resource(foundation, "RawBucketName") + ".Arn}"
    artifacts = "${" + output_resource(foundation, "ArtifactsBucketName") + ".Arn}"
    snapshots = f"{raw}/${{ConfigurationPrefix}}*"
    s3 = {action: resources for action, resources in granted.items() if action.startswith("s3:")}
    # Read and add snapshots (no delete); read its script and the library; nothing else.
    assert s3 == {
        "s3:GetObject": {snapshots, f"{artifacts}/*"},
        "s3:PutObject": {snapshots},
        "s3:ListBucket": {raw},
    }
    (listing,) = [s for name, s in _role_statements(foundation)
                  if name == role_id and "s3:ListBucket" in as_list(s["Action"])]
    assert [render(p) for p in listing["Condition"]["StringLike"]["s3:prefix"]] == ["${ConfigurationPrefix}*"]
    assert not [a for a in granted if a.startswith("glue:")]
    key = "${" + output_resource(foundation, "KmsKeyArn") + ".Arn}"
    for action in ("kms:Decrypt", "kms:GenerateDataKey*"):
        assert granted[action] == {key}, action
    # The key policy names it beside the Glue role.
    key_policy = foundation["Resources"][output_resource(foundation, "KmsKeyArn")]["Properties"]["KeyPolicy"]
    assert "${ProjectName}-config-fetch-${AWS::Region}" in json.dumps(key_policy)
    assert render(role["RoleName"]) == "${ProjectName}-config-fetch-${AWS::Region}"
    # And the job the workflow runs is the one that uses it.
    assert is_ref(workflow_resources["ConfigurationFetchJob"]["Properties"]["Role"], "ConfigurationFetchRoleArn")


def test_the_glue_role_reads_the_snapshots_and_cannot_change_them(foundation):
    granted = _role_grants(foundation)
    raw = "${" + output_resource(foundation, "RawBucketName") + ".Arn}"
    snapshot = f"{raw}/${{ConfigurationPrefix}}miv-config-2024-02-01T094100Z.xml.gz"
    assert _allowed(granted, "s3:GetObject", snapshot)
    assert not _allowed(granted, "s3:PutObject", snapshot) and not _allowed(granted, "s3:DeleteObject", snapshot)
    listing = [s for name, s in _role_statements(foundation)
               if name == output_resource(foundation, "GlueRoleArn") and s.get("Sid") == "RawList"]
    assert "${ConfigurationPrefix}*" in [render(p) for p in listing[0]["Condition"]["StringLike"]["s3:prefix"]]
