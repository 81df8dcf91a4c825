"""The alerts and the Spark UI in the templates: which Glue events and run metrics reach
the alerts topic of workflows/traffic_workflow.yaml, who may publish to it and use its key
(infra/foundation.yaml), the metrics the Glue role may put, where the Spark jobs write their
event logs.

The same rules on moto's EventBridge, SNS and SQS: tests/test_alerts_delivery.py."""

import json
import re
from fnmatch import fnmatchcase

import pytest

from traffic_glue.runtime import metrics
from tools import stacks
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
    JOBS,
)


TOPIC = "AlertsTopic"
# Where the transform puts its run's figures (RunSucceeded, RejectedPercent, ...): the
# alarms watch them there.
METRIC_NAMESPACE, METRIC_DIMENSION = metrics.NAMESPACE, metrics.JOB_NAME
# How a Glue job run ends when it did not succeed (Glue's JobRunState).
JOB_ENDED_BADLY = {"FAILED", "TIMEOUT", "STOPPED", "ERROR"}
# Every job of the stack, each alerting when a run ends badly.
STACK_JOBS = {"TransformJob", "SummaryJob", "ConfigurationFetchJob", "TableMaintenanceJob"}
# CloudWatch's limits on an alarm's window (PutMetricAlarm: Period x EvaluationPeriods at
# most 7 days for periods of an hour or more, one day for shorter ones).
SEVEN_DAYS, ONE_DAY = 7 * 86_400, 86_400

# The events as Glue sends them (AWS Glue developer guide, "Automating AWS Glue with
# EventBridge"; EventBridge events reference, AWS Glue events).
JOB_FAILED = {
    "version": "0", "id": "abcdef00-1234-5678-9abc-def012345678",
    "detail-type": "Glue Job State Change", "source": "aws.glue", "account": "123456789012",
    "time": "2026-03-04T04:35:12Z", "region": "eu-west-1", "resources": [],
    "detail": {"jobName": "traffic-glue-transform", "severity": "ERROR", "state": "FAILED",
               "jobRunId": "jr_3c9c24f19d1d2d5f4", "message": "Command failed with exit code 1"},
}
CRAWLER_FAILED = {
    "version": "0", "id": "f7965b59-470f-2e06-bb89-a8cebaabefac",
    "detail-type": "Glue Crawler State Change", "source": "aws.glue", "account": "123456789012",
    "time": "2026-03-04T04:31:08Z", "region": "eu-west-1", "resources": [],
    "detail": {"crawlerName": "traffic-glue-raw-crawler", "errorMessage": "Internal Service Exception",
               "accountId": "123456789012", "state": "Failed", "message": "Crawler Failed",
               "cloudWatchLogLink": "https://console.aws.amazon.com/cloudwatch/home"},
}


# --- helpers -----------------------------------------------------------------------------


def _rules(workflow) -> dict:
    return resources_of_type(workflow, "AWS::Events::Rule")


def _alarms(workflow) -> dict:
    return resources_of_type(workflow, "AWS::CloudWatch::Alarm")


def _rule(workflow, detail_type: str) -> dict:
    (rule,) = [r["Properties"] for r in _rules(workflow).values()
               if r["Properties"]["EventPattern"]["detail-type"] == [detail_type]]
    return rule


def _topic_target(rule: dict) -> dict:
    (target,) = rule["Targets"]
    assert is_ref(target["Arn"], TOPIC)
    return target


def transformed(transformer: dict, event: dict):
    """What EventBridge hands the target: the template with each <variable> replaced by
    the value at its path (dot notation) in the event, read as JSON."""
    text = transformer["InputTemplate"]
    for variable, path in transformer["InputPathsMap"].items():
        value = event
        for key in path.removeprefix("$.").split("."):
            value = value[key]
        text = text.replace(f"<{variable}>", str(value))
    return json.loads(text)


def _key_statement(foundation, service: str) -> dict:
    key = foundation["Resources"][output_resource(foundation, "KmsKeyArn")]["Properties"]
    (statement,) = [s for s in key["KeyPolicy"]["Statement"]
                    if s["Principal"].get("Service") == service]
    return statement


def _topic_arn(workflow) -> str:
    """The topic's ARN as the key policy writes it, from the topic's name."""
    name = render(workflow["Resources"][TOPIC]["Properties"]["TopicName"])
    return f"arn:${{AWS::Partition}}:sns:${{AWS::Region}}:${{AWS::AccountId}}:{name}"


# --- the rules ---------------------------------------------------------------------------


