"""Security: the logs hold no row contents, and no file names an account, a key or a
bucket."""

from __future__ import annotations

import re
import subprocess

from tests.fault_landing import DAY, ROOT, assert_accounting, at, bad_line, job_command, land_json_at
from tests.factories import raw_reading
from tests.job_helpers import job_env, last_report
from traffic_glue.compute import schema as S

MARKER = "SECRET-MARKER-7f3a9c"
# Values of rejected readings that must never reach a log.
REJECTED_VALUES = ["lve-Q9Z-REJECTED", "tijd-Q9Z-REJECTED", "31415926", "4242424"]


def test_info_logs_never_hold_row_contents(tmp_path):
    rows = []
    for m in range(30):
        t = at(12, m)
        reading = raw_reading(73519, 8642, t, counts=(3, 0, 0, 0), speeds=(137, 0, 0, 0))
        reading[S.LANE_NAME] = MARKER
        rows.append((reading, t + 90))
    bad = [
        bad_line({"unieke_id": "31415926", "lve_nr": REJECTED_VALUES[0], S.LANE_NAME: MARKER}),
        bad_line({"tijd_waarneming": REJECTED_VALUES[1], S.LANE_NAME: MARKER}),
        bad_line({S.intensity(2): "4", S.arithmetic_speed(2): REJECTED_VALUES[3]}),
        '{"unieke_id": "31415926", "lve_nr": "' + MARKER,
    ]
    land_json_at(tmp_path / "raw", rows, extra_lines={12: bad})
    target = tmp_path / "curated"
    done = subprocess.run(
        job_command(tmp_path / "raw", target, DAY, DAY, "--source_format", "json",
                    "--log_level", "INFO"),
        env=job_env(), capture_output=True, text=True, timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert " INFO " in output  # INFO logging was on
    report = last_report(target)
    assert_accounting(report)
    assert report["readings"]["rejected_total"] == 4 and report["output"]["rows"] == 30
    for secret in [MARKER, *REJECTED_VALUES, "137.0"]:
        assert secret not in output, secret
    # The lane's id only as the summary names a location (its data-quality warning: the
    # lane is a location of its own, -73519, and has 30 of its day's minutes), never as
    # a reading's content in a log line.
    named = [line for line in output.splitlines() if "73519" in line]
    assert named and all("location -73519," in line for line in named), named


SCANNED = ("glue_jobs", "tools", "workflows", "infra")
TEXT_SUFFIXES = {".py", ".yaml", ".yml", ".json", ".sql", ".sh", ".toml", ".cfg", ".txt", ".md"}
ACCOUNT_ID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
S3_LITERAL = re.compile(r"s3://([A-Za-z0-9][A-Za-z0-9.\-]{2,62})")
# Placeholders that are no account and no bucket (a comment's example, local defaults).
PLACEHOLDER_ACCOUNTS = {"000000000000"}
PLACEHOLDER_BUCKETS = {"bucket"}


def test_no_file_hard_codes_an_account_a_key_or_a_bucket():
    problems = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*")):
            if not path.is_file() or path.suffix not in TEXT_SUFFIXES or ".egg-info" in str(path):
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                where = f"{path.relative_to(ROOT)}:{number}"
                problems += [f"{where}: account id {m}" for m in ACCOUNT_ID.findall(line)
                             if m not in PLACEHOLDER_ACCOUNTS]
                problems += [f"{where}: access key" for _ in ACCESS_KEY.findall(line)]
                problems += [f"{where}: bucket {m}" for m in S3_LITERAL.findall(line)
                             if m not in PLACEHOLDER_BUCKETS]
    assert not problems, problems
