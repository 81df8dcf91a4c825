"""The production path: the job on S3 through S3A, against moto's S3 API on 127.0.0.1.

Glue 5.1 reads and writes `s3://` through S3A. Here the job reads a Firehose landing
from one bucket and writes the curated Iceberg table to another through S3A, as a user
runs it against a local S3 endpoint:

    AWS_ENDPOINT_URL_S3=http://127.0.0.1:PORT python glue_jobs/traffic_transform.py \\
        --source_path s3a://raw/landing --target_path s3a://curated/traffic_minutes ...

in a process of its own (a JVM of its own, which is also what a SIGKILL ends). The
reruns run in this process, on the suite's session pointed at the same endpoint.
The table is read back by pyiceberg over S3, independently of Spark.

A table given by path on S3 commits through Iceberg's file-based catalog, whose commit
is one object written under a new name: a killed run cannot leave half of one. On AWS
the job writes through the Glue catalog instead (two writers at once are then detected
by Glue's optimistic VersionId check, which moto does not enforce).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest
from pyiceberg.table import StaticTable

from tests.aws_fakes import fake_aws_environment
from tests.job_helpers import (
    ROOT, SCRIPT, hadoop_table_version, iceberg_rows, job_env, kill_when, run_job, table_rows,
)
from tests.network import CONFIGURATION
from tools.sample_data import SampleSpec, generate

RAW, CURATED = "raw", "curated"
GLUE_CURATED = "glue-curated"  # the Glue catalog's table: a bucket of its own
TABLE = f"s3a://{CURATED}/traffic_minutes"
DAY = "2020-04-07"
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Every run reads the traffic centre's configuration as on Glue: from the raw bucket
# (the fetch job's folder of snapshots), through S3A; the local runs from the file.
CONFIGURATION_FOLDER = "configuration"
S3_CONFIGURATION = ("--configuration_path", f"s3a://{RAW}/{CONFIGURATION_FOLDER}/")


@pytest.fixture(scope="module")
def landings(tmp_path_factory) -> dict[str, Path]:
    """Two landings of one day (different traffic), and the rows a local run makes."""
    root = tmp_path_factory.mktemp("s3-landings")
    found = {}
    for name, seed in (("old", 3), ("new", 4)):
        generate(str(root / name), SampleSpec(start_date=dt.date(2020, 4, 7), days=1, lanes=8, seed=seed))
        found[name] = root / name
    return found


@pytest.fixture(scope="module")
def local_rows(landings, tmp_path_factory) -> dict[str, list[tuple]]:
    rows = {}
    for name, landing in landings.items():
        target = tmp_path_factory.mktemp(f"local-{name}") / "curated"
        assert run_job(landing, target, DAY, DAY, "--configuration_path", str(CONFIGURATION)) == 0
        rows[name] = table_rows(target)
    assert rows["old"] != rows["new"]
    return rows


@pytest.fixture(scope="module")
def s3(moto_server, spark, landings, tmp_path_factory):
    """The module's S3 on moto's server (cleared first): the buckets, the configuration
    and both landings (prefixes `old` and `new`), uploaded once for every test; boto3 and
    the suite's session's S3A point at it. The tests share the table at TABLE too: the
    user's run (`user_run`) makes it from the old landing; the killed run's test, which
    leaves the new landing's rows, is the last of this file's tests on it (pytest runs
    them in file order). The module's own runs get the fake credentials `fake_aws` gives
    every test."""
    with pytest.MonkeyPatch.context() as environment:
        fake_aws_environment(environment, tmp_path_factory.mktemp("aws"))
        environment.setenv("AWS_ENDPOINT_URL", moto_server)
        environment.setenv("AWS_ENDPOINT_URL_S3", moto_server)
        urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"))
        client = boto3.client("s3", endpoint_url=moto_server)
        for bucket in (RAW, CURATED, GLUE_CURATED):
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        client.upload_file(str(CONFIGURATION), RAW, f"{CONFIGURATION_FOLDER}/{CONFIGURATION.name}")
        for name, landing in landings.items():
            upload(client, landing, name)
        hadoop = spark.sparkContext._jsc.hadoopConfiguration()
        from traffic_glue.runtime.session import s3a_conf

        for key, value in s3a_conf(moto_server).items():
            hadoop.set(key.removeprefix("spark.hadoop."), value)
        hadoop.set("fs.s3a.access.key", KEYS["AWS_ACCESS_KEY_ID"])
        hadoop.set("fs.s3a.secret.key", KEYS["AWS_SECRET_ACCESS_KEY"])
        yield client


@pytest.fixture
def endpoint(s3, moto_server, monkeypatch) -> str:
    """moto's server, as conftest's `endpoint` gives it but not cleared: this module's
    tests share what is on it (`s3`)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server)
    return moto_server


