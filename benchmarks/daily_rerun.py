"""Issue 20, item 6: a daily rerun's fixed costs, step by step.

    .venv/bin/python -m benchmarks.daily_rerun [--modes corrected athena] [--repeat 3]
        [--cache-dir benchmarks/data] [--out benchmarks/results/daily_rerun.json]

A real-sized day alone: 2020-04-08 of the full network (4,254 lanes, about 6.1 M
readings in 30 hour files), generated once into `--cache-dir` and landed with nothing
else. In each mode the job (the README's command, local[2], a 2 GB driver, the class
archive and bytecode `make setup` makes) writes the day once into a fresh table, then
reruns it `--repeat` times into that table: the daily case, whose table a run made
yesterday. Each rerun is timed from its start to the end of its whole process tree (the
JVM too: a shell waits for it as long as it holds the output), and each line the job
prints by when it arrived. The steps are the gaps between those lines, named by the
phase that was running (`Progress.phase`'s start and end lines), or by the phase before
them where none was. Prints each step's seconds (the range over the reruns) and the
time outside the computing phase against the 5 s the issue asks; writes the same as
JSON. Not a test: nothing in `make test` is timed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench import (
    JOB_MASTER, QUIET_OTHER_CORES, REPO, SEED, _job_command, code_version, ensure_raw_data, machine,
    warm_page_cache,
)
from benchmarks.measure import wait_for_idle
from tools.sample_data import SampleSpec

DAY = dt.date(2020, 4, 8)
LANES = 4254
TARGET_SECONDS = 5.0  # outside the computing phase (issue 20, item 6)
COMPUTING = "computing and writing"
# The job's phases (`Progress.phase`), as their first line names them.
PHASES = ("reading the configuration", "reading", COMPUTING, "quarantining", "checking data quality",
          "committing", "summarising")
FIRST = "before the first line"  # Python, its imports, the JVM and the session
LAST = "after the last line"  # the JVM's end
# What runs where no phase does, named by the phase before it.
AFTER = {"reading": "the plan, the table's preparation, the run's branch",
         "committing": "the table's mode, between phases",
         "summarising": "the report"}
_LINE = re.compile(r"^traffic-glue \[\d+:\d\d(?::\d\d)?\] (.*)$")
_END = re.compile(r"\(\d+\.\d s\)$")


def data_spec() -> SampleSpec:
    return SampleSpec(start_date=DAY, days=1, lanes=LANES, seed=SEED)


def steps(lines: list[tuple[float, str]], ended: float) -> dict[str, float]:
    """Seconds per step of one run: `lines`, each printed line with the seconds since the
    run's start at which it arrived; `ended`, when the run's process tree ended. A gap
    between two progress lines is the running phase's (from its start line to its end
    line, `(N.N s)`), else `after <the phase before>`; before the first progress line
    and after the last line of all are steps of their own."""
    found: dict[str, float] = {}

    def add(name: str, seconds: float) -> None:
        found[name] = found.get(name, 0.0) + seconds

    progress = [(at, match.group(1)) for at, text in lines if (match := _LINE.match(text))]
    if not progress:
        return {FIRST: ended}
    add(FIRST, progress[0][0])
    running, previous = None, None
    for (at, text), (until, _) in zip(progress, [*progress[1:], (lines[-1][0], "")]):
        name = next((p for p in PHASES if text == p or text.startswith(p + ":")), None)
        ends = _END.search(text) is not None
        if name is not None and not ends:
            running = name  # a phase's start line
        elif running is not None and ends:
            previous, running = running, None  # its end line
        if until > at:
            add(running or AFTER.get(previous) or (f"after {previous}" if previous else "between phases"),
                until - at)
    add(LAST, ended - lines[-1][0])
    return found


def outside(found: dict[str, float]) -> float:
    """Every step but the computing phase."""
    return sum(seconds for name, seconds in found.items() if name != COMPUTING)


def timed_run(command: list[str], env: dict, log: Path) -> tuple[int, list[tuple[float, str]], float]:
    """Run `command`; its exit status, its lines (standard error too) with when each
    arrived, and when its output closed (its JVM gone), in seconds from its start."""
    began = time.monotonic()
    lines = []
    with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as process, open(log, "a") as out:
        for line in process.stdout:
            lines.append((time.monotonic() - began, line.rstrip("\n")))
            out.write(line)
        ended = time.monotonic() - began
        status = process.wait()
    return status, lines, ended


def run_mode(raw: Path, work: Path, logs: Path, mode: str, repeat: int, max_wait: float) -> dict:
    """The first run into a fresh table, then `repeat` timed reruns into it."""
    table = work / f"curated_{mode}"
    shutil.rmtree(table, ignore_errors=True)
    env = {**os.environ, "TRAFFIC_GLUE_MASTER": JOB_MASTER}
    log = logs / f"{mode}.log"
    command = _job_command(raw, table, DAY, DAY, mode)  # the bench's job run, on DAY
    status, _, _ = timed_run(command, env, log)
    if status != 0:
        raise SystemExit(f"daily_rerun: the first run of {mode} failed (exit status {status}): see {log}")
    reruns = []
    for attempt in range(1, repeat + 1):
        waited, load = wait_for_idle(QUIET_OTHER_CORES, max_wait)
        status, lines, ended = timed_run(command, env, log)
        if status != 0:
            raise SystemExit(f"daily_rerun: rerun {attempt} of {mode} failed (exit status {status}): see {log}")
        found = steps(lines, ended)
        reruns.append({"wall_seconds": round(ended, 3), "computing_seconds": round(found.get(COMPUTING, 0.0), 3),
                       "outside_seconds": round(outside(found), 3), "other_load_before": round(load, 2),
                       "steps": {name: round(seconds, 3) for name, seconds in found.items()}})
        print(f"  {mode} rerun {attempt}: {ended:.2f} s, computing {found.get(COMPUTING, 0.0):.2f} s, "
              f"outside it {outside(found):.2f} s", flush=True)
    return {"mode": mode, "reruns": reruns}


def table(result: dict) -> str:
    """Each step's range over the reruns, per mode, in the order the steps ran."""
    lines = []
    for run in result["modes"]:
        reruns = run["reruns"]
        order = list(dict.fromkeys(name for r in reruns for name in r["steps"]))
        lines += [f"\n{run['mode']}, {len(reruns)} reruns of {DAY} (seconds, lowest..highest)",
                  f"  {'step':<52} {'s':>11}"]
        for name in order:
            values = [r["steps"].get(name, 0.0) for r in reruns]
            if max(values) < 0.005:
                continue  # a gap between two lines printed at once (in the JSON still)
            lines.append(f"  {name:<52} {_span(values):>11}")
        values = [r["outside_seconds"] for r in reruns]
        met = "met" if max(values) < TARGET_SECONDS else "not met"
        lines.append(f"  {'outside the computing phase':<52} {_span(values):>11}  "
                     f"(under {TARGET_SECONDS:g} s asked: {met})")
        lines.append(f"  {'wall':<52} {_span([r['wall_seconds'] for r in reruns]):>11}")
    return "\n".join(lines)


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.2f}" if round(low, 2) == round(high, 2) else f"{low:.2f}..{high:.2f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.daily_rerun", description=__doc__.split("\n")[0])
    parser.add_argument("--modes", nargs="+", choices=("corrected", "athena"), default=["corrected", "athena"])
    parser.add_argument("--repeat", type=int, default=3, help="timed reruns per mode (default 3)")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "benchmarks" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "daily_rerun.json")
    parser.add_argument("--max-wait", type=float, default=600.0,
                        help="seconds to wait for a quiet machine before each rerun (default 600)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec = data_spec()
    raw = ensure_raw_data(args.cache_dir.resolve(), spec, 1, name=f"day-{DAY}-lanes{LANES}-seed{SEED}")
    warm_page_cache(raw)
    work = args.cache_dir.resolve() / "_daily_rerun"
    logs = args.out.resolve().parent / f"{args.out.stem}-logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    code = code_version()
    result = {
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "code": code,
        "data": {"root": str(raw), "spec": {k: str(v) for k, v in dataclasses.asdict(spec).items()}},
        "target_outside_seconds": TARGET_SECONDS,
        "modes": [run_mode(raw, work, logs, mode, args.repeat, args.max_wait) for mode in args.modes],
    }
    shutil.rmtree(work, ignore_errors=True)
    if code_version() != code:
        print("\n! the job's code changed during the run: the reruns did not all measure the same code. Rerun.")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"\nwrote {args.out}; the runs' output in {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
