"""The Glue-only path: GlueContext, Job.init and Job.commit around a real run.

These need Glue's JARs, which exist on AWS Glue and in the official Glue docker image
(`make glue-docker-test`); everywhere else they are skipped with that reason. The
plain-PySpark path of the same job is covered by tests/test_job.py.
"""

import datetime as dt
from pathlib import Path

import pytest

from tests.factories import T0, land_parquet, raw_reading
from traffic_glue.jobs import job
from traffic_glue.jobs.transform_args import parse_job_args
from traffic_glue.runtime import glue
from traffic_glue.runtime.arguments import ArgumentError


@pytest.fixture
def glue_context_available(spark):
    if not glue.glue_jars_present(spark.sparkContext):
        pytest.skip("needs AWS Glue's JARs (GlueContext): run `make glue-docker-test` "
                    "in the Glue 5 docker image")


def test_start_gives_a_local_runtime_outside_spark_submit(spark, monkeypatch, tmp_path):
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    argv = ["t.py", "--JOB_NAME", "local", "--source_path", str(tmp_path), "--target_path", "o"]
    runtime = glue.start(parse_job_args(argv), argv)
    assert not runtime.on_glue and runtime.job is None
    assert runtime.spark.sparkContext is spark.sparkContext  # the running session, reused
    assert runtime.spark.conf.get("spark.sql.session.timeZone") == "UTC"
    runtime.commit()  # nothing to commit locally, and no error


@pytest.fixture
def local_sessions(monkeypatch):
    """The arguments `local_spark_session` gets, outside spark-submit (no session made)."""
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.delenv("TRAFFIC_GLUE_CATALOG_DIR", raising=False)
    made = []

    def local_spark_session(**kwargs):
        made.append(kwargs)
        return "session"

    monkeypatch.setattr(glue, "local_spark_session", local_spark_session)
    return made


@pytest.mark.parametrize("env, catalog_dir, expected", [
    (None, None, str(glue.DEFAULT_LOCAL_CATALOG)),
    ("/env/catalog", None, "/env/catalog"),
    ("/env/catalog", "/given/catalog", "/given/catalog"),
])
def test_start_job_gives_a_named_job_the_local_catalog(local_sessions, monkeypatch, env, catalog_dir, expected):
    """A second job (the table maintenance) starts without a JobConfig."""
    if env:
        monkeypatch.setenv("TRAFFIC_GLUE_CATALOG_DIR", env)
    runtime = glue.start_job("maintenance", ["m.py"], catalog_dir=catalog_dir)
    assert runtime.spark == "session" and not runtime.on_glue
    assert local_sessions == [{"app_name": "maintenance", "catalog_dir": expected, "log_level": "WARN"}]


@pytest.mark.parametrize("tables, expected", [
    ([], None),  # paths only: no catalog
    (["--target_table", "traffic.traffic_minutes"], str(glue.DEFAULT_LOCAL_CATALOG)),
])
def test_start_uses_the_catalog_only_when_the_config_names_a_table(local_sessions, tmp_path, tables, expected):
    argv = ["t.py", "--JOB_NAME", "local", "--source_path", str(tmp_path), "--target_path", "o", *tables]
    glue.start(parse_job_args(argv), argv)
    assert local_sessions == [{"app_name": "local", "catalog_dir": expected, "log_level": "WARN"}]


def test_start_sets_spark_logging_to_the_log_level_given(local_sessions, tmp_path):
    argv = ["t.py", "--JOB_NAME", "local", "--source_path", str(tmp_path), "--target_path", "o",
            "--log_level", "info"]
    glue.start(parse_job_args(argv), argv)
    assert local_sessions[0]["log_level"] == "INFO"


@pytest.mark.glue
def test_glue_runtime_runs_and_commits_the_job(spark, glue_context_available, tmp_path):
    land_parquet(tmp_path / "raw", [
        raw_reading(11, 1, T0 + 60 * m, counts=(2, 0, 0, 0), speeds=(80, 0, 0, 0)) for m in range(3)
    ])
    argv = ["traffic_transform.py", "--JOB_NAME", "glue-test", "--source_path",
            str(tmp_path / "raw"), "--target_path", str(tmp_path / "curated"),
            "--start_date", "2020-04-07", "--end_date", "2020-04-07"]
    config = parse_job_args(argv)
    runtime = glue.glue_job_runtime(spark.sparkContext, config.job_name, argv)
    assert runtime.on_glue
    assert runtime.spark.conf.get("spark.sql.session.timeZone") == "UTC"
    report = job.run(runtime.spark, config)
    runtime.commit()
    assert report.output["rows"] == 3 and report.accounting_holds
    assert config.start_date == dt.date(2020, 4, 7)


def test_only_the_glue_module_imports_awsglue():
    """The transforms and the rest of the package run where Glue's libraries are not."""
    import ast

    package = Path(__file__).resolve().parents[1] / "glue_jobs" / "traffic_glue"
    importing = []
    for module in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "awsglue" for name in names):
                importing.append(module.relative_to(package).as_posix())
    assert sorted(set(importing)) == ["runtime/glue.py"]


def test_the_transforms_and_the_arguments_import_without_awsglue():
    import subprocess
    import sys

    code = ("import sys; sys.modules['awsglue'] = None\n"  # any import of awsglue fails
            "import traffic_glue.compute.transforms, traffic_glue.compute.pipeline, traffic_glue.compute.summary, "
            "traffic_glue.runtime.config, traffic_glue.runtime.arguments, traffic_glue.runtime.frame, "
            "traffic_glue.runtime.run_properties, traffic_glue.jobs.transform_args")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root / "glue_jobs")})
    assert done.returncode == 0, done.stderr


# --- the arguments through Glue's getResolvedOptions ------------------------------------------


def test_resolved_options_reads_only_the_names_asked_for():
    argv = ["t.py", "--JOB_NAME", "j", "--JOB_RUN_ID", "jr_1", "--conf", "spark.x=y --conf spark.z=w",
            "--locations", "-31,-957", "--TempDir", "s3://tmp/"]
    values = glue.resolved_options(argv, ["JOB_NAME", "locations"])
    # Asked for, and what getResolvedOptions declares itself; never --conf as --configuration_path.
    assert (values["JOB_NAME"], values["locations"], values["JOB_RUN_ID"], values["TempDir"]) == (
        "j", "-31,-957", "jr_1", "s3://tmp/")
    assert "conf" not in values and "configuration_path" not in values


def test_resolved_options_names_what_glue_refuses():
    with pytest.raises(ArgumentError, match="--late_hours"):
        glue.resolved_options(["t.py", "--late_hours"], ["late_hours"])  # no value
