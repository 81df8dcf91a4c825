"""tools.jars: the pinned JVM jars are fetched once, with one clear line when they cannot be."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from tools import jars
from traffic_glue.runtime.session import JVM_PACKAGES, MissingJarsError, jar_name, local_jars


# What the stand-in for Maven below does with the project it is given (`-f`).
_COPY_DEPENDENCIES = (
    "import sys, xml.etree.ElementTree as E; a = sys.argv[1:]; "
    "out = next(x.split('=', 1)[1] for x in a if x.startswith('-DoutputDirectory=')); "
    "n = {'m': 'http://maven.apache.org/POM/4.0.0'}; "
    "deps = E.parse(a[a.index('-f') + 1]).findall('m:dependencies/m:dependency', n); "
    "[open(out + '/' + d.findtext('m:artifactId', namespaces=n) + '-' "
    "+ d.findtext('m:version', namespaces=n) + '.jar', 'w').write('jar') for d in deps]"
)


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
        # Local only, local files without a `chmod` process each (session.LOCAL_FILES_CONF).
        "com.globalmentor:hadoop-bare-naked-local-fs:0.1.0",
    )


def test_present_jars_are_not_fetched_again(tmp_path):
    for coordinate in JVM_PACKAGES:
        (tmp_path / jar_name(coordinate)).write_bytes(b"jar")
    calls = tmp_path / "calls"
    assert jars.fetch(tmp_path, mvn=_fake_mvn(tmp_path, f"echo called >> {calls}\n")) == 0
    assert not calls.exists()
    assert local_jars(tmp_path) == [tmp_path / jar_name(c) for c in JVM_PACKAGES]


def test_missing_jars_are_fetched_by_one_maven_run_into_the_folder(tmp_path):
    folder = tmp_path / "jars"
    folder.mkdir()
    (folder / jar_name(JVM_PACKAGES[2])).write_bytes(b"there")  # not fetched again
    calls = tmp_path / "calls"
    # A stand-in for `mvn -f POM dependency:copy-dependencies -DoutputDirectory=D`: a jar
    # named artifact-version.jar for each dependency of the project it is given.
    script = (f'echo "$@" >> {calls}\n'
              f'exec {sys.executable} -c "{_COPY_DEPENDENCIES}" "$@"\n')
    assert jars.fetch(folder, mvn=_fake_mvn(tmp_path, script)) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(jar_name(c) for c in JVM_PACKAGES)
    assert (folder / jar_name(JVM_PACKAGES[2])).read_bytes() == b"there"
    (call,) = calls.read_text().splitlines()
    assert "dependency:copy-dependencies" in call.split() and f"-DoutputDirectory={folder}" in call.split()


def test_the_maven_project_asks_for_each_jar_without_its_dependencies():
    from xml.etree import ElementTree

    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    project = ElementTree.fromstring(jars.pom(list(JVM_PACKAGES[:2])))
    found = [(d.findtext("m:groupId", namespaces=ns), d.findtext("m:artifactId", namespaces=ns),
              d.findtext("m:version", namespaces=ns),
              [(e.findtext("m:groupId", namespaces=ns), e.findtext("m:artifactId", namespaces=ns))
               for e in d.findall("m:exclusions/m:exclusion", ns)])
             for d in project.findall("m:dependencies/m:dependency", ns)]
    assert found == [
        ("org.apache.iceberg", "iceberg-spark-runtime-3.5_2.12", "1.10.0", [("*", "*")]),
        ("org.apache.iceberg", "iceberg-aws-bundle", "1.10.0", [("*", "*")]),
    ]
    assert project.findtext("m:packaging", namespaces=ns) == "pom"


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
