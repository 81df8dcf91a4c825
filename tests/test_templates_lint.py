"""The CloudFormation templates as files: the loader, cfn-lint and checkov over every one."""

import json
import os
import subprocess

import pytest
from cfnlint.api import lint_all

from workflows.template import load_template
from tests.template_helpers import (
    CHECKOV,
    CHECKOV_INSTALL,
    FOUNDATION,
    ROOT,
    TEMPLATES,
    WORKFLOW,
)


# --- the loader -------------------------------------------------------------------------


def test_loader_turns_short_form_intrinsics_into_long_form(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n"
        "  A:\n"
        "    Type: X\n"
        "    Properties:\n"
        "      R: !Ref B\n"
        "      S: !Sub arn:${AWS::Partition}:s3:::${B}\n"
        "      G: !GetAtt B.Arn\n"
        "      J: !Join ['', [!Ref B, x]]\n"
        "      C: !If [Cond, !GetAtt [B, Arn], !Ref AWS::NoValue]\n"
    )
    properties = load_template(path)["Resources"]["A"]["Properties"]
    assert properties == {
        "R": {"Ref": "B"},
        "S": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${B}"},
        "G": {"Fn::GetAtt": ["B", "Arn"]},
        "J": {"Fn::Join": ["", [{"Ref": "B"}, "x"]]},
        "C": {"Fn::If": ["Cond", {"Fn::GetAtt": ["B", "Arn"]}, {"Ref": "AWS::NoValue"}]},
    }


# --- cfn-lint and checkov ---------------------------------------------------------------


def test_templates_exist():
    assert FOUNDATION in TEMPLATES and WORKFLOW in TEMPLATES, TEMPLATES


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_cfn_lint_finds_no_error_or_warning(path):
    # lint_all: every region, every rule; informational (I*) findings are advice only.
    matches = [m for m in lint_all(path.read_text(encoding="utf-8")) if not m.rule.id.startswith("I")]
    assert not matches, "cfn-lint:\n" + "\n".join(
        f"  {path.name}:{m.linenumber} {m.rule.id} {m.message}" for m in matches
    )


def _require_checkov():
    if CHECKOV.exists():
        return
    reason = f"checkov is not installed at {CHECKOV.relative_to(ROOT)}; install it with: {CHECKOV_INSTALL}"
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def checkov_results() -> dict:
    """checkov's results over every template, in one run (a run costs ~5 CPU-s, most of
    it checkov's start): each file given with -f, so each result names its file."""
    _require_checkov()
    completed = subprocess.run(
        [
            str(CHECKOV),
            *(arg for path in TEMPLATES for arg in ("-f", str(path.relative_to(ROOT)))),
            "--framework",
            "cloudformation",
            "-o",
            "json",
            # No network here or in CI: do not fetch guidelines from the vendor's platform.
            "--skip-download",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_COLOR": "true"},
    )
    # Exit code 1 means "failed checks", which the JSON below lists; anything else is a crash.
    assert completed.returncode in (0, 1), completed.stderr[-4000:]
    reports = json.loads(completed.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    reports = [r for r in reports if r.get("check_type") == "cloudformation"]
    assert len(reports) == 1, f"checkov gave no CloudFormation report: {completed.stdout[:2000]}"
    return reports[0]["results"]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_checkov_finds_no_failed_check(checkov_results, path):
    name = f"/{path.relative_to(ROOT)}"  # as checkov names a file given relative to its folder

    def of_this_file(kind: str) -> list[dict]:
        return [check for check in checkov_results.get(kind, []) if check["file_path"] == name]

    parsing_errors = [error for error in checkov_results.get("parsing_errors", []) if error.endswith(name)]
    assert not parsing_errors, f"checkov could not parse: {parsing_errors}"
    assert of_this_file("passed_checks"), f"checkov ran no check on {name}: {sorted(checkov_results)}"
    failed = of_this_file("failed_checks")
    assert not failed, "checkov:\n" + "\n".join(
        f"  {c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}" for c in failed
    )


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_checkov_suppression_is_explained(path):
    for name, resource in load_template(path)["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip.get("id", "").startswith("CKV"), f"{name}: {skip}"
            assert len(skip.get("comment", "").split()) >= 5, f"{name}: {skip['id']} needs a written reason"
