"""The Glue workflow of `traffic_workflow.yaml` as plain data, read from the template.

`Resolver` resolves the CloudFormation intrinsics the template uses, `build_graph` turns
its one workflow into a `WorkflowGraph` (triggers, the crawlers and jobs they start, on
what condition), and `walk` runs it from a start trigger with the node runner it is
given. Nothing here needs Spark, so the workflow's logic is tested without it;
`workflows.local_runner` runs the nodes on this machine.
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
JOB_SCRIPTS = REPO / "glue_jobs"

CRAWLER, JOB = "crawler", "job"
SPARK_JOB, PYTHON_SHELL_JOB = "glueetl", "pythonshell"  # a job's Command.Name
SUCCEEDED, FAILED = "SUCCEEDED", "FAILED"
# States a trigger's condition may ask for (Glue API: CrawlState, JobRunState).
CRAWL_STATES = ("RUNNING", "SUCCEEDED", "CANCELLED", "FAILED", "ERROR")
JOB_STATES = ("STARTING", "RUNNING", "STOPPING", "STOPPED", "SUCCEEDED", "FAILED",
              "TIMEOUT", "ERROR", "WAITING", "EXPIRED")
CONDITIONAL = "CONDITIONAL"
LOGICALS = ("AND", "ANY")
PSEUDO_PARAMETERS = {
    "AWS::AccountId": "000000000000",
    "AWS::Region": "local",
    "AWS::Partition": "aws",
    "AWS::StackName": "traffic-glue-local",
    "AWS::URLSuffix": "amazonaws.com",
}
BUCKET_PARAMETER_SUFFIX = "BucketName"


class TemplateError(ValueError):
    """The template asks for something the local runner cannot do; says where."""


# --- intrinsics ------------------------------------------------------------------------


def local_parameters(template: dict, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Parameter values for a local run: overrides, else the Default, else for buckets a
    placeholder name (locations in them are mapped to local folders later). Parameters
    with neither are left out: resolving one raises a `TemplateError` naming it."""
    overrides = dict(overrides or {})
    declared = template.get("Parameters", {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"no such template parameter: {', '.join(unknown)}")
    values = {}
    for name, spec in declared.items():
        if name in overrides:
            value = str(overrides[name])
            allowed = [str(v) for v in spec.get("AllowedValues", [])]
            if allowed and value not in allowed:
                raise TemplateError(f"parameter {name} must be one of {', '.join(allowed)}, got {value!r}")
            if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
                raise TemplateError(f"parameter {name}={value!r} does not match {spec['AllowedPattern']}")
        elif "Default" in spec:
            value = str(spec["Default"])
        elif name.endswith(BUCKET_PARAMETER_SUFFIX):
            stem = re.sub(r"(?<!^)(?=[A-Z])", "-", name[: -len(BUCKET_PARAMETER_SUFFIX)]).lower()
            value = f"local-{stem}-bucket"
        else:
            continue
        values[name] = value
    return values


class Resolver:
    """Resolves the intrinsics the template uses: Ref, Fn::Sub, Fn::GetAtt <resource>.Name."""

    def __init__(self, template: dict, parameters: dict[str, str]):
        self.resources = template.get("Resources", {})
        self.declared = template.get("Parameters", {})
        self.parameters = parameters

    def __call__(self, value, where: str):
        if isinstance(value, list):
            return [self(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Ref":
                return self.ref(argument, where)
            if key == "Fn::GetAtt":
                return self.get_att(argument, where)
            if key == "Fn::Sub":
                return self.sub(argument, where)
            if key.startswith("Fn::") or key == "Condition":
                raise TemplateError(
                    f"{where}: {key} is not supported by the local runner "
                    "(it resolves Ref, Fn::Sub and Fn::GetAtt <resource>.Name)"
                )
        return {key: self(item, f"{where}.{key}") for key, item in value.items()}

    def ref(self, name: str, where: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self.declared:
            raise TemplateError(
                f"{where}: parameter {name} has no Default and no local value "
                f"(pass --parameter {name}=...)"
            )
        if name in self.resources:
            return self.resource_name(name, where)
        raise TemplateError(f"{where}: Ref {name}: no such parameter or resource")

    def get_att(self, argument, where: str) -> str:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        resource, attribute = argument
        if attribute != "Name" or resource not in self.resources:
            raise TemplateError(
                f"{where}: Fn::GetAtt {resource}.{attribute} is not supported by the local "
                "runner (only <resource>.Name of a resource of the template)"
            )
        return self.resource_name(resource, where)

    def resource_name(self, logical_id: str, where: str) -> str:
        # Ref of a Glue workflow, trigger, crawler, job or table is its name.
        properties = self.resources[logical_id].get("Properties", {})
        name = properties.get("Name", properties.get("TableInput", {}).get("Name"))
        if name is None:
            raise TemplateError(
                f"{where}: {logical_id} has no Name (CloudFormation would make one up; "
                "the local runner cannot)"
            )
        return str(self(name, f"Resources.{logical_id}.Properties.Name"))

    def sub(self, argument, where: str) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {k: self(v, f"{where}.{k}") for k, v in variables.items()}

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} stands for ${Literal}
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return self.get_att(name.split(".", 1), where)
            return str(self.ref(name, where))

        return re.sub(r"\$\{([^}]*)\}", replace, text)


# --- the graph ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    kind: str  # CRAWLER or JOB
    name: str  # the Glue name triggers refer to
    logical_id: str
    database: str = ""  # crawler: where its tables are
    targets: tuple[str, ...] = ()  # crawler: S3 target paths
    script: str = ""  # job: the local script (the template's ScriptLocation file name)
    arguments: tuple[tuple[str, str], ...] = ()  # job: DefaultArguments (+ the action's)
    command: str = ""  # job: Command.Name, SPARK_JOB or PYTHON_SHELL_JOB

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.name


@dataclass(frozen=True)
class Condition:
    kind: str
    name: str
    state: str

    def holds(self, states: dict) -> bool:
        return states.get((self.kind, self.name)) == self.state


@dataclass(frozen=True)
class Predicate:
    logical: str  # AND: every condition, ANY: at least one
    conditions: tuple[Condition, ...]

    def holds(self, states: dict) -> bool:
        results = [c.holds(states) for c in self.conditions]
        return all(results) if self.logical == "AND" else any(results)


@dataclass(frozen=True)
class Trigger:
    name: str
    logical_id: str
    type: str  # ON_DEMAND, SCHEDULED, CONDITIONAL, EVENT
    actions: tuple[Node, ...]
    predicate: Predicate | None = None


@dataclass(frozen=True)
class WorkflowGraph:
    name: str
    triggers: tuple[Trigger, ...]

    def start_trigger(self, trigger_type: str) -> Trigger:
        found = [t for t in self.triggers if t.type == trigger_type]
        if len(found) != 1:
            names = ", ".join(t.name for t in found) or "none"
            raise TemplateError(
                f"workflow {self.name} needs exactly one {trigger_type} trigger, has {names}"
            )
        return found[0]

    @property
    def conditional_triggers(self) -> tuple[Trigger, ...]:
        return tuple(t for t in self.triggers if t.type == CONDITIONAL)

    def nodes(self) -> list[Node]:
        seen: dict[tuple, Node] = {}
        for trigger in self.triggers:
            for node in trigger.actions:
                seen.setdefault(node.key, node)
        return list(seen.values())


def _of_type(template: dict, resource_type: str) -> dict:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


def _crawler_node(resolve: Resolver, logical_id: str, resource: dict) -> Node:
    where = f"Resources.{logical_id}.Properties"
    properties = resource.get("Properties", {})
    targets = properties.get("Targets", {})
    if set(targets) - {"S3Targets"}:
        raise TemplateError(f"{where}.Targets: the local crawler crawls S3Targets only")
    return Node(
        kind=CRAWLER,
        name=resolve(properties["Name"], f"{where}.Name"),
        logical_id=logical_id,
        database=resolve(properties["DatabaseName"], f"{where}.DatabaseName"),
        targets=tuple(
            resolve(t["Path"], f"{where}.Targets.S3Targets[{i}].Path")
            for i, t in enumerate(targets.get("S3Targets", []))
        ),
    )


def _job_node(resolve: Resolver, logical_id: str, resource: dict) -> Node:
    where = f"Resources.{logical_id}.Properties"
    properties = resource.get("Properties", {})
    script = resolve(properties["Command"]["ScriptLocation"], f"{where}.Command.ScriptLocation")
    arguments = resolve(properties.get("DefaultArguments", {}), f"{where}.DefaultArguments")
    return Node(
        kind=JOB,
        name=resolve(properties["Name"], f"{where}.Name"),
        logical_id=logical_id,
        # Deployed, ScriptLocation is the artifacts bucket's copy of glue_jobs/<file>.
        script=str(JOB_SCRIPTS / script.rsplit("/", 1)[-1]),
        arguments=tuple((str(k), str(v)) for k, v in arguments.items()),
        command=str(properties["Command"].get("Name", SPARK_JOB)),
    )


def _condition(resolve: Resolver, where: str, condition: dict, nodes: dict) -> Condition:
    if condition.get("LogicalOperator", "EQUALS") != "EQUALS":
        raise TemplateError(f"{where}.LogicalOperator must be EQUALS")
    if "CrawlerName" in condition:
        kind, name, state, states = CRAWLER, condition["CrawlerName"], condition.get("CrawlState"), CRAWL_STATES
    elif "JobName" in condition:
        kind, name, state, states = JOB, condition["JobName"], condition.get("State"), JOB_STATES
    else:
        raise TemplateError(f"{where}: a condition names a CrawlerName or a JobName")
    name = resolve(name, where)
    if (kind, name) not in nodes:
        raise TemplateError(f"{where}: {kind} {name} is not defined in the template")
    if state not in states:
        raise TemplateError(f"{where}: {kind} state must be one of {', '.join(states)}, got {state!r}")
    return Condition(kind, name, state)


def _action(resolve: Resolver, at: str, action: dict, nodes: dict) -> Node:
    if "CrawlerName" in action:
        key = CRAWLER, resolve(action["CrawlerName"], at)
    elif "JobName" in action:
        key = JOB, resolve(action["JobName"], at)
    else:
        raise TemplateError(f"{at}: an action names a CrawlerName or a JobName")
    if key not in nodes:
        raise TemplateError(f"{at}: starts {key[0]} {key[1]}, which the template does not define")
    node = nodes[key]
    if action.get("Arguments"):  # an action's Arguments override the job's defaults
        overrides = resolve(action["Arguments"], f"{at}.Arguments")
        merged = dict(node.arguments) | {str(k): str(v) for k, v in overrides.items()}
        node = dataclasses.replace(node, arguments=tuple(merged.items()))
    return node


def _predicate(resolve: Resolver, where: str, spec: dict, nodes: dict) -> Predicate:
    logical, conditions = spec.get("Logical", "AND"), spec.get("Conditions", [])
    if logical not in LOGICALS:
        raise TemplateError(f"{where}.Logical must be AND or ANY, got {logical!r}")
    if not conditions:  # an empty AND would hold at once
        raise TemplateError(f"{where}: a CONDITIONAL trigger needs at least one condition")
    return Predicate(logical, tuple(
        _condition(resolve, f"{where}.Conditions[{i}]", c, nodes) for i, c in enumerate(conditions)
    ))


def build_graph(template: dict, resolve: Resolver) -> WorkflowGraph:
    """The template's one workflow: its triggers, the nodes they start and when."""
    workflows = _of_type(template, "AWS::Glue::Workflow")
    if len(workflows) != 1:
        raise TemplateError(f"the template defines {len(workflows)} workflows; the runner runs one")
    (workflow_id, _), = workflows.items()
    workflow = resolve.resource_name(workflow_id, f"Resources.{workflow_id}")
    nodes = {}
    for resource_type, make in (("AWS::Glue::Crawler", _crawler_node), ("AWS::Glue::Job", _job_node)):
        for logical_id, resource in _of_type(template, resource_type).items():
            node = make(resolve, logical_id, resource)
            nodes[node.key] = node

    triggers = []
    for logical_id, resource in _of_type(template, "AWS::Glue::Trigger").items():
        where = f"Resources.{logical_id}.Properties"
        properties = resource["Properties"]
        if resolve(properties.get("WorkflowName"), f"{where}.WorkflowName") != workflow:
            continue
        actions = tuple(
            _action(resolve, f"{where}.Actions[{i}]", action, nodes)
            for i, action in enumerate(properties.get("Actions", []))
        )
        predicate = None
        if properties["Type"] == CONDITIONAL:
            predicate = _predicate(resolve, f"{where}.Predicate", properties.get("Predicate", {}), nodes)
        name = resolve(properties["Name"], f"{where}.Name")
        triggers.append(Trigger(name, logical_id, properties["Type"], actions, predicate))
    return WorkflowGraph(workflow, tuple(triggers))


def walk(
    graph: WorkflowGraph,
    start: Trigger,
    run_node: Callable[[Node], str],
    on_fire: Callable[[Trigger], None] = lambda trigger: None,
) -> list[tuple[Node, str]]:
    """Run a workflow from `start`: `run_node` runs a node and returns its final state.

    After each node ends, every conditional trigger not fired yet whose predicate holds
    on the states so far fires (once per workflow run, as on Glue). Glue starts a
    trigger's actions in parallel; here they run one after another, in the order written.
    """
    states: dict[tuple[str, str], str] = {}
    ran: list[tuple[Node, str]] = []
    fired = {start.name}
    on_fire(start)
    pending = deque(start.actions)
    while pending:
        node = pending.popleft()
        state = run_node(node)
        states[node.key] = state
        ran.append((node, state))
        for trigger in graph.conditional_triggers:
            if trigger.name not in fired and trigger.predicate.holds(states):
                fired.add(trigger.name)
                on_fire(trigger)
                pending.extend(trigger.actions)
    return ran
