"""Record the classes a local run loads into a JVM class archive, so sessions start faster.

    python -m tools.class_archive          # .jars/classes.jsa (what `make class-archive` runs)

A cold Spark JVM spends most of its first seconds reading and verifying some 20,000
classes from jars. Java 17's dynamic class-data sharing (`-XX:ArchiveClassesAtExit`)
writes the classes one run loaded into an archive that later JVMs map instead
(`traffic_glue.runtime.session.class_archive_options`): a local session then starts in
about half the time, and each job the tests start in a process of its own saves seconds.

The recording run is what local runs do, on a tiny sample: the transform and summary
jobs on tables of the local catalog (Hive's metastore in Derby, Iceberg's session catalog),
then the transform job on a table given by its folder (Iceberg's file-based catalog). It
takes about 50 seconds on two cores, 15 of them the JVM writing the archive as it exits.
The archive is written under another name and checked by a session that must map it
(`-Xshare:on`) before it takes the archive's name: an interrupted recording leaves no
archive behind. Quick when the archive is there already and was made from the jars
there now (`classes.jsa.stamp`); other jars are recorded again, since the JVM ignores an
archive made on another classpath; `--force` records it again (after a JDK upgrade).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from traffic_glue.runtime import metastore
from traffic_glue.runtime.session import CLASS_ARCHIVE, CLASS_ARCHIVE_ENV, EVENT_LOG_ENV, spark_log4j_api

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION = ROOT / "tests" / "fixtures" / "network" / "miv-config-2017-05-18.xml.gz"
DAY = dt.date(2020, 4, 6)


def record(work: Path) -> None:
    """The recording run, in this process (the JVM that writes the archive at its exit):
    the transform and summary jobs on a table of the local catalog, then the transform
    job on a table given by its folder."""
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
    # The JVM writes the archive as it exits: end it and wait for it.
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


def _stamp_file(archive: Path) -> Path:
    return archive.with_name(archive.name + ".stamp")


def _stamp(archive: Path) -> str:
    """What the archive was recorded from: pyspark, the jars the session puts first on
    the classpath (`session.local_classpath`) and the jars beside it. A JVM maps an
    archive only on the classpath it was made with, so other jars mean recording again."""
    import pyspark

    first = [f"{jar.name} {jar.stat().st_size}" for jar in spark_log4j_api()]
    jars = sorted(f"{jar.name} {jar.stat().st_size}" for jar in archive.parent.glob("*.jar"))
    return "\n".join([f"pyspark {pyspark.__version__}", *first, *jars]) + "\n"


def build(archive: Path = CLASS_ARCHIVE) -> int:
    archive.parent.mkdir(parents=True, exist_ok=True)
    fresh = archive.with_name(f".{archive.name}.recording")
    fresh.unlink(missing_ok=True)
    print(f"class archive: recording the classes a local run loads into {archive} (once)")
    with tempfile.TemporaryDirectory(prefix="class-archive-") as work:
        environ = {**os.environ, CLASS_ARCHIVE_ENV: "off",
                   # Its event logs (their classes recorded too) stay in its own folder.
                   EVENT_LOG_ENV: str(Path(work) / "spark-events"),
                   # C1 alone and the serial collector: the recording run's own speed
                   # does not matter, and without C2's and G1's threads it takes 60
                   # CPU-s, not 89 (49 s on two cores, not 58). The archive holds
                   # classes, not compiled code: JVMs of any compiler and collector map it
                   # (the check below maps it with the defaults).
                   "SPARK_SUBMIT_OPTS": f"-XX:ArchiveClassesAtExit={fresh} -Xlog:cds*=off "
                                        "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}
        done = _python(["-m", "tools.class_archive", "--record", work], environ, Path(work))
        if done.returncode != 0 or not fresh.is_file():
            fresh.unlink(missing_ok=True)
            print(f"class archive: not made (sessions start without it): "
                  f"{(done.stderr.strip().splitlines() or ['no archive was written'])[-1]}", file=sys.stderr)
            return 0
        environ = {**os.environ, CLASS_ARCHIVE_ENV: str(fresh), "SPARK_SUBMIT_OPTS": "-Xshare:on"}
        checked = _python(["-c", _CHECK], environ, Path(work))
    if checked.returncode != 0:
        fresh.unlink(missing_ok=True)
        print("class archive: the JVM cannot map the recorded archive; sessions start without it",
              file=sys.stderr)
        return 0
    fresh.replace(archive)
    _stamp_file(archive).write_text(_stamp(archive))
    print(f"class archive: {archive} ({archive.stat().st_size / 2**20:,.0f} MB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.class_archive",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="record it again even if it is there")
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)  # the recording process
    args = parser.parse_args(argv)
    if args.record:
        record(args.record)
        return 0
    stamp = _stamp_file(CLASS_ARCHIVE)
    if CLASS_ARCHIVE.is_file() and stamp.is_file() and stamp.read_text() == _stamp(CLASS_ARCHIVE) \
            and not args.force:
        return 0
    return build(CLASS_ARCHIVE)


if __name__ == "__main__":
    sys.exit(main())
