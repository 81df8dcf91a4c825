"""The workflow template (workflows/traffic_workflow.yaml): the tables, the crawler, the
jobs and their triggers, the maintenance schedule and the configuration fetch job.

Expected columns and types come from `traffic_glue.compute.schema` (the one definition of
the tables), expected partitioning from docs/SEMANTICS.md; the template is only ever the
thing under test."""

import json

import pytest

from traffic_glue.compute import schema
from traffic_glue.store import locations
from traffic_glue.jobs import maintenance
from traffic_glue.store.iceberg import glue_session_catalog_conf
from tests.template_helpers import (
    allowed,
    as_list,
    glue_columns,
    is_ref,
    output_resource,
    render,
    role_grants,
    role_statements,
    CURATED_LOCATION,
    CURATED_TABLE,
    GLUE_RUN_ARGUMENTS,
    GLUE_VERSION,
    JOBS,
    RAW_PARTITION_TYPE,
    RAW_TABLE,
    ROOT,
    SPARK_UI_ARGUMENTS,
    SUMMARY_LOCATION,
    SUMMARY_TABLE,
)


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
    assert "--table_format" not in arguments  # Iceberg is the only format
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
    assert set(arguments) - set(GLUE_RUN_ARGUMENTS) - set(SPARK_UI_ARGUMENTS) == {
        "--source_table", "--target_table", "--target_path"}
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


def test_the_fetch_role_reads_and_adds_snapshots_under_the_prefix_only(foundation, workflow_resources):
    role_id = output_resource(foundation, "ConfigurationFetchRoleArn")
    role = foundation["Resources"][role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "glue.amazonaws.com"}
    assert "ManagedPolicyArns" not in role
    granted = role_grants(foundation, "ConfigurationFetchRoleArn")
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
    (listing,) = [s for name, s in role_statements(foundation)
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
    granted = role_grants(foundation)
    raw = "${" + output_resource(foundation, "RawBucketName") + ".Arn}"
    snapshot = f"{raw}/${{ConfigurationPrefix}}miv-config-2024-02-01T094100Z.xml.gz"
    assert allowed(granted, "s3:GetObject", snapshot)
    assert not allowed(granted, "s3:PutObject", snapshot) and not allowed(granted, "s3:DeleteObject", snapshot)
    listing = [s for name, s in role_statements(foundation)
               if name == output_resource(foundation, "GlueRoleArn") and s.get("Sid") == "RawList"]
    assert "${ConfigurationPrefix}*" in [render(p) for p in listing[0]["Condition"]["StringLike"]["s3:prefix"]]