def upload(client, landing: Path, prefix: str) -> str:
    for path in sorted(landing.rglob("*.parquet")):
        client.upload_file(str(path), RAW, f"{prefix}/{path.relative_to(landing)}")
    return f"s3a://{RAW}/{prefix}"


def s3_rows(client, endpoint: str) -> list[tuple]:
    """The table's current snapshot, read by pyiceberg from the version its catalog names
    (the hint, or the highest version when a killed run left no hint, as Iceberg reads it)."""
    try:
        hint = client.get_object(Bucket=CURATED, Key="traffic_minutes/metadata/version-hint.text")
        version = hint["Body"].read().decode().strip()
    except client.exceptions.NoSuchKey:
        version = hadoop_table_version(
            key.rsplit("/", 1)[1] for key in _objects(client, "traffic_minutes/metadata/v"))
    table = StaticTable.from_metadata(
        f"{TABLE}/metadata/v{version}.metadata.json",
        properties={"s3.endpoint": endpoint, "s3.access-key-id": "testing",
                    "s3.secret-access-key": "testing", "s3.region": "eu-west-1"},
    )
    return iceberg_rows(table)


def job_process(endpoint: str, source: str, log: Path) -> subprocess.Popen:
    env = job_env(AWS_ENDPOINT_URL_S3=endpoint, **KEYS)
    env.pop("AWS_ENDPOINT_URL", None)  # S3 only: what the README's example sets
    command = [sys.executable, str(SCRIPT), "--JOB_NAME", "s3-test", "--source_path", source,
               "--target_path", TABLE, "--start_date", DAY, "--end_date", DAY, *S3_CONFIGURATION]
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.fixture(scope="module")
def user_run(s3, moto_server, tmp_path_factory, request) -> dict:
    """The job run as a user runs it (a process of its own) on the old landing, into the
    empty table; then rerun in this process (the same S3A). What each left."""
    log = tmp_path_factory.mktemp("user-run") / "job.log"
    source = f"s3a://{RAW}/old"
    job = job_process(moto_server, source, log)
    request.getfixturevalue("local_rows")  # the local runs, while the job's JVM starts
    assert job.wait(timeout=300) == 0, log.read_text()[-3000:]
    run = {"log": log.read_text(), "rows": s3_rows(s3, moto_server),
           "objects": [o["Key"] for o in s3.list_objects_v2(Bucket=CURATED)["Contents"]]}
    run["rerun"] = run_job(source, TABLE, DAY, DAY, *S3_CONFIGURATION)
    run["rerun_rows"] = s3_rows(s3, moto_server)
    return run


def test_the_job_run_as_a_user_runs_it_on_s3_equals_the_local_run(user_run, local_rows):
    assert "succeeded" in user_run["log"]
    assert user_run["rows"] == local_rows["old"]
    assert "1 snapshot, 4,254 lanes in all" in user_run["log"]
    assert all(row[0] > 0 for row in local_rows["old"])  # carriageways of the configuration
    listed = user_run["objects"]
    assert any(k.startswith("traffic_minutes/_reports/run_date=") for k in listed)
    assert any(k.startswith("traffic_minutes/data/year=2020/month=4/day=7/hour=") for k in listed)

    # A rerun (in this process, the same S3A) gives the same rows in a new snapshot.
    assert user_run["rerun"] == 0
    assert user_run["rerun_rows"] == local_rows["old"]


