"""tools.class_archive: the archive dumped from the class list takes its name only once a
JVM has mapped it, and a session of the suite maps the one `make setup` dumped.

The dump and the check are processes of their own (`_dump`, `_python`); here they are
stood in for by functions that do what each outcome leaves behind, except in the last
test, which asks the suite's own JVM.
"""

from __future__ import annotations

import gzip
import os
import subprocess

import pytest

from tools import class_archive
from traffic_glue.runtime import session
from traffic_glue.runtime.session import CLASS_ARCHIVE_ENV, EVENT_LOG_ENV

LISTED = "java/lang/Object\norg/apache/spark/SparkContext\n@lambda-proxy a b c\n"


@pytest.fixture
def class_list(tmp_path):
    path = tmp_path / "class_list.txt.gz"
    path.write_bytes(gzip.compress(LISTED.encode()))
    return path


def _processes(monkeypatch, dump_writes: bytes | str | None, dump_status: int = 0, check_status: int = 0):
    calls = []

    def dump(names, archive):
        calls.append(("dump", names.read_text(), archive))
        if dump_writes == "timeout":
            archive.write_bytes(b"half an archive")
            raise subprocess.TimeoutExpired(["java"], 900)
        if dump_writes is not None:
            archive.write_bytes(dump_writes)
        return subprocess.CompletedProcess([], dump_status, "[warning][cds] Skipping a/B: Signed JAR\n",
                                           "Error: the dump failed\n" if dump_status else "")

    def python(arguments, environ, cwd):
        calls.append(("check", arguments, environ))
        return subprocess.CompletedProcess(arguments, check_status, "", "")

    monkeypatch.setattr(class_archive, "_dump", dump)
    monkeypatch.setattr(class_archive, "_python", python)
    return calls


def test_an_archive_dumped_from_the_list_that_a_jvm_maps_takes_its_name(tmp_path, class_list, monkeypatch,
                                                                          capsys):
    calls = _processes(monkeypatch, b"classes")
    jars = tmp_path / "jars"
    jars.mkdir()
    archive = jars / "classes.jsa"
    assert class_archive.build(archive, class_list) == 0
    assert archive.read_bytes() == b"classes"
    assert sorted(p.name for p in jars.iterdir()) == ["classes.jsa", "classes.jsa.stamp"]
    (_, names, dumped_into), (_, check, check_env) = calls
    assert names == LISTED  # the list, unzipped for the JVM
    assert dumped_into == jars / ".classes.jsa.dumping"
    # The check maps the dump under its temporary name, and must (-Xshare:on).
    assert check[0] == "-c"
    assert check_env[CLASS_ARCHIVE_ENV] == str(jars / ".classes.jsa.dumping")
    assert check_env["SPARK_SUBMIT_OPTS"] == "-Xshare:on"
    assert check_env[EVENT_LOG_ENV] == "off"  # no event log of the check in `make history`
    assert capsys.readouterr().out.splitlines()[-1] == f"class archive: {archive} (0 MB)"


@pytest.mark.parametrize("dump, status, check, message", [
    (None, 0, 0, "not made (sessions start without it): [warning][cds] Skipping a/B: Signed JAR"),
    (b"half an archive", 1, 0, "not made (sessions start without it): Error: the dump failed"),
    (b"classes", 0, 1, "the JVM cannot map the dumped archive; sessions start without it"),
    ("timeout", 0, 0, "not made (sessions start without it): the dump took more than 15 minutes"),
])
def test_an_archive_not_dumped_whole_or_not_mapped_leaves_nothing(
        tmp_path, class_list, monkeypatch, capsys, dump, status, check, message):
    _processes(monkeypatch, dump, status, check)
    jars = tmp_path / "jars"
    assert class_archive.build(jars / "classes.jsa", class_list) == 0  # the set-up goes on without it
    assert list(jars.iterdir()) == []
    assert capsys.readouterr().err.strip() == f"class archive: {message}"


def test_it_is_quick_when_the_archive_was_dumped_from_the_jdk_list_and_jars_there(tmp_path, class_list,
                                                                                 monkeypatch):
    archive = tmp_path / "classes.jsa"
    archive.write_bytes(b"classes")
    jar = tmp_path / "a-1.jar"
    jar.write_bytes(b"abc")
    monkeypatch.setattr(class_archive, "local_classpath", lambda: [jar])  # the session's own jars
    monkeypatch.setattr(class_archive, "CLASS_ARCHIVE", archive)
    monkeypatch.setattr(class_archive, "CLASS_LIST", class_list)
    built = []
    monkeypatch.setattr(class_archive, "build", lambda *a: built.append(a) or 0)

    def dumped_now():
        (tmp_path / "classes.jsa.stamp").write_text(class_archive._stamp(class_list))

    dumped_now()
    assert class_archive.main([]) == 0
    assert built == []
    # The jar written again, the same bytes (pyspark installed again, say): the JVM checks
    # its time too and would map no archive at all, so it is dumped again.
    os.utime(jar, ns=(jar.stat().st_atime_ns, jar.stat().st_mtime_ns + 1_000_000_000))
    assert class_archive.main([]) == 0
    assert len(built) == 1
    # Another jar on the classpath (a new pin): the same.
    dumped_now()
    other = tmp_path / "b-2.jar"
    other.write_bytes(b"x")
    monkeypatch.setattr(class_archive, "local_classpath", lambda: [jar, other])
    assert class_archive.main([]) == 0
    assert len(built) == 2
    # So is it for another list (recorded again), on the jars it was made from.
    dumped_now()
    class_list.write_bytes(gzip.compress(b"java/lang/Object\n"))
    assert class_archive.main([]) == 0
    assert len(built) == 3


