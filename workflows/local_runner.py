"""Run the Glue workflow of `traffic_workflow.yaml` on this machine, from the template itself.

    python -m workflows.local_runner [--trigger on-demand|scheduled] \
        [--start-date 2020-04-06 --end-date 2020-04-07] [--raw data/raw] \
        [--curated data/curated] [--catalog-dir .local/catalog] [--semantics corrected]

Nothing here repeats the workflow's structure (STYLE.md habit 9): which trigger starts
which crawler or job, on what condition, with which arguments, and the tables' columns
and locations are all read from the template. The local stand-ins:

- the Glue Data Catalog: Spark's Hive catalog in an embedded Derby metastore
  (`--catalog-dir`, the job's default); the template's tables are created in it;
- S3: the raw table's location is the `--raw` folder, the curated table's the
  `--curated` folder; other bucket names get placeholders (`local-temp-bucket`) that
  only Glue-only job arguments (`--TempDir`, `--extra-py-files`) use;
- the crawler: `workflows.local_crawler.crawl`; the job: its script's `main`, called
  in this process with the job's DefaultArguments, in the same SparkSession (embedded
  Derby lets one process at a time use the catalog).

The graph is plain data (`WorkflowGraph`) and `walk` takes the node runner as an
argument, so the workflow's logic is tested without Spark.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import io
import os
import re
import runpy
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from workflows.template import load_template

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).with_name("traffic_workflow.yaml")
JOB_SCRIPTS = REPO / "glue_jobs"
if str(JOB_SCRIPTS) not in sys.path:  # the job script imports `traffic_glue` from there
    sys.path.insert(0, str(JOB_SCRIPTS))

CRAWLER, JOB = "crawler", "job"
SUCCEEDED, FAILED = "SUCCEEDED", "FAILED"
# States a trigger's condition may ask for (Glue API: CrawlState, JobRunState).
CRAWL_STATES = ("RUNNING", "SUCCEEDED", "CANCELLED", "FAILED", "ERROR")
JOB_STATES = ("STARTING", "RUNNING", "STOPPING", "STOPPED", "SUCCEEDED", "FAILED",
              "TIMEOUT", "ERROR", "WAITING", "EXPIRED")
START_TRIGGER_TYPES = {"on-demand": "ON_DEMAND", "scheduled": "SCHEDULED"}
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
RUN_PROPERTIES = ("start_date", "end_date")


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


# --- tables and local locations ------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    database: str
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, Glue type)
    partition_keys: tuple[tuple[str, str], ...]
    location: str
    properties: tuple[tuple[str, str], ...]

    @property
    def full_name(self) -> str:
        return f"{self.database}.{self.name}"


def template_tables(template: dict, resolve: Resolver) -> list[TableSpec]:
    tables = []
    for logical_id, resource in _of_type(template, "AWS::Glue::Table").items():
        where = f"Resources.{logical_id}.Properties"
        properties = resource["Properties"]
        table = resolve(properties["TableInput"], f"{where}.TableInput")
        storage_descriptor = table.get("StorageDescriptor", {})
        serde = storage_descriptor.get("SerdeInfo", {}).get("SerializationLibrary", "")
        if "parquet" not in serde.lower():
            raise TemplateError(f"{where}: the local runner creates Parquet tables only, not {serde!r}")
        tables.append(TableSpec(
            database=resolve(properties["DatabaseName"], f"{where}.DatabaseName"),
            name=table["Name"],
            columns=tuple((c["Name"], c["Type"]) for c in storage_descriptor["Columns"]),
            partition_keys=tuple((c["Name"], c["Type"]) for c in table.get("PartitionKeys", [])),
            location=storage_descriptor["Location"],
            properties=tuple((str(k), str(v)) for k, v in table.get("Parameters", {}).items()),
        ))
    return tables


def local_locations(graph: WorkflowGraph, tables: list[TableSpec], raw: str, curated: str) -> dict:
    """S3 location -> local folder: the job's --source_table is the raw table, its
    --target_table the curated one."""
    folders = {}
    for node in graph.nodes():
        arguments = dict(node.arguments)
        folders.setdefault(arguments.get("--source_table"), raw)
        folders.setdefault(arguments.get("--target_table"), curated)
    mapping = {}
    for table in tables:
        if table.full_name not in folders:
            raise TemplateError(
                f"table {table.full_name} is neither a job's --source_table nor its "
                "--target_table: the runner has no local folder for it"
            )
        mapping[table.location] = str(Path(folders[table.full_name]).resolve())
    return mapping


def relocate(value: str, locations: dict) -> str:
    """`value` with an S3 location of `locations` replaced by its local folder."""
    for prefix in sorted(locations, key=len, reverse=True):
        stem = prefix.rstrip("/")
        if value == stem or value.startswith(stem + "/"):
            rest = value[len(stem):].lstrip("/")
            return locations[prefix] + ("/" + rest if rest else "")
    return value


def relocate_graph(graph: WorkflowGraph, locations: dict) -> WorkflowGraph:
    def moved(node: Node) -> Node:
        return dataclasses.replace(
            node,
            targets=tuple(relocate(t, locations) for t in node.targets),
            arguments=tuple((k, relocate(v, locations)) for k, v in node.arguments),
        )

    return dataclasses.replace(graph, triggers=tuple(
        dataclasses.replace(t, actions=tuple(moved(n) for n in t.actions)) for t in graph.triggers
    ))


def relocate_table(table: TableSpec, locations: dict) -> TableSpec:
    return dataclasses.replace(table, location=relocate(table.location, locations))


# Spark reserves these table properties; CREATE EXTERNAL TABLE says it already.
_RESERVED_PROPERTIES = {"external", "location", "owner", "provider"}


def create_table_sql(table: TableSpec) -> str:
    def columns(fields) -> str:
        return ", ".join(f"`{name}` {kind}" for name, kind in fields)

    def quoted(text: str) -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    properties = ", ".join(
        f"{quoted(k)}={quoted(v)}" for k, v in table.properties if k.lower() not in _RESERVED_PROPERTIES
    )
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{table.database}`.`{table.name}` "
        f"({columns(table.columns)}) "
        + (f"PARTITIONED BY ({columns(table.partition_keys)}) " if table.partition_keys else "")
        + f"STORED AS PARQUET LOCATION {quoted(table.location)}"
        + (f" TBLPROPERTIES ({properties})" if properties else "")
    )


def create_tables(spark, tables: list[TableSpec]) -> None:
    """The template's tables at their local locations, unless the catalog has them."""
    from traffic_glue import catalog, storage

    for table in tables:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS `{table.database}`")
        spark.sql(create_table_sql(table))
        # An existing table elsewhere (another --raw/--curated before) would make the
        # crawler and the job read different folders: refuse instead.
        actual = catalog.describe(spark, table.full_name).location.rstrip("/")
        wanted = storage.qualified(spark, table.location).rstrip("/")
        if actual != wanted:
            raise TemplateError(
                f"table {table.full_name} of the local catalog is at {actual}, not {wanted}: "
                "use another --catalog-dir, or drop the table"
            )