def test_every_rule_and_alarm_notifies_the_alerts_topic(workflow):
    assert set(_rules(workflow)) == {"JobEndedBadlyRule", "CrawlerFailedRule"}
    for name, rule in _rules(workflow).items():
        assert rule["Properties"]["State"] == "ENABLED", name
        _topic_target(rule["Properties"])
    assert set(_alarms(workflow)) == {"TransformNotSucceededAlarm", "RejectedShareAlarm"}
    for name, alarm in _alarms(workflow).items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": TOPIC}], name


def test_a_run_of_a_job_of_this_stack_that_ends_badly_is_an_alert(workflow):
    pattern = _rule(workflow, "Glue Job State Change")["EventPattern"]
    assert set(pattern) == {"source", "detail-type", "detail"}
    assert pattern["source"] == ["aws.glue"]
    assert set(pattern["detail"]) == {"jobName", "state"}
    # Exactly this stack's jobs, each by its name (Ref of a Glue job): never another
    # stack's, never a prefix.
    jobs = resources_of_type(workflow, "AWS::Glue::Job")
    assert set(jobs) == STACK_JOBS
    assert sorted(pattern["detail"]["jobName"], key=json.dumps) == sorted(
        ({"Ref": job} for job in jobs), key=json.dumps)
    assert all(render(job["Properties"]["Name"]).startswith("${ProjectName}-") for job in jobs.values())
    assert set(pattern["detail"]["state"]) == JOB_ENDED_BADLY
    assert len(pattern["detail"]["state"]) == len(JOB_ENDED_BADLY)


def test_a_failed_crawl_of_this_stacks_crawler_is_an_alert(workflow):
    pattern = _rule(workflow, "Glue Crawler State Change")["EventPattern"]
    assert pattern == {
        "source": ["aws.glue"],
        "detail-type": ["Glue Crawler State Change"],
        "detail": {"crawlerName": [{"Ref": "RawCrawler"}], "state": ["Failed"]},
    }
    assert list(resources_of_type(workflow, "AWS::Glue::Crawler")) == ["RawCrawler"]


@pytest.mark.parametrize("detail_type, event, words", [
    ("Glue Job State Change", JOB_FAILED,
     ["traffic-glue-transform", "FAILED", "jr_3c9c24f19d1d2d5f4", "Command failed with exit code 1"]),
    ("Glue Crawler State Change", CRAWLER_FAILED,
     ["traffic-glue-raw-crawler", "Failed", "Internal Service Exception"]),
])
def test_each_alert_is_one_line_naming_what_ended_how(workflow, detail_type, event, words):
    """The InputTransformer applied to the event as Glue documents it (moto applies it
    too, tests/test_alerts_delivery.py): a JSON string template, so the topic gets text."""
    transformer = _topic_target(_rule(workflow, detail_type))["InputTransformer"]
    assert all(re.fullmatch(r"\$\.detail\.\w+", path) for path in transformer["InputPathsMap"].values())
    assert all(path.removeprefix("$.detail.") in event["detail"]
               for path in transformer["InputPathsMap"].values())
    message = transformed(transformer, event)
    assert isinstance(message, str) and "\n" not in message and len(message) < 200, message
    positions = [message.index(word) for word in words]
    assert positions == sorted(positions), message
    if detail_type == "Glue Job State Change":
        assert message == ("Glue job traffic-glue-transform ended FAILED (run jr_3c9c24f19d1d2d5f4): "
                           "Command failed with exit code 1")


# --- the alarms --------------------------------------------------------------------------


def test_an_alarm_when_no_transform_has_succeeded_for_a_day_and_a_bit(workflow):
    alarm = workflow["Resources"]["TransformNotSucceededAlarm"]["Properties"]
    assert {key: alarm[key] for key in (
        "Namespace", "MetricName", "Dimensions", "Statistic", "Period", "EvaluationPeriods",
        "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData",
    )} == {
        "Namespace": METRIC_NAMESPACE,
        "MetricName": "RunSucceeded",
        "Dimensions": [{"Name": METRIC_DIMENSION, "Value": {"Ref": "TransformJob"}}],
        "Statistic": "Sum",
        "Period": 3600,
        "EvaluationPeriods": 26,
        "DatapointsToAlarm": 26,
        "Threshold": 1,
        "ComparisonOperator": "LessThanThreshold",
        # An hour without a successful run puts nothing: that counts against it.
        "TreatMissingData": "breaching",
    }
    # And says so again when a run succeeds.
    assert alarm["OKActions"] == [{"Ref": TOPIC}]