def _objects(client, prefix: str) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=CURATED, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def test_a_corrupt_raw_object_stops_the_run_naming_it_and_changes_nothing(
        s3, endpoint, user_run, landings, local_rows, capsys):
    source = upload(s3, landings["old"], "corrupt")  # the old landing again, and one bad object
    key = "corrupt/year=2020/month=04/day=07/hour=12/zz-corrupt.parquet"
    s3.put_object(Bucket=RAW, Key=key, Body=b"this is not a Parquet file\n")
    assert s3_rows(s3, endpoint) == local_rows["old"]  # as the user's run left the table
    capsys.readouterr()
    assert run_job(source, TABLE, DAY, DAY, *S3_CONFIGURATION) == 1
    error = capsys.readouterr().err
    assert f"raw file s3a://{RAW}/{key} is not a readable Parquet file" in error
    assert s3_rows(s3, endpoint) == local_rows["old"]


def _requests_to_moto(monkeypatch) -> list[tuple[str, str, str]]:
    """The requests moto's server (in this process) gets from now on: method, path, query."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    sent, serve = [], DomainDispatcherApplication.__call__

    def counted(self, environ, start_response):
        sent.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("QUERY_STRING", "")))
        return serve(self, environ, start_response)

    monkeypatch.setattr(DomainDispatcherApplication, "__call__", counted)
    return sent


def _old_landings_day(spark) -> list:
    """The raw files a run of DAY on the old landing reads, as the job lists them."""
    from traffic_glue.store import sources

    day = dt.datetime.fromisoformat(DAY)
    return sources.list_raw_files(spark, f"s3a://{RAW}/old", day, day + dt.timedelta(days=1))


def test_the_hour_folders_are_listed_with_one_request_each(s3, endpoint, spark, landings, monkeypatch):
    """A run's listing of its raw hour folders: the day's folders found by a glob, then
    each listed by one LIST request, with no existence check before it (a HEAD and a
    LIST more for every folder)."""
    from urllib.parse import parse_qs

    sent = _requests_to_moto(monkeypatch)
    files = _old_landings_day(spark)

    local = sorted(p.relative_to(landings["old"]).as_posix() for p in landings["old"].rglob("*.parquet"))
    assert [f.path for f in files] == [f"s3a://{RAW}/old/{key}" for key in local if "day=07" in key]
    folders = sorted({f"old/{key.rsplit('/', 1)[0]}/" for key in local if "day=07" in key})
    assert len(folders) == 24
    listed = [parse_qs(query).get("prefix", [""])[0] for method, _, query in sent if "list-type" in query]
    assert all(listed.count(folder) == 1 for folder in folders), listed
    assert not [path for method, path, _ in sent if method == "HEAD" and "hour=" in path.rsplit("/", 1)[-1]]


def test_the_footers_are_read_with_the_listed_lengths(s3, endpoint, spark, landings, monkeypatch):
    """Reading the raw files' footers sends S3 one HEAD request per file, S3A's own when it
    opens the file, and not Parquet's for the file's length, which the listing gave."""
    from traffic_glue.store import sources

    files = _old_landings_day(spark)
    sent = _requests_to_moto(monkeypatch)
    read = sources.inspect_parquet(spark, files, "corrected", skip_corrupt=False)

    keys = [f.path.split(f"s3a://{RAW}/", 1)[1] for f in files]
    assert len(files) >= 24 and [f.path for f in read.files] == [f.path for f in files]
    # Each file's readings as its local copy's footer has them.
    assert [f.rows for f in read.files] == [
        pq.read_metadata(landings["old"] / key.removeprefix("old/")).num_rows for key in keys]
    assert sorted(path for method, path, _ in sent if method == "HEAD") == [f"/{RAW}/{key}" for key in keys]


def test_a_run_killed_after_its_branch_commit_changes_nothing_and_the_next_run_succeeds(
        s3, endpoint, user_run, local_rows, tmp_path):
    """SIGKILL after the run's commit on its own branch (CREATE BRANCH and the overwrite:
    two new metadata versions), before or while main is fast-forwarded: readers see the
    old rows or the new ones, never a mix, and the next run succeeds with no manual step.
    On S3 a commit is one object written under a new name and the version hint is
    replaced by delete-then-put (a kill between them leaves no hint). A run killed while
    writing its data files is test_crashes' (the same code; here only orphans differ)."""
    new = f"s3a://{RAW}/new"
    assert s3_rows(s3, endpoint) == local_rows["old"]  # as the user's run left the table

    versions = len(_objects(s3, "traffic_minutes/metadata/v"))
    job = job_process(endpoint, new, tmp_path / "killed-committing.log")
    kill_when(job, lambda: len(_objects(s3, "traffic_minutes/metadata/v")) >= versions + 2,
               tmp_path / "killed-committing.log")
    assert s3_rows(s3, endpoint) in (local_rows["old"], local_rows["new"])  # never a mix
    assert run_job(new, TABLE, DAY, DAY, *S3_CONFIGURATION) == 0
    assert s3_rows(s3, endpoint) == local_rows["new"]


