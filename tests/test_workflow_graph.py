"""workflows/graph.py: the graph built from the real template, walked with a fake node
runner (no Spark), and the intrinsics it resolves.

The template fixture is in conftest.py, the helpers in tests/workflow_helpers.py.
"""

from __future__ import annotations

import copy

import pytest

from workflows.graph import (
    CRAWLER,
    FAILED,
    JOB,
    PYTHON_SHELL_JOB,
    SUCCEEDED,
    Condition,
    Predicate,
    Resolver,
    TemplateError,
    local_parameters,
    walk,
)
from tests.workflow_helpers import (
    JOB_SCRIPT,
    ROOT,
    graph_of,
    summary_job,
    table_names,
    tables_of,
    transform_job,
)

class FakeNodes:
    """A node runner that records the order and returns the states it is given."""

    def __init__(self, states: dict | None = None):
        self.states, self.ran, self.fired = states or {}, [], []

    def __call__(self, node) -> str:
        self.ran.append(node.logical_id)
        return self.states.get(node.logical_id, SUCCEEDED)

    def on_fire(self, trigger) -> None:
        self.fired.append(trigger.logical_id)


# --- the graph, from the real template --------------------------------------------------


FETCH_SCRIPT = ROOT / "glue_jobs" / "traffic_fetch_configuration.py"


@pytest.mark.parametrize("trigger_type", ["ON_DEMAND", "SCHEDULED"])
def test_each_start_trigger_is_found_by_type_and_crawls_the_raw_table(template, trigger_type):
    graph = graph_of(template)
    start = graph.start_trigger(trigger_type)
    crawler, fetch = start.actions
    assert (fetch.kind, fetch.script, fetch.command) == (JOB, str(FETCH_SCRIPT), PYTHON_SHELL_JOB)
    raw_table, _ = table_names(template)
    (raw,) = [t for t in tables_of(template) if t.full_name == raw_table]
    assert crawler.kind == CRAWLER
    assert crawler.targets == (raw.location,) and crawler.database == raw.database

    # Logical ids are not what the runner goes by: renamed, the same trigger is found.
    renamed = copy.deepcopy(template)
    renamed["Resources"] = {
        (f"Trigger{i}" if r["Type"] == "AWS::Glue::Trigger" else name): r
        for i, (name, r) in enumerate(template["Resources"].items())
    }
    assert graph_of(renamed).start_trigger(trigger_type).actions == start.actions


def _started_when(graph, node) -> list:
    """The nodes started by the conditional triggers whose only condition is `node` succeeding."""
    return [
        started
        for trigger in graph.conditional_triggers
        if trigger.predicate == Predicate("AND", (Condition(node.kind, node.name, SUCCEEDED),))
        for started in trigger.actions
    ]


def test_the_crawler_and_the_fetch_succeeding_start_the_transform_and_that_the_summary(template):
    graph = graph_of(template)
    crawler, fetch = graph.start_trigger("ON_DEMAND").actions
    assert len(graph.conditional_triggers) == 2
    transform = transform_job(graph)
    (start_transform,) = [t for t in graph.conditional_triggers if transform in t.actions]
    assert start_transform.predicate == Predicate("AND", (
        Condition(CRAWLER, crawler.name, SUCCEEDED), Condition(JOB, fetch.name, SUCCEEDED)))
    assert _started_when(graph, crawler) == _started_when(graph, fetch) == []
    assert transform.kind == JOB and transform.script == str(JOB_SCRIPT) and JOB_SCRIPT.is_file()
    summary = summary_job(graph)
    assert _started_when(graph, transform) == [summary]
    assert summary.kind == JOB and summary.name == "traffic-glue-daily-summary"
    assert summary.script == str(ROOT / "glue_jobs" / "traffic_daily_summary.py")
    assert _started_when(graph, summary) == []


def test_the_summary_reads_the_transforms_table_and_writes_its_own_beside_it(template):
    graph = graph_of(template)
    transform, summary = dict(transform_job(graph).arguments), dict(summary_job(graph).arguments)
    assert summary["--source_table"] == transform["--target_table"] == "traffic.traffic_minutes"
    assert summary["--target_table"] == "traffic.daily_summary"
    assert transform["--target_path"] == "s3://local-curated-bucket/curated/"
    assert summary["--target_path"] == "s3://local-curated-bucket/daily_summary/"
    moved = dict(summary_job(graph_of(template, SummaryPrefix="summary/v2/")).arguments)
    assert moved["--target_path"] == "s3://local-curated-bucket/summary/v2/"


