"""The Makefile's test command on a fresh clone: what `make test` would run, in order
(`make -n`, which runs nothing but the sub-makes' own dry runs)."""

from __future__ import annotations

import shutil
import subprocess

from tests.job_helpers import ROOT


def test_make_test_on_a_fresh_clone_makes_the_venv_fetches_the_jars_and_dumps_the_archive_before_the_suite(tmp_path):
    # Only what make reads: no .venv, no .jars, no stamps, as in a fresh clone.
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    planned = subprocess.run(["make", "-n", "test"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.splitlines()

    def first(text: str) -> int:
        found = [i for i, line in enumerate(lines) if text in line]
        assert found, f"`make test` would not run {text!r}:\n{planned.stdout}"
        return found[0]

    suite = first("-m pytest")
    # uv installs the packages, from its cache alone if it can, else from the index; pip
    # where uv cannot be had.
    offline = first('uv pip install --offline --quiet --python .venv/bin/python -e ".[dev]"')
    assert first("-m venv .venv") < offline < suite
    assert lines[offline].index("--offline") < lines[offline].index(
        '|| .venv/bin/uv pip install --quiet --python .venv/bin/python -e ".[dev]"')
    assert first("-m venv .venv") < first('pip installs instead"; .venv/bin/python -m pip install --quiet -e ".[dev]"') < suite
    # pyspark's wheel, built from its source on install, stores its jars as they are (uv only).
    assert 'pyspark:--build-option=--compression=stored' in lines[first('uv pip install --quiet --python .venv/bin/python')]
    assert first("-m tools.jars") < first("-m tools.class_archive") < suite  # the archive maps the jars
    # The suite keeps the bytecode it compiles, whatever the environment says, and tells
    # the browser test which file says the browser's install is done.
    assert lines[suite].startswith("PYTHONDONTWRITEBYTECODE= TRAFFIC_GLUE_BROWSER_ENV_DONE="
                                   f"{tmp_path}/.local/browser-env.done .venv/bin/python -m pytest"), lines[suite]
    # The browser installs beside the suite (in the background, `&`), which make then waits for.
    install = first("apt-get install -y -qq chromium chromium-driver")
    assert install == suite - 1 and lines[install].endswith(
        "> .local/browser-env.log 2>&1; echo $? > " f"{tmp_path}/.local/browser-env.done; }} & \\"), lines[install]
    assert lines[suite + 1] == "suite=$?; wait; exit $suite"
    assert first("checkov==") < suite
