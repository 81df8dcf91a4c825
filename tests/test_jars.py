"""tools.jars: the pinned JVM jars are fetched once, with one clear line when they cannot be."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tools import jars
from traffic_glue.runtime.session import JVM_PACKAGES, MissingJarsError, jar_name, local_jars


def _fake_mvn(tmp_path: Path, script: str) -> str:
    mvn = tmp_path / "mvn"
    mvn.write_text("#!/bin/sh\n" + script)
    mvn.chmod(mvn.stat().st_mode | stat.S_IEXEC)
    return str(mvn)


def test_the_pins_are_glue_5_1s_versions():
    assert JVM_PACKAGES == (
        "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.10.0",
        "org.apache.iceberg:iceberg-aws-bundle:1.10.0",
        "org.apache.hadoop:hadoop-aws:3.3.4",
        "com.amazonaws:aws-java-sdk-bundle:1.12.262",
        # Local only, the catalog's metastore server: the Derby pyspark 3.5.6 bundles.
        "org.apache.derby:derbynet:10.14.2.0",
        "org.apache.derby:derbyclient:10.14.2.0",
    )


def test_present_jars_are_not_fetched_again(tmp_path):
    for coordinate in JVM_PACKAGES:
        (tmp_path / jar_name(coordinate)).write_bytes(b"jar")
    calls = tmp_path / "calls"
    assert jars.fetch(tmp_path, mvn=_fake_mvn(tmp_path, f"echo called >> {calls}\n")) == 0
    assert not calls.exists()
    assert local_jars(tmp_path) == [tmp_path / jar_name(c) for c in JVM_PACKAGES]


def test_missing_jars_are_fetched_with_maven_into_the_folder(tmp_path):
    folder = tmp_path / "jars"
    # A stand-in for `mvn dependency:copy -Dartifact=G:A:V -DoutputDirectory=D`.
    script = ('for a in "$@"; do case $a in -Dartifact=*) art=${a#-Dartifact=};; '
              '-DoutputDirectory=*) out=${a#-DoutputDirectory=};; esac; done\n'
              'name=$(echo "$art" | cut -d: -f2); version=$(echo "$art" | cut -d: -f3)\n'
              'echo jar > "$out/$name-$version.jar"\n')
    assert jars.fetch(folder, mvn=_fake_mvn(tmp_path, script)) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(jar_name(c) for c in JVM_PACKAGES)


def test_without_maven_or_network_one_line_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert jars.fetch(tmp_path / "jars") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jars: error: Maven (mvn) is not on PATH")

    failing = _fake_mvn(tmp_path, 'echo "[ERROR] Could not transfer artifact: Network is unreachable"; exit 1\n')
    assert jars.fetch(tmp_path / "jars", mvn=failing) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not fetch org.apache.iceberg:iceberg-spark-runtime" in err[0]
    assert "Network is unreachable" in err[0]


def test_a_session_without_the_jars_names_the_command_that_fetches_them(tmp_path):
    with pytest.raises(MissingJarsError, match="run `make setup`") as missing:
        local_jars(tmp_path)
    assert jar_name(JVM_PACKAGES[0]) in str(missing.value)
