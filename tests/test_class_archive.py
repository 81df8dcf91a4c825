"""tools.class_archive: an archive takes its name only once a JVM has mapped it.

The recording and the check are processes of their own (`_python`); here they are
stood in for by functions that do what each outcome leaves behind. The real recording
is `make class-archive`'s (about a minute: the suite does not run it); a session maps
an archive that is there (`test_session`).
"""

from __future__ import annotations

import subprocess

import pytest

from tools import class_archive
from traffic_glue.runtime import session
from traffic_glue.runtime.session import CLASS_ARCHIVE_ENV


def _processes(recording_writes: bytes | None, recording_status: int = 0, check_status: int = 0):
    calls = []

    def python(arguments, environ, cwd):
        calls.append((arguments, environ))
        if "--record" in arguments:
            target = environ["SPARK_SUBMIT_OPTS"].split()[0].removeprefix("-XX:ArchiveClassesAtExit=")
            if recording_writes is not None:
                with open(target, "wb") as archive:
                    archive.write(recording_writes)
            return subprocess.CompletedProcess(arguments, recording_status, "", "a job failed\n")
        return subprocess.CompletedProcess(arguments, check_status, "", "")
    return python, calls


def test_a_recorded_archive_that_a_jvm_maps_takes_its_name(tmp_path, monkeypatch, capsys):
    python, calls = _processes(b"classes")
    monkeypatch.setattr(class_archive, "_python", python)
    archive = tmp_path / "classes.jsa"
    assert class_archive.build(archive) == 0
    assert archive.read_bytes() == b"classes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.jsa", "classes.jsa.stamp"]
    (record, record_env), (check, check_env) = calls
    assert record[:3] == ["-m", "tools.class_archive", "--record"]
    assert record_env[CLASS_ARCHIVE_ENV] == "off"  # recording, not mapping an old one
    # The check maps the recording under its temporary name, and must (-Xshare:on).
    assert check_env[CLASS_ARCHIVE_ENV] == str(tmp_path / ".classes.jsa.recording")
    assert check_env["SPARK_SUBMIT_OPTS"] == "-Xshare:on"
    assert capsys.readouterr().out.splitlines()[-1] == f"class archive: {archive} (0 MB)"


@pytest.mark.parametrize("recording, status, check, message", [
    (None, 0, 0, "not made (sessions start without it): a job failed"),
    (b"half an archive", 1, 0, "not made (sessions start without it): a job failed"),
    (b"classes", 0, 1, "the JVM cannot map the recorded archive; sessions start without it"),
])
def test_an_archive_not_recorded_whole_or_not_mapped_leaves_nothing(
        tmp_path, monkeypatch, capsys, recording, status, check, message):
    python, _ = _processes(recording, status, check)
    monkeypatch.setattr(class_archive, "_python", python)
    assert class_archive.build(tmp_path / "classes.jsa") == 0  # the set-up goes on without it
    assert list(tmp_path.iterdir()) == []
    assert capsys.readouterr().err.strip() == f"class archive: {message}"


def test_it_is_quick_when_the_archive_is_there_made_from_the_jars_there(tmp_path, monkeypatch):
    import pyspark

    archive = tmp_path / "classes.jsa"
    archive.write_bytes(b"classes")
    (tmp_path / "a-1.jar").write_bytes(b"abc")
    # Spark's log4j API goes first on the classpath (session.local_classpath), so it is in the stamp.
    (log4j_api,) = session.spark_log4j_api()
    (tmp_path / "classes.jsa.stamp").write_text(
        f"pyspark {pyspark.__version__}\n{log4j_api.name} {log4j_api.stat().st_size}\na-1.jar 3\n")
    monkeypatch.setattr(class_archive, "CLASS_ARCHIVE", archive)
    built = []
    monkeypatch.setattr(class_archive, "build", lambda *a: built.append(a) or 0)
    assert class_archive.main([]) == 0
    assert built == []
    # Another jar (a new pin): the JVM would ignore the archive, so it is recorded again.
    (tmp_path / "b-2.jar").write_bytes(b"x")
    assert class_archive.main([]) == 0
    assert len(built) == 1