# --- running nodes -----------------------------------------------------------------------


def job_argv(node: Node, run_properties: dict[str, str], catalog_dir: str) -> list[str]:
    """sys.argv of a job run: its arguments as Glue passes them, plus the run's dates.

    On AWS the job gets --WORKFLOW_NAME/--WORKFLOW_RUN_ID and reads start_date/end_date
    from the workflow run's properties; locally the properties are passed as arguments.
    """
    argv = [node.script]
    for key, value in node.arguments:
        argv += [key, value]
    argv += ["--JOB_NAME", node.name]
    for key in RUN_PROPERTIES:
        if run_properties.get(key):
            argv += [f"--{key}", run_properties[key]]
    return argv + ["--catalog_dir", catalog_dir]


# What Hive says when it cannot open the metastore; Derby's own reason ("Another instance
# of Derby may have already booted the database") goes to the JVM's log only.
_CATALOG_UNAVAILABLE = ("SessionHiveMetaStoreClient", "XSDB6", "Another instance of Derby")


def describe_catalog_error(error: BaseException, catalog_dir: str) -> str:
    text = str(error).strip()
    if any(marker in text for marker in _CATALOG_UNAVAILABLE):
        return (
            f"cannot open the local catalog {catalog_dir}: most likely another process is "
            "using it (its embedded Derby metastore allows one at a time); wait for it, or "
            "use another --catalog-dir"
        )
    return text.splitlines()[0] if text else type(error).__name__


@dataclass
class NodeRun:
    node: Node
    state: str = "RUNNING"
    seconds: float = 0.0
    detail: str = ""  # crawler: partitions added; failure: the reason


class LocalNodes:
    """Runs crawler and job nodes in one SparkSession and prints each start and end."""

    def __init__(self, spark, tables: list[TableSpec], run_properties: dict, catalog_dir: str,
                 out=sys.stdout):
        self.spark, self.tables, self.out = spark, tables, out
        self.run_properties, self.catalog_dir = run_properties, catalog_dir
        self.runs: list[NodeRun] = []

    def say(self, text: str) -> None:
        print(f"[workflow] {text}", file=self.out, flush=True)

    def __call__(self, node: Node) -> str:
        run = NodeRun(node)
        self.runs.append(run)
        self.say(f"{node.kind} {node.name}: RUNNING")
        started = time.monotonic()
        try:
            run.state, run.detail = (self.crawl if node.kind == CRAWLER else self.job)(node)
        except Exception as error:  # a node's failure is its state, not the runner's
            run.state, run.detail = FAILED, describe_catalog_error(error, self.catalog_dir)
        run.seconds = time.monotonic() - started
        if run.state == SUCCEEDED:
            detail = f" ({run.detail})" if run.detail else ""
        else:
            detail = f": {run.detail}"
        self.say(f"{node.kind} {node.name}: {run.state} in {run.seconds:.1f} s{detail}")
        return run.state

    def crawl(self, node: Node) -> tuple[str, str]:
        from workflows.local_crawler import crawl

        added = seen = 0
        for target in node.targets:
            table = next((t for t in self.tables if t.database == node.database
                          and t.location.rstrip("/") == target.rstrip("/")), None)
            if table is None:
                # On Glue it would create a table; the local crawler only updates them.
                raise TemplateError(f"no table of the template in {node.database} is at {target}")
            result = crawl(self.spark, table.full_name, target)
            added, seen = added + len(result.added), seen + result.seen
        return SUCCEEDED, f"added {added} partitions, {seen} seen"

    def job(self, node: Node) -> tuple[str, str]:
        if not Path(node.script).is_file():
            raise TemplateError(f"job script {node.script} not found")
        main = runpy.run_path(node.script, run_name="traffic_glue_job")["main"]
        errors = io.StringIO()  # the job prints its error there: it becomes the reason
        try:
            with contextlib.redirect_stderr(errors):
                code = main(job_argv(node, self.run_properties, self.catalog_dir))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            sys.stderr.write(errors.getvalue())
        if code == 0:
            return SUCCEEDED, ""
        last = next((line for line in reversed(errors.getvalue().splitlines()) if line.strip()), "")
        return FAILED, f"exit code {code}" + (f": {last.strip()}" if last else "")


