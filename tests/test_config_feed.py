"""The configuration fetcher (traffic_glue.jobs.config_feed, glue_jobs/traffic_fetch_configuration.py)
against a local HTTP server on 127.0.0.1: the real document is stored as a dated
snapshot; an error page, a truncated document and an entity-expansion document are
refused, nothing is written and the last good snapshot stays in use."""

from __future__ import annotations

import datetime as dt
import gzip
import http.server
import re
import socket
import runpy
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

from traffic_glue.jobs import config_feed
from traffic_glue.runtime.arguments import ArgumentError, help_text, markdown_table
from traffic_glue.compute.configuration import parse_configuration, snapshot_time

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT_GZ = (ROOT / "tests" / "fixtures" / "network" / "miv-config-2017-05-18.xml.gz").read_bytes()
DOCUMENT = gzip.decompress(DOCUMENT_GZ)
SCRIPT = ROOT / "glue_jobs" / "traffic_fetch_configuration.py"
FIRST = dt.datetime(2024, 2, 1, 9, 41, 0, tzinfo=dt.timezone.utc)
FIRST_NAME = "miv-config-2024-02-01T094100Z.xml.gz"
LATER = dt.datetime(2024, 2, 2, 4, 30, 5, tzinfo=dt.timezone.utc)
LATER_NAME = "miv-config-2024-02-02T043005Z.xml.gz"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE mivconfig [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<mivconfig><meetpunt unieke_id="1"><volledige_naam>&lol9;</volledige_naam></meetpunt></mivconfig>
"""
ERROR_PAGE = b"<!DOCTYPE html><html><head><title>Error</title></head><body>Service down</body></html>"
# One lane fewer than the real document: a configuration that changed.
CHANGED = DOCUMENT.replace(DOCUMENT[DOCUMENT.index(b"<meetpunt "):DOCUMENT.index(b"</meetpunt>") + 11], b"", 1)

# path -> (status, body, extra headers); served by `server`.
ROUTES = {
    "/config.xml.gz": (200, DOCUMENT_GZ, {"Content-Type": "application/gzip"}),
    "/config.xml": (200, DOCUMENT, {"Content-Type": "application/xml"}),
    "/changed.xml": (200, CHANGED, {"Content-Type": "application/xml"}),
    "/error-page": (200, ERROR_PAGE, {"Content-Type": "text/html"}),
    "/plain-error": (200, b"Service temporarily unavailable", {"Content-Type": "text/plain"}),
    "/other-xml": (200, b"<miv><meetpunt unieke_id='1'/></miv>", {"Content-Type": "application/xml"}),
    "/empty": (200, b"", {"Content-Type": "application/xml"}),
    "/unavailable": (503, b"<html><body>503 Service Unavailable</body></html>", {"Content-Type": "text/html"}),
    "/truncated.xml.gz": (200, DOCUMENT_GZ[: len(DOCUMENT_GZ) // 2], {"Content-Type": "application/gzip"}),
    "/truncated.xml": (200, DOCUMENT[: len(DOCUMENT) // 2], {"Content-Type": "application/xml"}),
    "/bomb.xml": (200, BILLION_LAUGHS, {"Content-Type": "application/xml"}),
}
CLOSED_EARLY, SLOW = "/closed-early", "/slow"

# Each bad response, and what the refusal says of it.
REFUSALS = [
    ("/error-page", "an HTML page, not a mivconfig document"),
    ("/plain-error", "not well-formed XML"),
    ("/other-xml", "its root element is <miv>, not <mivconfig>"),
    ("/empty", "not well-formed XML"),
    ("/unavailable", "HTTP 503 Service Unavailable"),
    ("/missing", "HTTP 404"),
    ("/truncated.xml.gz", "the gzip stream is truncated"),
    ("/truncated.xml", "not well-formed XML"),
    ("/bomb.xml", ": the document declares a DTD or entities"),
    (CLOSED_EARLY, r"the response is truncated \(1,000 of [\d,]+ bytes\)"),
]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == CLOSED_EARLY:  # announces the whole document, sends 1,000 bytes
            self.send_response(200)
            self.send_header("Content-Length", str(len(DOCUMENT)))
            self.end_headers()
            self.wfile.write(DOCUMENT[:1000])
            self.close_connection = True
            return
        if self.path == SLOW:
            time.sleep(2)
        status, body, headers = ROUTES.get(self.path, (404, b"not found", {"Content-Type": "text/plain"}))
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (SLOW's timeout): socketserver would print it

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def files(folder: Path) -> dict:
    """Every file in the folder, hidden ones too, with its bytes."""
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.exists() else {}


# --- a good document ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/config.xml.gz", "/config.xml"])
def test_a_good_document_is_stored_gzipped_under_the_utc_time_of_the_fetch(server, tmp_path, path):
    folder = tmp_path / "configuration"
    outcome = config_feed.fetch(server + path, str(folder), now=FIRST, timeout=5)
    assert (outcome.status, outcome.snapshot, outcome.exit_status) == (config_feed.STORED, FIRST_NAME, 0)
    assert outcome.message == f"{server}{path}: 4,254 lanes, stored {folder / FIRST_NAME}"
    assert list(files(folder)) == [FIRST_NAME]  # no temporary file left
    stored = (folder / FIRST_NAME).read_bytes()
    assert stored[:2] == b"\x1f\x8b"
    assert gzip.decompress(stored) == DOCUMENT
    if path.endswith(".gz"):
        assert stored == DOCUMENT_GZ  # as received
    assert snapshot_time(FIRST_NAME) == FIRST  # the name the transform dates it by
    assert parse_configuration(stored, FIRST_NAME) == parse_configuration(DOCUMENT_GZ, "fixture")


def test_the_same_configuration_again_stores_nothing(server, tmp_path):
    config_feed.fetch(server + "/config.xml.gz", str(tmp_path), now=FIRST, timeout=5)
    before = files(tmp_path)
    # The same lanes, served plain rather than gzipped, a day later.
    outcome = config_feed.fetch(server + "/config.xml", str(tmp_path), now=LATER, timeout=5)
    assert (outcome.status, outcome.snapshot, outcome.exit_status) == (config_feed.UNCHANGED, FIRST_NAME, 0)
    assert outcome.message == f"{server}/config.xml: 4,254 lanes, the same as {FIRST_NAME}; nothing stored"
    assert files(tmp_path) == before


def test_a_changed_configuration_becomes_the_latest_snapshot(server, tmp_path):
    config_feed.fetch(server + "/config.xml.gz", str(tmp_path), now=FIRST, timeout=5)
    outcome = config_feed.fetch(server + "/changed.xml", str(tmp_path), now=LATER, timeout=5)
    assert (outcome.status, outcome.snapshot) == (config_feed.STORED, LATER_NAME)
    assert sorted(files(tmp_path)) == [FIRST_NAME, LATER_NAME]
    assert (tmp_path / FIRST_NAME).read_bytes() == DOCUMENT_GZ
    assert config_feed.latest_snapshot(config_feed.LocalFolder(str(tmp_path))) == LATER_NAME
    assert len(parse_configuration((tmp_path / LATER_NAME).read_bytes(), LATER_NAME)) == 4253


# --- bad responses ----------------------------------------------------------------------------


@pytest.mark.parametrize("path, reason", REFUSALS, ids=[p for p, _ in REFUSALS])
def test_a_bad_response_is_refused_and_the_last_good_snapshot_kept(server, tmp_path, path, reason):
    config_feed.fetch(server + "/config.xml.gz", str(tmp_path), now=FIRST, timeout=5)
    before = files(tmp_path)
    outcome = config_feed.fetch(server + path, str(tmp_path), now=LATER, timeout=5)
    assert outcome.status == config_feed.REFUSED
    assert outcome.message.startswith(f"refused {server}{path}: ")
    assert outcome.message.endswith(f"; keeping {FIRST_NAME}")
    assert len(outcome.message.splitlines()) == 1
    assert re.search(reason, outcome.message), outcome.message
    assert (outcome.snapshot, outcome.exit_status) == (FIRST_NAME, 0)
    assert files(tmp_path) == before  # nothing new, the snapshot byte for byte as it was
    assert config_feed.latest_snapshot(config_feed.LocalFolder(str(tmp_path))) == FIRST_NAME


@pytest.mark.parametrize("path, reason", REFUSALS, ids=[p for p, _ in REFUSALS])
def test_a_bad_response_without_any_snapshot_is_a_failure(server, tmp_path, path, reason):
    folder = tmp_path / "configuration"
    outcome = config_feed.fetch(server + path, str(folder), now=LATER, timeout=5)
    assert (outcome.status, outcome.snapshot, outcome.exit_status) == (config_feed.REFUSED, None, 1)
    assert outcome.message.endswith(f"; no snapshot in {folder} to keep using")
    assert files(folder) == {}


def test_a_server_that_does_not_answer_in_time_is_refused(server, tmp_path):
    started = time.monotonic()
    outcome = config_feed.fetch(server + SLOW, str(tmp_path), now=LATER, timeout=0.5)
    assert time.monotonic() - started < 1.9
    assert outcome.message == f"refused {server}{SLOW}: no answer within 0.5 s; no snapshot in {tmp_path} to keep using"
    assert outcome.exit_status == 1


def test_nothing_listening_is_a_refusal(tmp_path):
    with socket.socket() as sock:  # bound, never listening: the connection is refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/x"
        outcome = config_feed.fetch(url, str(tmp_path), timeout=0.5)
    assert outcome.message.startswith(f"refused {url}: cannot be read (")
    assert outcome.exit_status == 1


def test_a_document_larger_than_the_bound_is_refused_unread(server):
    with pytest.raises(config_feed.ConfigurationError, match="announces [\\d,]+ bytes, more than 1,000"):
        config_feed.download(server + "/config.xml", timeout=5, limit=1000)


def test_a_local_file_is_fetched_through_a_file_url(tmp_path):
    source = tmp_path / "miv-config.xml.gz"
    source.write_bytes(DOCUMENT_GZ)
    outcome = config_feed.fetch(source.as_uri(), str(tmp_path / "configuration"), now=FIRST)
    assert (outcome.status, outcome.snapshot) == (config_feed.STORED, FIRST_NAME)
    missing = config_feed.fetch((tmp_path / "nothing.xml").as_uri(), str(tmp_path / "configuration"), now=LATER)
    assert missing.status == config_feed.REFUSED and "cannot be read" in missing.message
    assert missing.snapshot == FIRST_NAME


# --- an S3 folder (moto's server on 127.0.0.1) ----------------------------------------------------


def test_an_s3_folder_gets_one_object_per_changed_configuration(endpoint, server):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="raw", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="raw", Key="raw/year=2024/month=02/day=01/hour=00/part.parquet", Body=b"x")
    target = "s3://raw/configuration/"
    stored = config_feed.fetch(server + "/config.xml", target, now=FIRST, timeout=5)
    assert stored.message.endswith(f"stored s3://raw/configuration/{FIRST_NAME}")
    same = config_feed.fetch(server + "/config.xml.gz", target, now=LATER, timeout=5)
    refused = config_feed.fetch(server + "/bomb.xml", target, now=LATER, timeout=5)
    assert (same.status, refused.status, refused.snapshot) == (config_feed.UNCHANGED, config_feed.REFUSED, FIRST_NAME)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="raw", Prefix="configuration/")["Contents"]]
    assert keys == [f"configuration/{FIRST_NAME}"]
    body = s3.get_object(Bucket="raw", Key=keys[0])["Body"].read()
    assert gzip.decompress(body) == DOCUMENT


# --- the job script -------------------------------------------------------------------------------


def run_script(argv: list) -> int:
    main = runpy.run_path(str(SCRIPT), run_name="fetch_configuration")["main"]
    return main([str(SCRIPT), *argv, "--JOB_NAME", "fetch", "--JOB_RUN_ID", "jr_1"])


def test_the_script_exits_0_while_a_snapshot_is_in_use_and_1_without(server, tmp_path, capsys):
    folder = str(tmp_path / "configuration")
    assert run_script(["--configuration_url", server + "/bomb.xml", "--configuration_folder", folder]) == 1
    assert capsys.readouterr().err.startswith(f"traffic_fetch_configuration: refused {server}/bomb.xml: ")
    assert run_script(["--configuration_url", server + "/config.xml.gz", "--configuration_folder", folder]) == 0
    assert "4,254 lanes, stored" in capsys.readouterr().out
    assert run_script(["--configuration_url", server + "/unavailable", "--configuration_folder", folder]) == 0
    err = capsys.readouterr().err
    assert "HTTP 503" in err and "; keeping miv-config-" in err


@pytest.mark.parametrize("argv, message", [
    (["--configuration_url", "http://x/"], "--configuration_folder is required"),
    (["--configuration_folder", "f"], "--configuration_url is required"),
    (["--configuration_url", "ftp://x/", "--configuration_folder", "f"], "must be http(s):// or file://"),
    (["--configuration_url", "http://x/", "--configuration_folder", "gs://b/"], "a local folder or s3://"),
    (["--configuration_url", "http://x/", "--configuration_folder", "f", "--timeout_seconds", "0"],
     "--timeout_seconds must be >= 1, got 0"),
    (["--configuration_url", "http://x/", "--configuration_folder", "f", "--timeout_seconds", "soon"],
     "--timeout_seconds must be a whole number >= 1, got 'soon'"),
    (["--configuration_url", "http://x/", "--configuration_fodler", "f"],
     "unknown argument --configuration_fodler; did you mean --configuration_folder?"),
])
def test_bad_arguments_exit_2_naming_the_argument(argv, message, capsys):
    assert run_script(argv) == 2
    assert message in capsys.readouterr().err
    with pytest.raises(ArgumentError):
        config_feed.parse_fetch_args(["x", *argv])


def test_glues_own_parameters_are_accepted():
    args = config_feed.parse_fetch_args([
        "script.py", "--job-bookmark-option", "job-bookmark-disable", "--JOB_ID", "j_1",
        "--JOB_RUN_ID", "jr_1", "--JOB_NAME", "fetch", "--WORKFLOW_NAME", "w", "--WORKFLOW_RUN_ID", "wr_1",
        "--configuration_url", "http://x/", "--configuration_folder=s3://raw/configuration/",
        "--additional-python-modules", "defusedxml==0.7.1", "--extra-py-files", "s3://a/lib.zip",
    ])
    assert args == config_feed.FetchConfig("http://x/", "s3://raw/configuration/", 60)


def test_the_fetcher_needs_no_spark():
    """A Glue Python shell job has no pyspark: importing the script's modules must not need it."""
    code = (
        "import sys; sys.path.insert(0, 'glue_jobs'); import runpy; "
        "runpy.run_path('glue_jobs/traffic_fetch_configuration.py'); "
        "assert not [m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j', 'awsglue')], sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_the_readme_documents_the_fetch_jobs_arguments():
    table = markdown_table(config_feed.ARGUMENTS)
    assert table in (ROOT / "README.md").read_text()
    assert [line.split(" | ")[:2] for line in table.splitlines()[2:]] == [
        ["| `--configuration_url`", "required"], ["| `--configuration_folder`", "required"],
        ["| `--timeout_seconds`", "60"]]


def test_help_lists_the_arguments_and_needs_no_spark():
    code = (
        "import sys; sys.path.insert(0, 'glue_jobs'); import runpy; "
        "main = runpy.run_path('glue_jobs/traffic_fetch_configuration.py')['main']; "
        "assert main(['x', '--help']) == 0; "
        "assert not [m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j', 'awsglue')]"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == help_text(config_feed.PROGRAM, config_feed.USAGE, config_feed.ARGUMENTS) + "\n"
    assert done.stdout.startswith("usage: traffic_fetch_configuration --configuration_url URL ")


def test_the_outcome_says_where_its_line_goes_and_the_exit_status():
    stored = config_feed.FetchOutcome(config_feed.STORED, "u: 3 lanes, stored f/x", "x")
    kept = config_feed.FetchOutcome(config_feed.REFUSED, "refused u: HTTP 503; keeping x", "x")
    none = config_feed.FetchOutcome(config_feed.REFUSED, "refused u: HTTP 503; no snapshot", None)
    assert [(o.exit_status, o.error_log) for o in (stored, kept, none)] == [(0, False), (0, True), (1, True)]
    assert stored.summary() == "traffic_fetch_configuration: u: 3 lanes, stored f/x"
