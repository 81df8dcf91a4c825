"""The workflow run locally from its template: job arguments, tables, crawler, runner, SQL.

The graph and its walk, which need no Spark, are tested in test_workflow_graph.py
(whose helpers this file uses). Everything that needs the Hive catalog runs in ONE
subprocess (`scenario` below, this file run as a script): embedded Derby and a
Hive-enabled SparkSession cannot share the suite's session, and each JVM costs ~10 s.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import readme_commands
from tests.job_helpers import table_rows
from tests.workflow_helpers import (
    JOB_SCRIPT, ROOT, WORKFLOW, graph_of, summary_job, table_names, tables_of, transform_job,
)
from traffic_glue.jobs.transform_args import parse_job_args
from workflows.graph import TemplateError, local_parameters
from workflows.local_runner import (
    DEFAULT_CONFIGURATION,
    LocalNodes,
    create_table_sql,
    job_argv,
    local_locations,
    parse_args,
    relocate_graph,
    relocate_table,
    with_configuration_url,
)
from workflows.template import load_template

# docs/SEMANTICS.md: raw folders are Firehose's zero-padded processing hours (string keys).
HOUR_KEYS = ("year", "month", "day", "hour")
RUN_PROPERTIES = {"start_date": "2020-04-06", "end_date": "2020-04-07"}
SAMPLE_START, SAMPLE_DAYS, SAMPLE_LANES = dt.date(2020, 4, 6), 2, 20


# --- the job node -----------------------------------------------------------------------


def test_run_properties_and_the_default_arguments_reach_the_job(template, tmp_path):
    from traffic_glue.runtime.run_properties import resolve_dates

    job = transform_job(graph_of(template))
    properties = tmp_path / "wr_1.json"
    properties.write_text(json.dumps(RUN_PROPERTIES))
    argv = job_argv(job, str(properties), "/tmp/catalog")
    assert argv[0] == str(JOB_SCRIPT)
    # Glue-only arguments go through as on Glue, and the job ignores them.
    assert {"--TempDir", "--extra-py-files", "--conf", "--enable-metrics"} <= set(argv)
    config = parse_job_args(argv)
    source, target = table_names(template)
    assert (config.job_name, config.source_table, config.target_table) == (job.name, source, target)
    # The dates come from the workflow run's properties, as on Glue.
    assert config.start_date is None and config.run_properties_file == str(properties)
    resolved = resolve_dates(config)
    assert (resolved.start_date, resolved.end_date) == (dt.date(2020, 4, 6), dt.date(2020, 4, 7))
    assert config.catalog_dir == "/tmp/catalog"
    assert config.semantics == template["Parameters"]["Semantics"]["Default"]


def test_a_template_parameter_given_locally_reaches_the_job(template):
    athena = job_argv(transform_job(graph_of(template, Semantics="athena")), "/c/wr.json", "/c")
    assert parse_job_args(athena).semantics == "athena"
    with pytest.raises(TemplateError, match="Semantics must be one of corrected, athena"):
        local_parameters(template, {"Semantics": "fast"})


# --- local tables and locations -----------------------------------------------------------


def test_tables_and_crawler_target_move_to_the_local_folders(template, tmp_path):
    graph, tables = graph_of(template), tables_of(template)
    raw, curated = tmp_path / "raw", tmp_path / "curated"
    locations = local_locations(graph, tables, str(raw), str(curated))
    local = {t.full_name: relocate_table(t, locations) for t in tables}
    raw_table, curated_table = table_names(template)
    # The template defines the raw table; the job creates the curated (Iceberg) table
    # itself, at its --target_path, which moves to the local curated folder.
    assert list(local) == [raw_table] and local[raw_table].location == str(raw)
    moved = relocate_graph(graph, locations)
    assert moved.start_trigger("ON_DEMAND").actions[0].targets == (str(raw),)
    arguments = dict(transform_job(moved).arguments)
    assert (arguments["--target_table"], arguments["--target_path"]) == (curated_table, str(curated))
    # The summary reads the curated table and creates its own beside it, named after it.
    summary = dict(summary_job(moved).arguments)
    assert summary["--source_table"] == curated_table
    assert summary["--target_path"] == str(tmp_path / "daily_summary")

    raw_sql = create_table_sql(local[raw_table])
    database, name = raw_table.split(".")
    assert raw_sql.startswith(f"CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{name}` (")
    keys = ", ".join(f"`{key}` string" for key in HOUR_KEYS)
    assert f"PARTITIONED BY ({keys}) STORED AS PARQUET LOCATION '{raw}'" in raw_sql
    assert "'EXTERNAL'" not in raw_sql  # reserved in Spark; CREATE EXTERNAL says it
    assert "`tijd_waarneming` bigint" in raw_sql


# --- the configuration fetch node, run alone (no Spark) ---------------------------------------


def _local_fetch_graph(template, tmp_path, configuration: Path):
    graph, tables = graph_of(template), tables_of(template)
    locations = local_locations(graph, tables, str(tmp_path / "raw"), str(tmp_path / "curated"))
    return with_configuration_url(relocate_graph(graph, locations), configuration.resolve().as_uri())


def test_the_fetch_job_reads_the_local_configuration_into_the_folder_the_transform_reads(template, tmp_path):
    import io

    from traffic_glue.jobs import config_feed

    assert parse_args([]).configuration == str(DEFAULT_CONFIGURATION) and DEFAULT_CONFIGURATION.is_file()
    graph = _local_fetch_graph(template, tmp_path, DEFAULT_CONFIGURATION)
    _, fetch = graph.start_trigger("ON_DEMAND").actions
    arguments = dict(fetch.arguments)
    folder = tmp_path / "configuration"  # beside the raw folder
    assert arguments["--configuration_url"] == DEFAULT_CONFIGURATION.resolve().as_uri()
    assert arguments["--configuration_folder"] == str(folder)
    assert dict(transform_job(graph).arguments)["--configuration_path"] == str(folder)
    # A Python shell job: Glue's arguments and its own, none of the Spark jobs' local ones.
    argv = job_argv(fetch, "/c/wr.json", "/c")
    assert "--run_properties_file" not in argv and "--catalog_dir" not in argv
    assert config_feed.parse_fetch_args(argv).folder == str(folder)

    out = io.StringIO()
    nodes = LocalNodes(None, [], "/c/wr.json", "/c", out=out)
    assert nodes(fetch) == "SUCCEEDED"
    (snapshot,) = folder.iterdir()
    assert snapshot.name.startswith("miv-config-") and snapshot.read_bytes() == DEFAULT_CONFIGURATION.read_bytes()
    assert nodes(fetch) == "SUCCEEDED"  # the same configuration again: nothing new
    assert list(folder.iterdir()) == [snapshot]
    assert f"job {fetch.name}: SUCCEEDED" in out.getvalue()


def test_a_refused_configuration_without_a_snapshot_fails_the_fetch_node(template, tmp_path):
    import io

    page = tmp_path / "error.html"
    page.write_text("<html><body>Service unavailable</body></html>")
    _, fetch = _local_fetch_graph(template, tmp_path, page).start_trigger("ON_DEMAND").actions
    nodes = LocalNodes(None, [], "/c/wr.json", "/c", out=io.StringIO())
    assert nodes(fetch) == "FAILED"
    assert nodes.runs[0].detail == (
        f"exit code 1: traffic_fetch_configuration: refused {page.as_uri()}: an HTML page, not a "
        f"mivconfig document; no snapshot in {tmp_path / 'configuration'} to keep using")
    assert not (tmp_path / "configuration").exists()


# --- the whole thing, in one subprocess ------------------------------------------------------


def _copy_folders(source: Path, target: Path, folders: list[Path]) -> None:
    for folder in folders:
        shutil.copytree(source / folder, target / folder)


def scenario(work: Path) -> dict:
    """Generate raw data, run the workflow twice as folders arrive (the crawls are
    incremental), run the job directly on the same data, compare; all in this process."""
    import runpy

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from tools.sample_data import SampleSpec, generate
    from traffic_glue.compute import schema as S
    from workflows import local_crawler, local_runner, local_sql

    # Laid out as `make run` lays out the project: data/ and .local/catalog.
    data, landing, catalog = work / "data", work / "landing", work / ".local" / "catalog"
    raw, curated, direct = data / "raw", data / "curated", data / "direct"
    stats = generate(str(landing), SampleSpec(start_date=SAMPLE_START, days=SAMPLE_DAYS, lanes=SAMPLE_LANES))
    folders = sorted(p.relative_to(landing) for p in landing.glob("year=*/month=*/day=*/hour=*"))
    first_day = [f for f in folders if f.parts[2] == f"day={SAMPLE_START.day:02d}"]
    later = [f for f in folders if f not in first_day]
    raw_table, curated_table = table_names(load_template(WORKFLOW))
    common = ["--raw", str(raw), "--curated", str(curated), "--catalog-dir", str(catalog)]
    result = {"folders": [len(first_day), len(later)], "generated_readings": stats.readings}

    _copy_folders(landing, raw, first_day)
    result["run1"] = local_runner.main(
        [*common, "--start-date", "2020-04-06", "--end-date", "2020-04-06"])
    _copy_folders(landing, raw, later)
    result["run2"] = local_runner.main(
        [*common, "--trigger", "scheduled", "--start-date", "2020-04-06", "--end-date", "2020-04-07"])

    # Two runs fetched the same configuration: one snapshot.
    result["snapshots"] = sorted(p.name for p in (data / "configuration").iterdir())
    spark = SparkSession.getActiveSession()
    again = local_crawler.crawl(spark, raw_table, str(raw))
    result["crawl_again"] = {"added": again.added, "seen": again.seen}
    local_sql.main([f"SELECT count(*) AS raw_readings FROM {raw_table}", "--catalog-dir", str(catalog)])

    job_main = runpy.run_path(str(JOB_SCRIPT))["main"]
    # The configuration the workflow's fetch job stored beside the raw folder.
    result["direct"] = job_main([str(JOB_SCRIPT), "--JOB_NAME", "direct", "--source_path", str(raw),
                                 "--target_path", str(direct), "--start_date", "2020-04-06",
                                 "--end_date", "2020-04-07",
                                 "--configuration_path", str(data / "configuration")])
    columns = [*S.CURATED_COLUMNS, *(F.col(k).cast("bigint").alias(k) for k in HOUR_KEYS)]
    from_table = spark.table(curated_table).select(*columns)
    from traffic_glue.store import tables
    from_direct = spark.table(tables.path_table(spark, f"file:{direct}")).select(*columns)
    result["table_rows"], result["direct_rows"] = from_table.count(), from_direct.count()
    result["only_in_table"] = from_table.exceptAll(from_direct).count()
    result["only_in_direct"] = from_direct.exceptAll(from_table).count()

    # Days without data: the crawler finds nothing new, the job fails, the run stops.
    result["run_without_data"] = local_runner.main(
        [*common, "--start-date", "2021-01-01", "--end-date", "2021-01-01"])

    # Then every command the README and `make help` offer, as written, in the project.
    os.environ["TRAFFIC_GLUE_CATALOG_DIR"] = str(catalog)  # what `.local/catalog` means in `work`
    result["readme"] = readme_commands.run_all(work)
    return result


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("local_workflow")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "glue_jobs"), str(ROOT)]))
    # In `work`, as a user's shell is in the project: the JVM resolves relative paths (the
    # README's data/curated) against the folder it started in.
    done = subprocess.run([sys.executable, __file__, str(work)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return work / "data", json.loads((work / "result.json").read_text()), done.stdout


def _workflow_runs(stdout: str) -> list[list[str]]:
    """The `[workflow]` lines of each run, one list per run."""
    runs = []
    for line in stdout.splitlines():
        if re.match(r"\[workflow\] \S+: (on-demand|scheduled) run", line):
            runs.append([])
        if line.startswith("[workflow]") and runs:
            runs[-1].append(line.removeprefix("[workflow] "))
    return runs


def test_the_workflow_runs_its_nodes_in_order_and_crawls_only_new_folders(local_run, template):
    work, result, stdout = local_run
    graph = graph_of(template)
    crawler, fetch = (node.name for node in graph.start_trigger("ON_DEMAND").actions)
    job, summary = transform_job(graph).name, summary_job(graph).name
    conditional, after_transform = graph.conditional_triggers
    first, later = result["folders"]
    assert first and later and (result["run1"], result["run2"]) == (0, 0)

    runs = _workflow_runs(stdout)
    assert len(runs) == 3
    expected = ((runs[0], "ON_DEMAND", first, first, ["2020-04-06"]),
                (runs[1], "SCHEDULED", later, first + later, ["2020-04-06", "2020-04-07"]))
    for lines, start, added, seen, days in expected:
        steps = [re.sub(r" in [\d.]+ s", "", line) for line in lines[1:]]
        assert steps == [
            f"trigger {graph.start_trigger(start).name}: fired",
            f"crawler {crawler}: RUNNING",
            f"crawler {crawler}: SUCCEEDED (added {added} partitions, {seen} seen)",
            f"job {fetch}: RUNNING",
            f"job {fetch}: SUCCEEDED",
            f"trigger {conditional.name}: fired",
            f"job {job}: RUNNING",
            f"job {job}: SUCCEEDED",
            f"trigger {after_transform.name}: fired",
            f"job {summary}: RUNNING",
            f"job {summary}: SUCCEEDED",
            f"{graph.name}: SUCCEEDED (4 nodes)",
            *(f"pictures of {day}: {work / 'report' / f'traffic_{day}.html'}" for day in days),
        ]
    (snapshot,) = result["snapshots"]
    assert re.fullmatch(r"miv-config-\d{4}-\d\d-\d\dT\d{6}Z\.xml\.gz", snapshot)
    # A third crawl finds every folder registered already.
    assert result["crawl_again"] == {"added": [], "seen": first + later}


def test_the_crawled_raw_table_holds_every_reading(local_run):
    _, result, stdout = local_run
    match = re.search(r"\|raw_readings\|\n\+-+\+\n\|(\d+)\s*\|", stdout)
    assert match, stdout[-2000:]
    assert int(match.group(1)) == result["generated_readings"]


def test_the_workflow_gives_the_table_the_job_gives_run_directly(local_run):
    work, result, _ = local_run
    assert result["direct"] == 0
    assert result["table_rows"] == result["direct_rows"] > 0
    assert result["only_in_table"] == result["only_in_direct"] == 0
    # Both are Iceberg tables: the catalog's and a path's, read by pyiceberg.
    from_workflow = table_rows(work / "curated")
    assert from_workflow == table_rows(work / "direct")
    assert len(from_workflow) == result["table_rows"]


def test_a_failed_job_stops_the_workflow_naming_it(local_run, template):
    _, result, stdout = local_run
    job = transform_job(graph_of(template)).name
    assert result["run_without_data"] == 1
    lines = _workflow_runs(stdout)[2]
    assert re.fullmatch(rf"job {job}: FAILED in [\d.]+ s: exit code 1: .*no raw files.*", lines[-2])
    assert re.fullmatch(rf"\S+: FAILED at job {job}: .*no raw files.*", lines[-1])


if __name__ == "__main__":
    # The subprocess of `local_run`: python tests/test_local_workflow.py WORK_DIR
    work_dir = Path(sys.argv[1])
    outcome = scenario(work_dir)
    (work_dir / "result.json").write_text(json.dumps(outcome, indent=2))


def test_options_take_the_jobs_spelling_too():
    underscores = parse_args(["--start_date", "2020-04-06", "--end_date", "2020-04-07", "--catalog_dir", "c"])
    dashes = parse_args(["--start-date", "2020-04-06", "--end-date", "2020-04-07", "--catalog-dir", "c"])
    assert (underscores.start_date, underscores.end_date, underscores.catalog_dir) == (
        dt.date(2020, 4, 6), dt.date(2020, 4, 7), "c") == (dashes.start_date, dashes.end_date, dashes.catalog_dir)


# --- after `make run`: every command of the README and of `make help` -----------------------

# `make help`'s targets the scenario does not run, and why.
MAKE_TARGETS_NOT_HERE = {
    "help": "lists these targets: read here",
    "setup": "what every other target runs first (and make test, so CI)",
    "checkov-env": "make test's set-up", "browser-env": "make test's set-up",
    "class-archive": "make setup dumps it (tests/test_class_archive.py)", "test": "the suite itself", "test-fast": "the suite",
    "run": "the scenario's workflow runs",
    "history": "a server in the foreground: tests/test_history_server.py",
    "bench": "the full network (minutes): benchmarks/",
    "glue-docker-test": "needs a docker engine", "package": "tests/test_deploy.py builds the package",
    "deploy": "needs an AWS account: tests/test_stacks.py with moto", "clean": "removes what this checks",
}


def test_every_readme_command_is_run_after_make_run_or_says_why_not():
    run = [re.sub(r"\s+", " ", command) for command, _, _ in readme_commands.EXPECTED]
    for command in readme_commands.readme_commands():
        assert command in run or any(command.startswith(p) for p in readme_commands.NOT_HERE), command
    # and none of the list is gone from the README (but the rollback's example id)
    written = set(readme_commands.readme_commands())
    # The folder of make run's table (issue 21 found it ended in a traceback), make help's
    # targets, and the rollback with a real run id.
    assert [c for c in run if c not in written] == [
        ".venv/bin/python -m tools.table history --target_path data/curated",
        "make job", "make sample", run[-1]]
    assert run[-1].replace("{run}", "20260301T043012Z-1a2b3c4d") in written


def test_every_make_help_target_is_run_after_make_run_or_says_why_not():
    listed = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True)
    targets = re.findall(r"^  make (\S+)", listed.stdout, re.M)
    ran = {command.split()[1] for command, _, _ in readme_commands.EXPECTED if command.startswith("make ")}
    assert sorted(targets) == sorted(ran | set(MAKE_TARGETS_NOT_HERE))


@pytest.mark.parametrize("index", range(len(readme_commands.EXPECTED)))
def test_a_readme_command_works_as_written_on_what_make_run_made(local_run, index):
    _, result, _ = local_run
    command, status, line = readme_commands.EXPECTED[index]
    ran = result["readme"][index]
    assert ran["command"] == command.replace("{run}", ran["command"].split()[-1])
    assert ran["status"] == status, f"{ran['command']}\n{ran['output'][-3000:]}"
    assert any(re.search(line, text) for text in ran["output"].splitlines()), (
        f"{ran['command']}: no line matches {line!r}\n{ran['output'][-3000:]}")
    assert "Traceback" not in ran["output"], ran["output"][-3000:]
