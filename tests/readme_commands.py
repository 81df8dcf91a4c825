"""Every command the README shows, run as written on what `make run` made (issue 21).

`run_all(work)` runs in test_local_workflow's scenario process, after the workflow ran in
`work` laid out as the project is after `make run` (`data/`, `.local/catalog`, and links
to the project's Makefile, scripts and fixtures). Each README command line goes to bash
as written, in `work`; `work/.venv/bin/python` there is a recorder, so `make` expands its
recipe (variables, `$(value Q)`, the shell's quoting) and the recorder keeps the Python
command it would have run, with its environment and standard input. That command then
runs in this process (one JVM for all of them), and its exit status and output are kept
for the test (test_local_workflow) to check, line by line.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# What is run, and what each must print (a regular expression one output line matches).
# The order is the README's, but for the rollback: it comes after the reads.
EXPECTED = (
    ("make sql Q='SELECT year, month, day, count(*) AS minutes, count_if(trafficjamindicator = 1) "
     "AS jam_minutes FROM traffic.traffic_minutes GROUP BY year, month, day ORDER BY year, month, day'",
     0, r"^\|2020 *\|4 *\|7 *\|\d+ *\|\d+ *\|$"),
    ("make sql F=queries.sql", 0, r"^\(1 row in [\d.]+ s\)$"),
    ("make sql < queries.sql", 0, r"^\(1 row in [\d.]+ s\)$"),
    ("make sql", 0, r"^\(1 row in [\d.]+ s\)$"),  # the prompt, on the same file as stdin
    (".venv/bin/python -m tools.table history  --target_table traffic.traffic_minutes",
     0, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\d+ \S+ +2020-04-06\.\.2020-04-07 corrected +\d+ +<- current$"),
    # The folder of a catalog's table: one line naming what to give instead.
    (".venv/bin/python -m tools.table history --target_path data/curated", 1,
     r"^python -m tools\.table: error: \S+/data/curated holds an Iceberg table of a catalog: give its "
     r"name as --target_table database\.table"),
    (".venv/bin/python -m tools.table expire   --target_table traffic.traffic_minutes --retention_days 7",
     0, r'^\{"older_than": .*"data_files_deleted": 0, '),
    (".venv/bin/python -m tools.table migrate --target_path data/curated", 1,
     r"^python -m tools\.table: error: \S+/data/curated holds an Iceberg table already \(metadata/\): "
     r"nothing to migrate$"),
    (".venv/bin/python -m tools.table migrate --target_table seed.traffic_minutes", 1,
     r"^python -m tools\.table: error: seed\.traffic_minutes does not exist in the catalog: give "
     r"--target_path, the folder to bring in$"),
    ("make sql Q='SELECT run_id, status, days_replaced, output.rows FROM "
     "json.`data/curated/_reports/run_date=*` ORDER BY run_id'", 0, r"^\|\S+ *\|succeeded *\|\[2020-04-06, 2020-04-07\] *\|\d+ *\|$"),
    # Filed by processed day: the 6th by the scenario's first and second runs (by then).
    ("make sql Q='SELECT run_id, status, days_replaced FROM "
     "json.`data/curated/_reports_by_day/day=2020-04-06` ORDER BY run_id'", 0, r"^\(2 rows in [\d.]+ s\)$"),
    (".venv/bin/python glue_jobs/traffic_fetch_configuration.py "
     "--configuration_url file://$PWD/tests/fixtures/network/miv-config-2017-05-18.xml.gz "
     "--configuration_folder data/configuration", 0, r"miv-config-2017-05-18"),
    ('make sql Q="SELECT location_id, label, size(lanes) AS lanes, lane_group FROM traffic.locations '
     'ORDER BY label LIMIT 5"', 0, r"^\(5 rows in [\d.]+ s\)$"),
    (".venv/bin/python glue_jobs/traffic_daily_summary.py --JOB_NAME local "
     "--source_table traffic.traffic_minutes --target_table traffic.daily_summary "
     "--start_date 2020-04-06 --end_date 2020-04-07", 0,
     r"^ +output: traffic\.daily_summary \(iceberg, snapshot \d+\)$"),
    (".venv/bin/python -m tools.report --date 2020-04-07", 0, r"data/report/traffic_2020-04-07\.html"),
    (".venv/bin/python -m tools.report --date 2020-04-07 --configuration "
     "tests/fixtures/network/miv-config-2017-05-18.xml.gz", 0, r"data/report/traffic_2020-04-07\.html"),
    ("make job", 0, r"^ +output: traffic\.traffic_minutes at \S+/data/curated \(iceberg, snapshot \d+\)$"),
    ("make sample", 0, r"^sample: data/raw exists, keeping it$"),
    (".venv/bin/python -m tools.table rollback --target_table traffic.traffic_minutes --to_run {run}",
     0, r"^table: traffic\.traffic_minutes reads as before run \S+ \(snapshot \d+\)$"),
)

# README commands not run here, and why (each is run by the test named, or needs AWS).
NOT_HERE = {
    "make run": "the workflow itself: this scenario's runs (local_runner.main)",
    "make test": "the suite itself",
    ".venv/bin/python glue_jobs/traffic_transform.py --JOB_NAME <name>": "the usage line, with placeholders",
    "AWS_ENDPOINT_URL_CLOUDWATCH=": "needs moto's server: tests/test_metrics.py runs a job with --metrics on",
    ".venv/bin/moto_server": "the S3 example: tests/test_s3.py runs the job on moto's S3",
    "export AWS_ENDPOINT_URL_S3": "the S3 example",
    ".venv/bin/python -c \"import boto3": "the S3 example",
    ".venv/bin/python glue_jobs/traffic_transform.py --JOB_NAME s3-local": "the S3 example",
    ".venv/bin/python -m tools.table history --target_path s3a://": "the S3 example: tests/test_s3.py",
    "aws s3 ls": "the S3 example, with an AWS CLI",
    "kill $MOTO_PID": "the S3 example",
    "unset AWS_ENDPOINT_URL_S3": "the S3 example",
    ".venv/bin/python -m tools.sample_data --out data/own/raw": "the full network, 3 days (minutes): test_sample_data",
    "make job DATA=data/own": "on that data: `make job` on the sample is run here",
    ".venv/bin/python -m tools.deploy": "needs an AWS account: tests/test_deploy.py, test_stacks.py with moto",
    ".venv/bin/python -m tools.table history --target_table traffic.traffic_minutes --glue_warehouse":
        "the Glue Data Catalog: tests/test_s3.py with moto's Glue",
    ".venv/bin/python -m tools.table rollback --target_table traffic.traffic_minutes --to_run 2026":
        "an example run id: run here with the id of the workflow's first run",
    "make history": "a server in the foreground: tests/test_history_server.py",
}

QUERIES = "SELECT count(*) AS minutes FROM traffic.traffic_minutes;\n"

RECORDER = """#!{python}
import json, os, sys
entry = {{"argv": sys.argv[1:], "env": {{k: v for k, v in os.environ.items() if k.startswith("TRAFFIC_GLUE_SQL_")}}}}
if sys.argv[1:3] == ["-m", "workflows.local_sql"] and not any(entry["env"].values()):
    entry["stdin"] = sys.stdin.read()
