"""Fetch the JVM libraries a local Spark session needs, pinned to Glue 5.1's versions.

    python -m tools.jars            # into .jars/ (what `make setup` runs)

Quick when they are there already. Maven fetches them from Maven Central (the only
place they come from); without Maven or the network it says so in one line.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from traffic_glue.runtime.session import JARS_DIR, JVM_PACKAGES, jar_name


def missing(folder: Path) -> list[str]:
    return [c for c in JVM_PACKAGES if not (folder / jar_name(c)).is_file()]


def pom(coordinates: list[str]) -> str:
    """A Maven project whose dependencies are `coordinates`, each without its own
    dependencies: the jars as published, nothing else resolved or fetched."""
    dependencies = "".join(
        f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version><exclusions><exclusion><groupId>*</groupId>"
        "<artifactId>*</artifactId></exclusion></exclusions></dependency>"
        for group, artifact, version in (c.split(":") for c in coordinates)
    )
    return ('<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
            "<groupId>traffic-glue.local</groupId><artifactId>jars</artifactId><version>0</version>"
            f"<packaging>pom</packaging><dependencies>{dependencies}</dependencies></project>\n")


def fetch(folder: Path, mvn: str | None = None) -> int:
    wanted = missing(folder)
    if not wanted:
        return 0
    mvn = mvn or shutil.which("mvn")
    if not mvn:
        print("jars: error: Maven (mvn) is not on PATH; install it (apt-get install maven) to "
              f"fetch {', '.join(jar_name(c) for c in wanted)} from Maven Central", file=sys.stderr)
        return 1
    folder.mkdir(parents=True, exist_ok=True)
    print(f"jars: fetching {', '.join(wanted)}")
    # One Maven process for all of them (each start of Maven costs ~1.7 s of CPU).
    with tempfile.TemporaryDirectory(prefix="jars-") as work:
        project = Path(work) / "pom.xml"
        project.write_text(pom(wanted))
        done = subprocess.run(
            [mvn, "-q", "-B", "-f", str(project), "dependency:copy-dependencies",
             f"-DoutputDirectory={folder}"],
            capture_output=True, text=True,
        )
    absent = [c for c in wanted if not (folder / jar_name(c)).is_file()]
    if done.returncode != 0 or absent:
        reason = next((line for line in (done.stdout + done.stderr).splitlines()
                       if "ERROR" in line), "no jar was written")
        print(f"jars: error: could not fetch {', '.join(absent or wanted)} from Maven Central "
              f"(is the network there?): {reason.strip()[:300]}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.jars", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=JARS_DIR, help=f"where (default {JARS_DIR})")
    return fetch(parser.parse_args(argv).dir)


if __name__ == "__main__":
    sys.exit(main())
