"""Run the Glue workflow of `traffic_workflow.yaml` on this machine, from the template itself.

    python -m workflows.local_runner [--trigger on-demand|scheduled] \
        [--start-date 2020-04-06 --end-date 2020-04-07] [--raw data/raw] \
        [--curated data/curated] [--catalog-dir .local/catalog] [--semantics corrected] \
        [--configuration tests/fixtures/network/miv-config-2017-05-18.xml.gz]

Nothing here repeats the workflow's structure (STYLE.md habit 9): which trigger starts
which crawler or job, on what condition, with which arguments, and the tables' columns
and locations are all read from the template. The local stand-ins:

- the Glue Data Catalog: Spark's Hive catalog, its Derby metastore served to every
  process on the folder (`--catalog-dir`, the job's default; `runtime/metastore`); the
  template's tables are created in it;
- S3: the raw table's location is the `--raw` folder, the curated table's the
  `--curated` folder, the configuration snapshots' (the fetch job's
  `--configuration_folder`, the transform's `--configuration_path`) `configuration/`
  beside `--raw`; other bucket names get placeholders (`local-temp-bucket`) that
  only Glue-only job arguments (`--TempDir`, `--extra-py-files`) use;
- the traffic centre's configuration feed: the `--configuration` file, which the
  fetch job "downloads" through a `file://` URL;
- the crawler: `workflows.local_crawler.crawl`; the job: its script's `main`, called
  in this process with the job's DefaultArguments, in the same SparkSession (one JVM's
  start for the whole workflow).

The graph is plain data (`WorkflowGraph`, in `workflows.graph`) and `walk` takes the
node runner as an argument, so the workflow's logic is tested without Spark.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import io
import json
import os
import runpy
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from workflows.graph import (
    CRAWLER,
    FAILED,
    JOB_SCRIPTS,
    PYTHON_SHELL_JOB,
    SUCCEEDED,
    Node,
    Resolver,
    TemplateError,
    WorkflowGraph,
    _of_type,
    build_graph,
    local_parameters,
    walk,
)
from workflows.template import load_template

TEMPLATE = Path(__file__).with_name("traffic_workflow.yaml")
if str(JOB_SCRIPTS) not in sys.path:  # the job script imports `traffic_glue` from there
    sys.path.insert(0, str(JOB_SCRIPTS))

START_TRIGGER_TYPES = {"on-demand": "ON_DEMAND", "scheduled": "SCHEDULED"}
SUMMARY_SCRIPT = "traffic_daily_summary.py"  # its table is the one the pictures show
# The configuration feed a local run fetches (`--configuration`): the real one of 2017.
DEFAULT_CONFIGURATION = JOB_SCRIPTS.parent / "tests" / "fixtures" / "network" / "miv-config-2017-05-18.xml.gz"
CONFIGURATION_URL, CONFIGURATION_FOLDER = "--configuration_url", "--configuration_folder"


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
    """S3 location -> local folder. A template table that a job reads (`--source_table`:
    the raw table) is the `raw` folder. A table a job creates itself at its
    `--target_path` is the `curated` folder for the job reading the raw table (the
    transform), else a folder beside it named after the table (`traffic.daily_summary`:
    `daily_summary/`)."""
    template_tables = {table.full_name for table in tables}
    folders = {}
    mapping = {}
    for node in graph.nodes():
        arguments = dict(node.arguments)
        if arguments.get(CONFIGURATION_FOLDER):  # the snapshots: beside the raw landing
            mapping[arguments[CONFIGURATION_FOLDER]] = str(Path(raw).resolve().parent / "configuration")
        source, target_path = arguments.get("--source_table"), arguments.get("--target_path")
        if source in template_tables:
            folders[source] = raw
        if not target_path:
            continue
        if source in template_tables:
            mapping[target_path] = str(Path(curated).resolve())
        else:
            name = (arguments.get("--target_table") or target_path.rstrip("/")).rsplit(".", 1)[-1]
            mapping[target_path] = str((Path(curated).parent / name.rsplit("/", 1)[-1]).resolve())
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


def with_configuration_url(graph: WorkflowGraph, url: str) -> WorkflowGraph:
    """The graph with the fetch job's `--configuration_url` (the traffic centre's, on
    AWS) replaced by `url`: a local run reads a file, not the internet."""
    def moved(node: Node) -> Node:
        return dataclasses.replace(node, arguments=tuple(
            (k, url if k == CONFIGURATION_URL else v) for k, v in node.arguments))

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
    from traffic_glue.store import catalog, storage

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


def job_argv(node: Node, run_properties_file: str, catalog_dir: str) -> list[str]:
    """sys.argv of a job run: its arguments as Glue passes them, and the workflow run.

    On AWS the job gets --WORKFLOW_NAME/--WORKFLOW_RUN_ID and reads and writes the
    workflow run's properties (start_date/end_date, the transform's curated_days) with
    Glue's API; locally they are a JSON file (`--run_properties_file`).
    """
    argv = [node.script]
    for key, value in node.arguments:
        argv += [key, value]
    argv += ["--JOB_NAME", node.name]
    if node.command == PYTHON_SHELL_JOB:  # no Spark, no catalog: the fetch job
        return argv
    return argv + ["--run_properties_file", run_properties_file, "--catalog_dir", catalog_dir]


# What Hive says when it cannot reach the metastore: its server ended under the session
# (`python -m traffic_glue.runtime.metastore stop`, a removed folder), or a process of an
# older version holds the folder's Derby database by itself ("Another instance of Derby
# may have already booted the database", in the JVM's log only).
_CATALOG_UNAVAILABLE = ("SessionHiveMetaStoreClient", "XSDB6", "Another instance of Derby")


def describe_catalog_error(error: BaseException, catalog_dir: str) -> str:
    text = str(error).strip()
    if any(marker in text for marker in _CATALOG_UNAVAILABLE):
        return (
            f"cannot reach the local catalog {catalog_dir}'s metastore: its server ended, or "
            "a process of an older version of this project holds the folder by itself "
            "(python -m traffic_glue.runtime.metastore status says which serves it); "
            "end that process and run again"
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

    def __init__(self, spark, tables: list[TableSpec], run_properties_file: str, catalog_dir: str,
                 out=sys.stdout):
        self.spark, self.tables, self.out = spark, tables, out
        self.run_properties_file, self.catalog_dir = run_properties_file, catalog_dir
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
                code = main(job_argv(node, self.run_properties_file, self.catalog_dir))
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
    from traffic_glue.runtime.glue import DEFAULT_LOCAL_CATALOG

    return os.environ.get("TRAFFIC_GLUE_CATALOG_DIR") or str(DEFAULT_LOCAL_CATALOG)


def _parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflows.local_runner",
        description="Run the Glue workflow of the template locally: crawl and fetch the "
                    "configuration, then transform, then summarise.")
    parser.add_argument("--trigger", choices=sorted(START_TRIGGER_TYPES), default="on-demand",
                        help="the start trigger to fire, found by its type (default on-demand)")
    parser.add_argument("--start-date", "--start_date", type=dt.date.fromisoformat,
                        help="run property start_date (UTC day); the job defaults to yesterday")
    parser.add_argument("--end-date", "--end_date", type=dt.date.fromisoformat, help="run property end_date")
    parser.add_argument("--raw", default="data/raw", help="folder standing in for the raw table's S3 location")
    parser.add_argument("--curated", default="data/curated", help="folder for the curated table's location")
    parser.add_argument("--catalog-dir", "--catalog_dir", default=None,
                        help="local catalog (default $TRAFFIC_GLUE_CATALOG_DIR or .local/catalog)")
    parser.add_argument("--semantics", help="the template's Semantics parameter (corrected, athena)")
    parser.add_argument("--configuration", default=str(DEFAULT_CONFIGURATION),
                        help="the configuration feed document (mivconfig XML, plain or gzipped) the "
                             "fetch job fetches, as a file:// URL, instead of the traffic centre's "
                             "(default: the real one of 2017-05-18 in tests/fixtures/network)")
    parser.add_argument("--parameter", type=_parameter, action="append", default=[],
                        metavar="NAME=VALUE", help="a template parameter (repeatable)")
    parser.add_argument("--template", default=str(TEMPLATE), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if (args.start_date is None) != (args.end_date is None):
        parser.error("--start-date and --end-date go together")
    return args


def run_workflow(args: argparse.Namespace, out=sys.stdout) -> tuple[int, list[NodeRun]]:
    from traffic_glue.runtime.session import local_spark_session

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
    graph = with_configuration_url(graph, Path(args.configuration).resolve().as_uri())
    start = graph.start_trigger(START_TRIGGER_TYPES[args.trigger])
    tables = [relocate_table(t, locations) for t in tables]
    if not Path(args.raw).is_dir():
        say(f"error: raw folder {args.raw} does not exist (make sample, or python -m "
            "tools.sample_data --out data/raw --start-date 2020-04-06 --days 2)")
        return 2, []
    if not Path(args.configuration).is_file():
        say(f"error: configuration file {args.configuration} does not exist (--configuration: a "
            "mivconfig document, e.g. tests/fixtures/network/miv-config-2017-05-18.xml.gz)")
        return 2, []

    catalog_dir = str(Path(args.catalog_dir or default_catalog_dir()).resolve())
    # The workflow run's properties, as Glue keeps them for a run: a file per run here.
    run_id = f"wr_{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}"
    run_properties = Path(catalog_dir).parent / "workflow_runs" / f"{run_id}.json"
    run_properties.parent.mkdir(parents=True, exist_ok=True)
    run_properties.write_text(json.dumps({
        key: str(value) for key, value in
        (("start_date", args.start_date), ("end_date", args.end_date)) if value
    }))
    say(f"{graph.name}: {args.trigger} run, catalog {catalog_dir}"
        + (f", days {args.start_date} .. {args.end_date}" if args.start_date else ""))
    spark = local_spark_session(app_name=graph.name, catalog_dir=catalog_dir)
    try:
        create_tables(spark, tables)
    except Exception as error:
        say(f"error: cannot create the tables: {describe_catalog_error(error, catalog_dir)}")
        return 1, []
    nodes = LocalNodes(spark, tables, str(run_properties), catalog_dir, out)
    walk(graph, start, nodes, on_fire=lambda trigger: say(f"trigger {trigger.name}: fired"))
    failed = [run for run in nodes.runs if run.state != SUCCEEDED]
    if failed:
        first = failed[0]
        say(f"{graph.name}: FAILED at {first.node.kind} {first.node.name}: {first.detail}")
        return 1, nodes.runs
    say(f"{graph.name}: SUCCEEDED ({len(nodes.runs)} nodes)")
    _draw_pictures(graph, json.loads(run_properties.read_text()), say)
    return 0, nodes.runs


def _draw_pictures(graph: WorkflowGraph, properties: dict, say) -> None:
    """The pages of the days the run summarised, beside the summary's folder (`report/`)."""
    days = [d for d in properties.get("curated_days", "").split(",") if d]
    summary = next((dict(n.arguments).get("--target_path") for n in graph.nodes()
                    if Path(n.script).name == SUMMARY_SCRIPT), None)
    if not days or not summary:
        return
    from tools.report import render_days

    folder = Path(summary)
    pages = render_days(folder, [dt.date.fromisoformat(d) for d in days], folder.parent / "report")
    for page in pages:
        say(f"pictures of {page.stem.removeprefix('traffic_')}: {page}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run_workflow(args)[0]
    except TemplateError as error:
        print(f"[workflow] error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