# --- the command ---------------------------------------------------------------------------


def default_catalog_dir() -> str:
    from traffic_glue.glue import DEFAULT_LOCAL_CATALOG

    return os.environ.get("TRAFFIC_GLUE_CATALOG_DIR") or str(DEFAULT_LOCAL_CATALOG)


def _parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflows.local_runner",
        description="Run the Glue workflow of the template locally: crawl, then transform.")
    parser.add_argument("--trigger", choices=sorted(START_TRIGGER_TYPES), default="on-demand",
                        help="the start trigger to fire, found by its type (default on-demand)")
    parser.add_argument("--start-date", type=dt.date.fromisoformat,
                        help="run property start_date (UTC day); the job defaults to yesterday")
    parser.add_argument("--end-date", type=dt.date.fromisoformat, help="run property end_date")
    parser.add_argument("--raw", default="data/raw", help="folder standing in for the raw table's S3 location")
    parser.add_argument("--curated", default="data/curated", help="folder for the curated table's location")
    parser.add_argument("--catalog-dir", default=None,
                        help="local catalog (default $TRAFFIC_GLUE_CATALOG_DIR or .local/catalog)")
    parser.add_argument("--semantics", help="the template's Semantics parameter (corrected, athena)")
    parser.add_argument("--parameter", type=_parameter, action="append", default=[],
                        metavar="NAME=VALUE", help="a template parameter (repeatable)")
    parser.add_argument("--template", default=str(TEMPLATE), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if (args.start_date is None) != (args.end_date is None):
        parser.error("--start-date and --end-date go together")
    return args


def run_workflow(args: argparse.Namespace, out=sys.stdout) -> tuple[int, list[NodeRun]]:
    from traffic_glue.session import local_spark_session

    def say(text: str) -> None:
        print(f"[workflow] {text}", file=out, flush=True)

    template = load_template(args.template)
    overrides = dict(args.parameter)
    if args.semantics:
        overrides["Semantics"] = args.semantics
    resolve = Resolver(template, local_parameters(template, overrides))
    graph = build_graph(template, resolve)
    tables = template_tables(template, resolve)
    locations = local_locations(graph, tables, args.raw, args.curated)
    graph = relocate_graph(graph, locations)
    start = graph.start_trigger(START_TRIGGER_TYPES[args.trigger])
    tables = [relocate_table(t, locations) for t in tables]
    if not Path(args.raw).is_dir():
        say(f"error: raw folder {args.raw} does not exist (make sample, or python -m "
            "tools.sample_data --out data/raw --start-date 2020-04-06 --days 2)")
        return 2, []

    catalog_dir = str(Path(args.catalog_dir or default_catalog_dir()).resolve())
    run_properties = {"start_date": str(args.start_date or ""), "end_date": str(args.end_date or "")}
    say(f"{graph.name}: {args.trigger} run, catalog {catalog_dir}"
        + (f", days {args.start_date} .. {args.end_date}" if args.start_date else ""))
    spark = local_spark_session(app_name=graph.name, catalog_dir=catalog_dir)
    try:
        create_tables(spark, tables)
    except Exception as error:
        say(f"error: cannot create the tables: {describe_catalog_error(error, catalog_dir)}")
        return 1, []
    nodes = LocalNodes(spark, tables, run_properties, catalog_dir, out)
    walk(graph, start, nodes, on_fire=lambda trigger: say(f"trigger {trigger.name}: fired"))
    failed = [run for run in nodes.runs if run.state != SUCCEEDED]
    if failed:
        first = failed[0]
        say(f"{graph.name}: FAILED at {first.node.kind} {first.node.name}: {first.detail}")
        return 1, nodes.runs
    say(f"{graph.name}: SUCCEEDED ({len(nodes.runs)} nodes)")
    return 0, nodes.runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run_workflow(args)[0]
    except TemplateError as error:
        print(f"[workflow] error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