# --- the Glue Data Catalog (moto's) -------------------------------------------------------

# The Glue job, then the history a user asks for after it, in one process (one JVM fewer
# for the suite; each is its script's `main`, as its command line runs it).
JOB_THEN_HISTORY = """
import json, runpy, sys
job, history = json.loads(sys.argv[1])
status = runpy.run_path(job[0])["main"](job)
if status:
    sys.exit(status)
from tools import table
print("--- history ---", flush=True)
sys.exit(table.main(history))
"""


def test_the_job_writes_the_table_through_the_glue_catalog_as_on_glue(s3, endpoint, local_rows, tmp_path):
    """The catalog and file IO of the Glue job (`iceberg.glue_session_catalog_conf`:
    Iceberg's GlueCatalog, S3FileIO) against moto's Glue and S3. moto serves every call
    Iceberg makes here (GetDatabase, GetTable, CreateTable, UpdateTable) but does not
    check UpdateTable's VersionId, Glue's guard against two writers at once: that guard
    is not exercised here. The database exists, as the foundation stack makes it."""
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": "traffic"})
    source = f"s3a://{RAW}/old"
    log = tmp_path / "glue.log"
    env = job_env(AWS_ENDPOINT_URL=endpoint, AWS_ENDPOINT_URL_S3=endpoint, AWS_REGION="eu-west-1", **KEYS)
    job = [str(SCRIPT), "--JOB_NAME", "glue-catalog-test", "--source_path", source,
           "--target_table", "traffic.traffic_minutes", "--target_path", f"s3://{GLUE_CURATED}/traffic_minutes",
           "--glue_warehouse", f"s3://{GLUE_CURATED}/", "--start_date", DAY, "--end_date", DAY,
           # as the template passes it: s3://, the fetch job's folder
           "--configuration_path", f"s3://{RAW}/{CONFIGURATION_FOLDER}/"]
    # History through the same catalog, as a user would ask for it on AWS.
    history = ["history", "--target_table", "traffic.traffic_minutes",
               "--glue-warehouse", f"s3://{GLUE_CURATED}/", "--json"]
    done = subprocess.run([sys.executable, "-c", JOB_THEN_HISTORY, json.dumps([job, history])],
                          env=env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, timeout=300)
    output = log.read_text()
    assert done.returncode == 0, output[-3000:]

    table = glue.get_table(DatabaseName="traffic", Name="traffic_minutes")["Table"]
    assert table["Parameters"]["table_type"].upper() == "ICEBERG"
    metadata = table["Parameters"]["metadata_location"]
    assert metadata.startswith(f"s3://{GLUE_CURATED}/traffic_minutes/metadata/")
    current = StaticTable.from_metadata(
        metadata, properties={"s3.endpoint": endpoint, "s3.access-key-id": "testing",
                              "s3.secret-access-key": "testing", "s3.region": "eu-west-1"})
    assert iceberg_rows(current) == local_rows["old"]
    assert current.properties["traffic-glue.semantics"] == "corrected"

    _, listed = output.split("--- history ---\n")
    (commit,) = [json.loads(line) for line in listed.splitlines() if line.startswith("{")]
    assert (commit["days"], commit["semantics"], commit["current"]) == (f"{DAY}..{DAY}", "corrected", True)
    assert commit["rows"] == len(local_rows["old"])
