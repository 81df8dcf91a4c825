"""The foundation template (infra/foundation.yaml): encryption, buckets, the Glue role and
what it reaches, the security configuration."""

import json

import pytest

from traffic_glue.store import locations
from workflows.template import load_template
from tests.template_helpers import (
    allowed,
    as_list,
    bucket_arn,
    is_ref,
    output_resource,
    render,
    resources_of_type,
    role_grants,
    role_statements,
    FOUNDATION_OUTPUTS,
    GLUE_ARN,
    JOBS,
    ROOT,
    TEMPLATES,
    TEMP_BUCKET_OUTPUT,
    VERSIONED_BUCKET_OUTPUTS,
)


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


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_s3_or_glue_action_on_a_wildcard_resource(path):
    template = load_template(path)
    for name, statement in role_statements(template):
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
    statements = [s for name, s in role_statements(foundation) if name == role_id]
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


@pytest.mark.parametrize("job", JOBS)
def test_the_glue_role_reaches_what_each_job_names_and_the_workflow_it_runs_in(foundation, workflow, job):
    """Read from the jobs' arguments: the catalog tables they read and write, the S3
    location a job creates its table at; and the run properties of the workflow."""
    granted = role_grants(foundation)
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
                assert allowed(granted, f"glue:{action}", f"{GLUE_ARN}table/{database}/{table}"), (name, action)
            assert allowed(granted, "glue:GetDatabase", f"{GLUE_ARN}database/{database}"), name
    if "--target_path" in arguments:
        bucket, prefix = bucket_arn(foundation, arguments["--target_path"])
        for action in ("GetObject", "PutObject", "DeleteObject", "AbortMultipartUpload"):
            for key in ("metadata/00001-a.metadata.json", "data/day=2020-04-06/00000-1.parquet"):
                assert allowed(granted, f"s3:{action}", f"{bucket}/{prefix}{key}"), (action, key)
        assert allowed(granted, "s3:ListBucket", bucket)
    workflow_arn = f"{GLUE_ARN}workflow/{render(workflow['Resources']['TrafficWorkflow']['Properties']['Name'])}"
    for action in ("GetWorkflowRunProperties", "PutWorkflowRunProperties"):
        assert allowed(granted, f"glue:{action}", workflow_arn), action


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
