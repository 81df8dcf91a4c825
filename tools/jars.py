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
from pathlib import Path

from traffic_glue.runtime.session import JARS_DIR, JVM_PACKAGES, jar_name


def missing(folder: Path) -> list[str]:
    return [c for c in JVM_PACKAGES if not (folder / jar_name(c)).is_file()]


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
    for coordinate in wanted:
        print(f"jars: fetching {coordinate}")
        done = subprocess.run(
            [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={coordinate}",
             f"-DoutputDirectory={folder}"],
            capture_output=True, text=True,
        )
        if done.returncode != 0 or not (folder / jar_name(coordinate)).is_file():
            reason = next((line for line in (done.stdout + done.stderr).splitlines()
                           if "ERROR" in line), "no jar was written")
            print(f"jars: error: could not fetch {coordinate} from Maven Central "
                  f"(is the network there?): {reason.strip()[:300]}", file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.jars", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=JARS_DIR, help=f"where (default {JARS_DIR})")
    return fetch(parser.parse_args(argv).dir)


if __name__ == "__main__":
    sys.exit(main())