def test_an_alarm_when_a_run_rejects_too_large_a_share_of_its_readings(workflow):
    alarm = workflow["Resources"]["RejectedShareAlarm"]["Properties"]
    assert {key: alarm[key] for key in (
        "Namespace", "MetricName", "Dimensions", "Statistic", "Period", "Threshold",
        "ComparisonOperator", "TreatMissingData",
    )} == {
        "Namespace": METRIC_NAMESPACE,
        "MetricName": "RejectedPercent",
        "Dimensions": [{"Name": METRIC_DIMENSION, "Value": {"Ref": "TransformJob"}}],
        "Statistic": "Maximum",
        "Period": 3600,
        "Threshold": {"Ref": "RejectedPercentThreshold"},
        "ComparisonOperator": "GreaterThanThreshold",
        # One datapoint per run: an hour without a run is no news.
        "TreatMissingData": "notBreaching",
    }
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (1, 1)
    assert "OKActions" not in alarm  # it returns to OK an hour after any bad run
    threshold = workflow["Parameters"]["RejectedPercentThreshold"]
    assert (threshold["Type"], threshold["Default"], threshold["MinValue"], threshold["MaxValue"]) == (
        "Number", 5, 0, 100)


@pytest.mark.parametrize("alarm", ["TransformNotSucceededAlarm", "RejectedShareAlarm"])
def test_each_alarm_window_is_one_cloudwatch_accepts(workflow, alarm):
    properties = workflow["Resources"][alarm]["Properties"]
    period, periods = properties["Period"], properties["EvaluationPeriods"]
    assert period % 60 == 0
    assert period * periods <= (SEVEN_DAYS if period >= 3600 else ONE_DAY)
    assert 1 <= properties["DatapointsToAlarm"] <= periods
    assert "${TransformJob}" in render(properties["AlarmDescription"])


# --- the topic, who may publish, the key -------------------------------------------------


def test_the_topic_is_encrypted_with_the_foundations_key(foundation, workflow):
    topic = workflow["Resources"][TOPIC]["Properties"]
    assert is_ref(topic["KmsMasterKeyId"], "KmsKeyArn")
    assert render(topic["TopicName"]) == "${ProjectName}-alerts"
    # The key is the foundation's, passed by tools/deploy.py like its other outputs.
    assert "Default" not in workflow["Parameters"]["KmsKeyArn"]
    assert "KmsKeyArn" in stacks.SHARED_OUTPUTS
    assert output_resource(foundation, "KmsKeyArn") == "KmsKey"
    output = workflow["Outputs"]["AlertsTopicArn"]
    assert is_ref(output["Value"], TOPIC)


def test_only_this_stacks_rules_and_alarms_may_publish_to_the_topic(workflow):
    (policy,) = resources_of_type(workflow, "AWS::SNS::TopicPolicy").values()
    properties = policy["Properties"]
    assert properties["Topics"] == [{"Ref": TOPIC}]
    statements = properties["PolicyDocument"]["Statement"]
    by_service = {s["Principal"]["Service"]: s for s in statements}
    assert len(by_service) == len(statements) == 2
    publishers = {"events.amazonaws.com": _rules(workflow), "cloudwatch.amazonaws.com": _alarms(workflow)}
    for service, resources in publishers.items():
        statement = by_service[service]
        assert (statement["Effect"], statement["Action"]) == ("Allow", "sns:Publish"), service
        assert is_ref(statement["Resource"], TOPIC)
        source_arns = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        assert sorted(source_arns, key=json.dumps) == sorted(
            ({"Fn::GetAtt": [name, "Arn"]} for name in resources), key=json.dumps), service
    alarms = by_service["cloudwatch.amazonaws.com"]["Condition"]
    assert is_ref(alarms["StringEquals"]["aws:SourceAccount"], "AWS::AccountId")


def test_the_key_lets_the_publishers_use_it_for_the_alerts_topic_only(foundation, workflow):
    for service in ("events.amazonaws.com", "cloudwatch.amazonaws.com"):
        statement = _key_statement(foundation, service)
        assert statement["Effect"] == "Allow"
        assert sorted(as_list(statement["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"], service
        context = statement["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"]
        assert render(context) == _topic_arn(workflow), service
    # EventBridge's key request carries no aws:SourceArn or aws:SourceAccount: a condition
    # on them would drop every alert.
    assert set(_key_statement(foundation, "events.amazonaws.com")["Condition"]) == {"StringEquals"}
    alarms = _key_statement(foundation, "cloudwatch.amazonaws.com")["Condition"]
    assert is_ref(alarms["StringEquals"]["aws:SourceAccount"], "AWS::AccountId")
    pattern = render(alarms["ArnLike"]["aws:SourceArn"])
    assert pattern == "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${ProjectName}-*"
    for name, alarm in _alarms(workflow).items():
        arn = ("arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:"
               + render(alarm["Properties"]["AlarmName"]))
        assert fnmatchcase(arn, pattern), name


def test_a_mail_subscription_only_when_an_address_is_given(workflow):
    parameter = workflow["Parameters"]["AlertEmail"]
    assert parameter["Default"] == ""
    pattern = parameter["AllowedPattern"]
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, "traffic-ops@example.org")
    assert not re.fullmatch(pattern, "traffic ops") and not re.fullmatch(pattern, "a@b")
    assert workflow["Conditions"]["HasAlertEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlertEmail"}, ""]}]}
    (name, subscription), = resources_of_type(workflow, "AWS::SNS::Subscription").items()
    assert subscription["Condition"] == "HasAlertEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": TOPIC}, "Protocol": "email", "Endpoint": {"Ref": "AlertEmail"}}