def test_the_weekly_maintenance_is_not_part_of_the_workflow(template):
    """Its trigger names no workflow and its job is started by no trigger of the
    workflow: the graph has neither, and a walk from either start never runs it."""
    assert "WorkflowName" not in template["Resources"]["MaintenanceSchedule"]["Properties"]
    graph = graph_of(template)
    assert "MaintenanceSchedule" not in {t.logical_id for t in graph.triggers}
    assert [n.logical_id for n in graph.nodes()] == ["RawCrawler", "ConfigurationFetchJob", "TransformJob", "SummaryJob"]
    assert graph.start_trigger("SCHEDULED").logical_id == "ScheduledStart"
    for start in ("ON_DEMAND", "SCHEDULED"):
        nodes = FakeNodes()
        walk(graph, graph.start_trigger(start), nodes)
        assert nodes.ran == ["RawCrawler", "ConfigurationFetchJob", "TransformJob", "SummaryJob"]


def test_a_start_trigger_type_the_workflow_lacks_is_an_error(template):
    with pytest.raises(TemplateError, match="exactly one EVENT trigger, has none"):
        graph_of(template).start_trigger("EVENT")


# --- walking it -------------------------------------------------------------------------


def test_walk_crawls_and_fetches_then_transforms_then_summarises(template):
    graph, nodes = graph_of(template), FakeNodes()
    ran = walk(graph, graph.start_trigger("ON_DEMAND"), nodes, nodes.on_fire)
    crawler, fetch = graph.start_trigger("ON_DEMAND").actions
    assert ran == [(crawler, SUCCEEDED), (fetch, SUCCEEDED), (transform_job(graph), SUCCEEDED),
                   (summary_job(graph), SUCCEEDED)]
    assert nodes.fired == ["OnDemandStart", "StartTransformWhenRawCrawled", "StartSummaryWhenTransformed"]


@pytest.mark.parametrize("state", ["FAILED", "TIMEOUT", "STOPPED", "ERROR"])
def test_no_summary_after_a_transform_that_did_not_succeed(template, state):
    """The summary's days are the ones a successful transform names (curated_days)."""
    graph, nodes = graph_of(template), FakeNodes({"TransformJob": state})
    ran = walk(graph, graph.start_trigger("SCHEDULED"), nodes, nodes.on_fire)
    assert [(n.logical_id, s) for n, s in ran] == [
        ("RawCrawler", SUCCEEDED), ("ConfigurationFetchJob", SUCCEEDED), ("TransformJob", state)]
    assert nodes.fired == ["ScheduledStart", "StartTransformWhenRawCrawled"]


@pytest.mark.parametrize("failed", ["RawCrawler", "ConfigurationFetchJob"])
def test_nothing_fires_after_the_crawler_or_the_fetch_fails(template, failed):
    """The fetch job fails only without any configuration snapshot (a refused response
    with a last good one is a success): then the transform does not run."""
    graph, nodes = graph_of(template), FakeNodes({failed: FAILED})
    ran = walk(graph, graph.start_trigger("SCHEDULED"), nodes, nodes.on_fire)
    assert [(n.logical_id, state) for n, state in ran] == [
        ("RawCrawler", FAILED if failed == "RawCrawler" else SUCCEEDED),
        ("ConfigurationFetchJob", FAILED if failed == "ConfigurationFetchJob" else SUCCEEDED)]
    assert nodes.fired == ["ScheduledStart"]


def with_failure_handlers(template: dict) -> dict:
    """The template plus an alert on a failed crawl and a clean-up after the transform
    whatever its outcome (Logical ANY)."""
    extended = copy.deepcopy(template)
    resources = extended["Resources"]
    for job in ("AlertJob", "CleanUpJob"):
        resources[job] = {"Type": "AWS::Glue::Job", "Properties": {
            "Name": {"Fn::Sub": "${ProjectName}-" + job.lower()},
            "Command": {"Name": "glueetl", "ScriptLocation": f"s3://bucket/{job}.py"},
        }}
    crawler, transform = {"Ref": "RawCrawler"}, {"Ref": "TransformJob"}
    resources["AlertWhenCrawlFails"] = {"Type": "AWS::Glue::Trigger", "Properties": {
        "Name": "alert", "WorkflowName": {"Ref": "TrafficWorkflow"}, "Type": "CONDITIONAL",
        "Predicate": {"Conditions": [
            {"LogicalOperator": "EQUALS", "CrawlerName": crawler, "CrawlState": "FAILED"}]},
        "Actions": [{"JobName": {"Ref": "AlertJob"}}],
    }}
    resources["CleanUpAfterTransform"] = {"Type": "AWS::Glue::Trigger", "Properties": {
        "Name": "clean-up", "WorkflowName": {"Ref": "TrafficWorkflow"}, "Type": "CONDITIONAL",
        "Predicate": {"Logical": "ANY", "Conditions": [
            {"LogicalOperator": "EQUALS", "JobName": transform, "State": state}
            for state in ("SUCCEEDED", "FAILED", "TIMEOUT")]},
        "Actions": [{"JobName": {"Ref": "CleanUpJob"}}],
    }}
    return extended


