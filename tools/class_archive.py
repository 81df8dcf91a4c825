"""The classes a local run loads, dumped into a JVM class archive, so sessions start faster.

    python -m tools.class_archive          # .jars/classes.jsa (`make setup` runs it)
    python -m tools.class_archive --list   # tools/class_list.txt.gz again (maintainers)

A cold Spark JVM spends most of its first seconds reading and verifying some 20,000
classes from jars. Java 17's class-data sharing dumps the classes a list names into an
archive (`java -Xshare:dump`) that later JVMs map instead
(`traffic_glue.runtime.session.class_archive_options`): a local session then starts in
about half the time, and each job the tests start in a process of its own saves seconds.

The list, `tools/class_list.txt.gz`, is what a recording run loaded
(`-XX:DumpLoadedClassList`): the transform and summary jobs on tables of the local
catalog (Hive's metastore in Derby, Iceberg's session catalog), then the transform job on
a table given by its folder (Iceberg's file-based catalog), on a tiny sample. It names
classes of the JDK and of the pinned jars only, so it holds wherever they are: a class
the JDK or a jar there lacks is left out of the archive, and a class the list lacks is
read from its jar as before (slower, nothing else). `--list` records it again (about a
minute) when the jars or the jobs change what a run loads.

Dumping the archive takes about 20 seconds on two cores, once per clone: `make setup`
does it. It is written under another name and checked by a session that must map it
(`-Xshare:on`) before it takes the archive's name: a dump that fails or that the JVM
cannot map leaves no archive behind, and sessions start without one. Quick when the
archive is there already and was made from the JDK, the list, the classpath and the jars
there now (`classes.jsa.stamp`); `--force` dumps it again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from traffic_glue.runtime import metastore
from traffic_glue.runtime.session import (
    CLASS_ARCHIVE, CLASS_ARCHIVE_ENV, EVENT_LOG_ENV, local_classpath, spark_jars_dir,
)

ROOT = Path(__file__).resolve().parents[1]
CLASS_LIST = ROOT / "tools" / "class_list.txt.gz"
CONFIGURATION = ROOT / "tests" / "fixtures" / "network" / "miv-config-2017-05-18.xml.gz"
DAY = dt.date(2020, 4, 6)


def record(work: Path) -> None:
    """The recording run, in this process (the JVM that lists the classes it loads, the
    list complete when it exits): the transform and summary jobs on a table of the local
    catalog, then the transform job on a table given by its folder."""
    import runpy

    from pyspark import SparkContext

    from tools.sample_data import SampleSpec, generate

    raw = work / "raw"
    generate(str(raw), SampleSpec(start_date=DAY, days=1, lanes=12))
    days = ["--start_date", str(DAY), "--end_date", str(DAY)]
    catalog = ["--catalog_dir", str(work / "catalog")]
    transform = ["--source_path", str(raw), "--configuration_path", str(CONFIGURATION), *days]
    runs = [
        ("traffic_transform.py", [*transform, *catalog, "--target_table", "default.traffic_minutes",
                                  "--target_path", str(work / "curated")]),
        ("traffic_daily_summary.py", [*catalog, *days, "--source_table", "default.traffic_minutes",
                                      "--target_table", "default.daily_summary",
                                      "--target_path", str(work / "summary")]),
        ("traffic_transform.py", [*transform, "--target_path", str(work / "by-path")]),
    ]
    try:
        for script, arguments in runs:
            path = ROOT / "glue_jobs" / script
            code = runpy.run_path(str(path))["main"]([str(path), "--JOB_NAME", "class-archive", *arguments])
            if code:
                raise SystemExit(f"class archive: {script} failed in the recording run (exit status {code})")
    finally:
        metastore.stop(work / "catalog")  # the catalog's server goes with its folder
    # The JVM's list is complete once it exits: end it and wait for it.
    gateway = SparkContext._gateway
    SparkContext._active_spark_context.stop()
    gateway.proc.stdin.close()
    gateway.proc.wait(timeout=300)


def _python(arguments: list[str], environ: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(ROOT / "glue_jobs"), str(ROOT)])
    return subprocess.run([sys.executable, *arguments], env={**environ, "PYTHONPATH": path},
                          cwd=cwd, capture_output=True, text=True, timeout=900)


_CHECK = ("from traffic_glue.runtime.session import local_spark_session; "
          "local_spark_session().range(3).count()")


def _java() -> str:
    """The JVM Spark's launcher runs: `$JAVA_HOME/bin/java`, else `java` on the PATH."""
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


def _classpath() -> str:
    """A local session's classpath as Spark's launcher writes it: the session's jars first
    (`session.local_classpath`), Spark's configuration folder, then Spark's jars, whose
    `*` the JVM expands as it does for the session. A JVM maps an archive only on the
    classpath it was dumped with (or one that begins with it); the check in `build` maps it."""
    conf = os.environ.get("SPARK_CONF_DIR") or str(spark_jars_dir().parent / "conf")
    return os.pathsep.join([*(str(jar) for jar in local_classpath()), conf, str(spark_jars_dir() / "*")])


def _dump(names: Path, archive: Path) -> subprocess.CompletedProcess:
    """`java -Xshare:dump`: the classes `names` lists, from the session's classpath, into
    `archive`. Its warnings (classes of signed jars, and any the list names that are not
    there) are kept for the line that says why, if it fails."""
    return subprocess.run(
        [_java(), "-Xshare:dump", f"-XX:SharedClassListFile={names}", f"-XX:SharedArchiveFile={archive}",
         "-cp", _classpath()],
        capture_output=True, text=True, timeout=900,
    )