# --- the metrics the jobs put ------------------------------------------------------------


def test_the_glue_role_puts_metrics_in_glues_and_the_jobs_namespaces_only(foundation, workflow):
    role = output_resource(foundation, "GlueRoleArn")
    cloudwatch = [s for name, s in role_statements(foundation)
                  if name == role and any(a.startswith("cloudwatch:") for a in as_list(s["Action"]))]
    namespaces = set()
    for statement in cloudwatch:
        # PutMetricData takes no resource: the namespace condition is its only scope.
        assert (statement["Effect"], as_list(statement["Action"]), statement["Resource"]) == (
            "Allow", ["cloudwatch:PutMetricData"], "*"), statement.get("Sid")
        assert list(statement["Condition"]) == ["StringEquals"]
        (key, value), = statement["Condition"]["StringEquals"].items()
        assert key == "cloudwatch:namespace"
        namespaces.update(as_list(value))
    # Glue's own job metrics (--enable-metrics), and the run metrics the alarms watch.
    assert namespaces == {"Glue", METRIC_NAMESPACE}
    assert {a["Properties"]["Namespace"] for a in _alarms(workflow).values()} == {METRIC_NAMESPACE}
    fetch = output_resource(foundation, "ConfigurationFetchRoleArn")
    assert not [s for name, s in role_statements(foundation)
                if name == fetch and any(a.startswith("cloudwatch:") for a in as_list(s["Action"]))]


# --- the Spark UI ------------------------------------------------------------------------


def _spark_jobs(workflow) -> dict:
    return {name: job for name, job in resources_of_type(workflow, "AWS::Glue::Job").items()
            if job["Properties"]["Command"]["Name"] == "glueetl"}


def test_every_spark_job_writes_its_event_logs_to_a_folder_of_its_own_in_the_temp_bucket(workflow):
    assert set(_spark_jobs(workflow)) == set(JOBS)
    folders = {}
    for name, job in _spark_jobs(workflow).items():
        arguments = job["Properties"]["DefaultArguments"]
        assert arguments["--enable-spark-ui"] == "true", name
        folders[name] = render(arguments["--spark-event-logs-path"])
        assert re.fullmatch(r"s3://\$\{TempBucketName\}/spark-events/[a-z-]+/", folders[name]), name
    assert len(set(folders.values())) == len(folders)
    assert folders["TransformJob"].endswith("/spark-events/transform/")
    # The Python shell job runs no Spark.
    fetch = workflow["Resources"]["ConfigurationFetchJob"]["Properties"]
    assert fetch["Command"]["Name"] == "pythonshell"
    assert not {"--enable-spark-ui", "--spark-event-logs-path"} & set(fetch["DefaultArguments"])


def test_the_glue_role_may_write_the_event_logs_there_and_not_beside_its_code(foundation, workflow):
    granted = role_grants(foundation)
    for name, job in _spark_jobs(workflow).items():
        bucket, folder = bucket_arn(foundation, render(job["Properties"]["DefaultArguments"]["--spark-event-logs-path"]))
        assert bucket == "${" + output_resource(foundation, "TempBucketName") + ".Arn}"
        # Spark's rolling event logs: a folder per application, files added, the old
        # ones compacted away; parts of a large one uploaded, an aborted one cleaned up.
        log = f"{bucket}/{folder}eventlog_v2_spark-0123/events_1_spark-0123"
        for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"):
            assert allowed(granted, action, log), (name, action)
        assert allowed(granted, "s3:ListBucket", bucket), name
    artifacts = "${" + output_resource(foundation, "ArtifactsBucketName") + ".Arn}"
    assert not allowed(granted, "s3:PutObject", f"{artifacts}/spark-events/transform/events_1")