def test_the_stamp_names_the_jdk_the_list_the_classpath_and_its_jars(tmp_path, class_list, monkeypatch):
    import hashlib

    import pyspark

    jar = tmp_path / "a-1.jar"
    jar.write_bytes(b"abc")
    monkeypatch.setattr(class_archive, "local_classpath", lambda: [jar])
    lines = class_archive._stamp(class_list).splitlines()
    assert lines[0].startswith(("openjdk version", "java version"))
    assert f"class list {hashlib.sha256(class_list.read_bytes()).hexdigest()}" in lines
    assert f"classpath {class_archive._classpath()}" in lines  # a clone moved is dumped again
    assert class_archive._classpath().startswith(f"{jar}{os.pathsep}")
    spark_jars = sorted(session.spark_jars_dir().glob("*.jar"))
    assert class_archive._classpath_jars() == [jar, *spark_jars]
    assert f"pyspark {pyspark.__version__}" in lines


def test_the_dump_is_of_the_classpath_a_session_starts_with(monkeypatch):
    monkeypatch.delenv("SPARK_CONF_DIR", raising=False)
    entries = class_archive._classpath().split(os.pathsep)
    # The session's own jars first, as spark.driver.extraClassPath puts them.
    assert entries[:-2] == [str(jar) for jar in session.local_classpath()]
    # Then Spark's configuration folder and its jars, the `*` left for the JVM to expand.
    assert entries[-2:] == [str(session.spark_jars_dir().parent / "conf"), str(session.spark_jars_dir() / "*")]
    monkeypatch.setenv("SPARK_CONF_DIR", "/etc/spark")
    assert class_archive._classpath().split(os.pathsep)[-2] == "/etc/spark"


def test_the_list_is_recorded_without_its_header_and_zipped_the_same_each_time(tmp_path, monkeypatch, capsys):
    def python(arguments, environ, cwd):
        assert arguments[:3] == ["-m", "tools.class_archive", "--record"]
        assert environ[CLASS_ARCHIVE_ENV] == "off"  # classes read from their jars, all listed
        listed = environ["SPARK_SUBMIT_OPTS"].split()[0].removeprefix("-XX:DumpLoadedClassList=")
        with open(listed, "w") as out:
            out.write("# NOTE: Do not modify this file.\n#\n" + LISTED)
        return subprocess.CompletedProcess(arguments, 0, "", "")

    monkeypatch.setattr(class_archive, "_python", python)
    first, second = tmp_path / "one.txt.gz", tmp_path / "two.txt.gz"
    assert class_archive.record_list(first) == 0
    assert class_archive.record_list(second) == 0
    assert gzip.decompress(first.read_bytes()).decode() == LISTED
    assert first.read_bytes() == second.read_bytes()
    assert capsys.readouterr().out.splitlines()[-1] == f"class list: 3 lines in {second}"


def test_the_shipped_list_names_the_classes_a_session_starts_with():
    listed = gzip.decompress(class_archive.CLASS_LIST.read_bytes()).decode().splitlines()
    assert not [line for line in listed if not line or line.startswith("#")]
    for name in ("org/apache/spark/SparkContext", "org/apache/spark/sql/SparkSession",
                 "org/apache/iceberg/spark/SparkCatalog", "org/apache/hadoop/fs/FileSystem"):
        assert name in listed


def test_the_suites_jvm_maps_the_archive_the_set_up_dumped(spark):
    """The real thing: `make setup` (CI's `make test` runs it first) dumped the archive, and
    the session's JVM maps it; one that did not would share no class at all."""
    if not class_archive.current():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: make setup dumps {session.CLASS_ARCHIVE} for this JDK and classpath, "
                        "and it is not there")
        pytest.skip(f"no {session.CLASS_ARCHIVE} for this JDK and classpath (another machine's, or the "
                    "Glue image's Spark): `make setup` dumps it")
    jvm = spark.sparkContext._jvm
    bean = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
        jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean"))
    assert bean.getVMOption("SharedArchiveFile").getValue() == str(session.CLASS_ARCHIVE)
    assert bean.getVMOption("UseSharedSpaces").getValue() == "true"