def _stamp_file(archive: Path) -> Path:
    return archive.with_name(archive.name + ".stamp")


def _classpath_jars() -> list[Path]:
    """The jars of `_classpath`, in its order (Spark's as the JVM lists its folder's)."""
    return [*local_classpath(), *sorted(spark_jars_dir().glob("*.jar"))]


def _stamp(class_list: Path = CLASS_LIST) -> str:
    """What the archive was dumped from: the JDK, the class list, the classpath (its
    folders: a clone moved, or Spark's own elsewhere) and each of its jars as the JVM
    checks them (size and time: pyspark installed again, a jar pinned anew). A JVM maps an
    archive only of its own JDK and classpath, and starts without any other, silently: so
    another of any of them means dumping it again."""
    import pyspark

    jdk = subprocess.run([_java(), "-version"], capture_output=True, text=True).stderr.strip()
    listed = hashlib.sha256(class_list.read_bytes()).hexdigest()
    checked = ((jar, jar.stat()) for jar in _classpath_jars())
    jars = hashlib.sha256("".join(f"{jar} {st.st_size} {st.st_mtime_ns}\n" for jar, st in checked).encode()).hexdigest()
    return "\n".join([jdk, f"class list {listed}", f"classpath {_classpath()}", f"jars {jars}",
                      f"pyspark {pyspark.__version__}"]) + "\n"


def current(archive: Path = CLASS_ARCHIVE, class_list: Path = CLASS_LIST) -> bool:
    """Whether `archive` is there, dumped from what is here now (`_stamp`)."""
    stamp = _stamp_file(archive)
    return archive.is_file() and stamp.is_file() and stamp.read_text() == _stamp(class_list)


def build(archive: Path = CLASS_ARCHIVE, class_list: Path = CLASS_LIST) -> int:
    archive.parent.mkdir(parents=True, exist_ok=True)
    fresh = archive.with_name(f".{archive.name}.dumping")
    fresh.unlink(missing_ok=True)
    print(f"class archive: dumping the classes a local run loads into {archive} (once, about 20 s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="class-archive-") as work:
        names = Path(work) / "classes.txt"
        names.write_bytes(gzip.decompress(class_list.read_bytes()))
        try:
            dumped = _dump(names, fresh)
        except subprocess.TimeoutExpired:
            dumped = subprocess.CompletedProcess([], 1, "", "the dump took more than 15 minutes")
        if dumped.returncode != 0 or not fresh.is_file():
            fresh.unlink(missing_ok=True)
            said = (dumped.stdout + dumped.stderr).strip().splitlines() or ["no archive was written"]
            print(f"class archive: not made (sessions start without it): {said[-1]}", file=sys.stderr)
            return 0
        environ = {**os.environ, CLASS_ARCHIVE_ENV: str(fresh), EVENT_LOG_ENV: "off",
                   "SPARK_SUBMIT_OPTS": "-Xshare:on"}
        try:
            checked = _python(["-c", _CHECK], environ, Path(work))
        except subprocess.TimeoutExpired:
            checked = subprocess.CompletedProcess([], 1, "", "")
    if checked.returncode != 0:
        fresh.unlink(missing_ok=True)
        print("class archive: the JVM cannot map the dumped archive; sessions start without it",
              file=sys.stderr)
        return 0
    fresh.replace(archive)
    _stamp_file(archive).write_text(_stamp(class_list))
    print(f"class archive: {archive} ({archive.stat().st_size / 2**20:,.0f} MB)")
    return 0


def record_list(class_list: Path = CLASS_LIST) -> int:
    """The recording run in a JVM that lists the classes it loads, the list into
    `class_list` (gzip, without its header: only its lines change when what a run loads
    changes)."""
    print(f"class list: recording the classes a local run loads into {class_list} (about a minute)", flush=True)
    with tempfile.TemporaryDirectory(prefix="class-list-") as work:
        loaded = Path(work) / "loaded.txt"
        environ = {**os.environ, CLASS_ARCHIVE_ENV: "off",
                   # Its event logs (their classes listed too) stay in its own folder.
                   EVENT_LOG_ENV: str(Path(work) / "spark-events"),
                   # C1 alone and the serial collector: the recording run's own speed does
                   # not matter. The list names classes: JVMs of any compiler and
                   # collector map the archive dumped from it.
                   "SPARK_SUBMIT_OPTS": f"-XX:DumpLoadedClassList={loaded} -XX:TieredStopAtLevel=1 "
                                        "-XX:+UseSerialGC"}
        done = _python(["-m", "tools.class_archive", "--record", work], environ, Path(work))
        if done.returncode != 0 or not loaded.is_file():
            said = done.stderr.strip().splitlines() or ["no class list was written"]
            print(f"class list: not recorded: {said[-1]}", file=sys.stderr)
            return 1
        lines = [line for line in loaded.read_text().splitlines() if line and not line.startswith("#")]
    class_list.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    print(f"class list: {len(lines):,} lines in {class_list}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.class_archive",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="dump it again even if it is there")
    parser.add_argument("--list", action="store_true",
                        help="record tools/class_list.txt.gz again (about a minute)")
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)  # the recording process
    args = parser.parse_args(argv)
    if args.record:
        record(args.record)
        return 0
    if args.list:
        return record_list(CLASS_LIST)
    if current(CLASS_ARCHIVE, CLASS_LIST) and not args.force:
        return 0
    return build(CLASS_ARCHIVE, CLASS_LIST)


if __name__ == "__main__":
    sys.exit(main())
