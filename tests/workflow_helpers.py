"""Reading the workflow template in tests: its graph, tables and transform job."""

from pathlib import Path

from workflows.graph import Resolver, build_graph, local_parameters
from workflows.local_runner import template_tables

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "workflows" / "traffic_workflow.yaml"
JOB_SCRIPT = ROOT / "glue_jobs" / "traffic_transform.py"


def graph_of(template: dict, **parameters):
    return build_graph(template, Resolver(template, local_parameters(template, parameters)))


def tables_of(template: dict) -> list:
    return template_tables(template, Resolver(template, local_parameters(template)))


def job_named(graph, script: str):
    """The workflow's job node that runs `script` (a file name in glue_jobs/)."""
    (job,) = [node for trigger in graph.conditional_triggers for node in trigger.actions
              if Path(node.script).name == script]
    return job


def transform_job(graph):
    return job_named(graph, "traffic_transform.py")


def summary_job(graph):
    return job_named(graph, "traffic_daily_summary.py")


def table_names(template: dict) -> tuple[str, str]:
    """The tables the job reads and writes, as its DefaultArguments name them."""
    arguments = dict(transform_job(graph_of(template)).arguments)
    return arguments["--source_table"], arguments["--target_table"]