@pytest.mark.parametrize(
    "states, expected",
    [
        ({"RawCrawler": FAILED}, ["RawCrawler", "ConfigurationFetchJob", "AlertJob"]),
        ({"TransformJob": FAILED}, ["RawCrawler", "ConfigurationFetchJob", "TransformJob", "CleanUpJob"]),
        # Both triggers on the transform fire; their actions run in template order.
        ({}, ["RawCrawler", "ConfigurationFetchJob", "TransformJob", "SummaryJob", "CleanUpJob"]),
        ({"SummaryJob": FAILED},
         ["RawCrawler", "ConfigurationFetchJob", "TransformJob", "SummaryJob", "CleanUpJob"]),
    ],
)
def test_a_predicate_on_a_failure_fires_on_that_failure_only(template, states, expected):
    graph, nodes = graph_of(with_failure_handlers(template)), FakeNodes(states)
    walk(graph, graph.start_trigger("ON_DEMAND"), nodes)
    assert nodes.ran == expected



# --- intrinsics ---------------------------------------------------------------------------


def test_sub_resolves_parameters_pseudo_parameters_resources_and_escapes(template):
    resolve = Resolver(template, local_parameters(template))
    value = {"Fn::Sub": ["${Job}/${!Literal}/${AWS::Region}/${RawCrawler.Name}/${DatabaseName}",
                         {"Job": {"Ref": "TransformJob"}}]}
    assert resolve(value, "here") == "traffic-glue-transform/${Literal}/local/traffic-glue-raw-crawler/traffic"
    assert resolve({"Ref": "RawBucketName"}, "here") == "local-raw-bucket"


@pytest.mark.parametrize(
    "value, message",
    [
        ({"Fn::Join": ["", ["a", "b"]]}, r"DefaultArguments.--semantics: Fn::Join is not supported"),
        ({"Ref": "GlueRoleArn"}, r"GlueRoleArn has no Default and no local value \(pass --parameter"),
        ({"Ref": "NoSuchThing"}, r"Ref NoSuchThing: no such parameter or resource"),
        ({"Fn::GetAtt": ["TransformJob", "Arn"]}, r"Fn::GetAtt TransformJob.Arn is not supported"),
        ({"Fn::Sub": "${RawTable.Arn}"}, r"Fn::GetAtt RawTable.Arn is not supported"),
    ],
)
def test_what_cannot_be_resolved_is_a_clear_error(template, value, message):
    broken = copy.deepcopy(template)
    broken["Resources"]["TransformJob"]["Properties"]["DefaultArguments"]["--semantics"] = value
    with pytest.raises(TemplateError, match=r"Resources.TransformJob.Properties.*" + message):
        graph_of(broken)


def _misspell_state(resources: dict) -> None:
    resources["StartTransformWhenRawCrawled"]["Properties"]["Predicate"]["Conditions"][0]["CrawlState"] = "SUCCEEDS"


def _drop_conditions(resources: dict) -> None:
    resources["StartTransformWhenRawCrawled"]["Properties"]["Predicate"]["Conditions"] = []


def _start_unknown_job(resources: dict) -> None:
    resources["StartTransformWhenRawCrawled"]["Properties"]["Actions"] = [{"JobName": "nope"}]


@pytest.mark.parametrize(
    "mistake, message",
    [
        (_misspell_state, r"Conditions\[0\]: crawler state must be one of .*got 'SUCCEEDS'"),
        (_drop_conditions, r"Predicate: a CONDITIONAL trigger needs at least one condition"),
        (_start_unknown_job, r"Actions\[0\]: starts job nope, which the template does not define"),
    ],
)
def test_a_trigger_the_runner_cannot_follow_is_an_error(template, mistake, message):
    broken = copy.deepcopy(template)
    mistake(broken["Resources"])
    with pytest.raises(TemplateError, match=r"Resources.StartTransformWhenRawCrawled.Properties.*" + message):
        graph_of(broken)