with open(os.environ["README_RECORDED"], "a") as out:
    out.write(json.dumps(entry) + "\\n")
"""


def readme_commands(text: str | None = None) -> list[str]:
    """The command lines of the README's bash blocks: continuations joined, comments off."""
    text = README.read_text() if text is None else text
    lines, joined = [], ""
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            joined += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
            if line.endswith("\\"):
                continue
            command = re.sub(r"\s+#.*$", "", joined).strip()
            joined = ""
            if command:
                lines.append(re.sub(r"\s+", " ", command))
    return lines


def _project(work: Path) -> None:
    """`work` as the project after `make run`: links to its files, a recording python."""
    for name in ("Makefile", "pyproject.toml", "glue_jobs", "tools", "tests", "workflows"):
        if not (work / name).exists():
            (work / name).symlink_to(ROOT / name)
    bin_dir = work / ".venv" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "python").write_text(RECORDER.format(python=sys.executable))
    (bin_dir / "python").chmod(0o755)
    (work / ".venv" / ".installed").touch()  # newer than pyproject.toml: make installs nothing
    (work / "queries.sql").write_text(QUERIES)


def _record(command: str, work: Path) -> list[dict]:
    """What `command`, run by bash in `work`, asks the project's python to run."""
    recorded = work / "recorded.jsonl"
    recorded.unlink(missing_ok=True)
    stdin = QUERIES if command.endswith("< queries.sql") or command == "make sql" else ""
    done = subprocess.run(["bash", "-c", command], cwd=work, input=stdin, text=True, capture_output=True,
                          env=dict(os.environ, README_RECORDED=str(recorded), PWD=str(work)), timeout=120)
    entries = [json.loads(line) for line in recorded.read_text().splitlines()] if recorded.exists() else []
    # make's set-up runs `python -m compileall`, `-m tools.jars` and `-m tools.class_archive`
    # first: not the command.
    setup = (["-m", "compileall"], ["-m", "tools.jars"], ["-m", "tools.class_archive"])
    entries = [e for e in entries if e["argv"][:2] not in setup]
    if not entries:  # a recipe of the shell's alone (make sample, once there)
        return [{"status": done.returncode, "shell": done.stdout + done.stderr}]
    return [{**entry, "shell": done.stdout + done.stderr} for entry in entries]


def _run_in_process(entry: dict) -> tuple[int, str]:
    out = io.StringIO()
    saved_env = {k: os.environ.get(k) for k in entry["env"]}
    os.environ.update(entry["env"])
    argv = [os.path.expandvars(a) for a in entry["argv"]]  # make's recipe leaves "$VAR" to the shell
    saved_stdin, sys.stdin = sys.stdin, io.StringIO(entry.get("stdin", ""))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                if argv[0] == "-m":
                    status = importlib.import_module(argv[1]).main(argv[2:])
                else:
                    status = runpy.run_path(argv[0])["main"]([argv[0], *argv[1:]])
            except SystemExit as exit_:
                status = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.stdin = saved_stdin
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return status or 0, out.getvalue()


def last_run_id(curated: Path) -> str:
    """The latest succeeded run of the curated table, from its reports."""
    reports = [json.loads(line) for path in sorted(curated.glob("_reports/run_date=*/*.json"))
               for line in path.read_text().splitlines() if line.strip()]
    return max((r for r in reports if r["status"] == "succeeded"), key=lambda r: r["finished_at"])["run_id"]


def run_all(work: Path) -> list[dict]:
    """Each of EXPECTED run in `work`: its status and output, for the test to check."""
    _project(work)
    results, here = [], Path.cwd()
    os.chdir(work)
    try:
        for command, _, _ in EXPECTED:
            if "{run}" in command:  # the README's example id: the latest run's instead
                command = command.format(run=last_run_id(work / "data" / "curated"))
            entries = _record(command, work)
            if len(entries) != 1:
                results.append({"command": command, "status": None, "output": json.dumps(entries)})
                continue
            if "argv" not in entries[0]:
                results.append({"command": command, "status": entries[0]["status"], "output": entries[0]["shell"]})
                continue
            status, output = _run_in_process(entries[0])
            results.append({"command": command, "status": status, "output": entries[0]["shell"] + output})
    finally:
        os.chdir(here)
    return results
