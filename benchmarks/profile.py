"""Where the job's time goes: one run, timed phase by phase, with Spark's own stage metrics.

    .venv/bin/python -m benchmarks.profile [--days 1] [--mode corrected] [--lanes 4254]
        [--ablation] [--out benchmarks/results/profile-days1-corrected.json]

Runs the job's own `main` in this process (local[2], default memory, on the raw data
`make bench` cached) without changing a line of it:

- the driver's phases are timed by wrapping the library's functions (listing, footer
  reads, planning, the staged write, the top-jam read-back, publish, the report);
- Spark's event log (the session's own, into a folder of the run's) is read back for each
  stage: wall time, task time, CPU, GC, records and bytes in, shuffled and spilled;
- `--ablation` then reruns, in the same (warm) JVM, ever longer prefixes of the plan
  into Spark's `noop` sink: the scan alone, scan + validation + status, + the shuffle
  by lve_nr, the whole computation, + the write's repartition and sort. The differences
  are the cost of each part.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "glue_jobs")]

from benchmarks import bench  # noqa: E402
from benchmarks.measure import machine_busy_seconds, wait_for_idle  # noqa: E402
from traffic_glue.runtime import session  # noqa: E402

def _process_start_time() -> float:
    stat = Path("/proc/self/stat").read_text()
    start_ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - (uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


def _own_tree_seconds() -> float:
    """CPU seconds of this process and of the JVM (read live from /proc: not reaped yet)."""
    from benchmarks.measure import CLOCK_TICKS, descendants

    total = 0.0
    for pid in [os.getpid(), *descendants(os.getpid())]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return total


# --- the driver's phases ----------------------------------------------------------------


class Phases:
    def __init__(self) -> None:
        self.spans: list[dict] = []
        self._depth = 0

    def wrap(self, module, name: str, label: str) -> None:
        original = getattr(module, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            began, depth = time.time(), self._depth
            self._depth += 1
            try:
                return original(*args, **kwargs)
            finally:
                self._depth -= 1
                self.spans.append({"phase": label, "start": began, "end": time.time(), "depth": depth})

        setattr(module, name, timed)


def instrument(phases: Phases) -> None:
    from traffic_glue.compute import pipeline, validation
    from traffic_glue.store import curated, locations, quarantine, sources
    from traffic_glue.runtime import glue
    from traffic_glue.jobs import job

    for module, name, label in (
        (glue, "start", "Spark session (JVM start, Glue or local)"),
        (job, "run", "job.run (everything after the session)"),
        (sources, "list_raw_files", "list the processing-hour folders"),
        (sources, "inspect_parquet", "read every file's Parquet footer and schema (py4j, 16 threads)"),
        (sources, "read_parquet_readings", "plan the read (Spark's file index, one per schema group)"),
        (validation, "typed_readings", "plan: validation"),
        (pipeline, "curated_minutes", "plan: the computation"),
        (curated.CuratedWrite, "stage", "the write on the run's Iceberg branch (scan, shuffles, windows)"),
        (quarantine, "write_pending", "quarantine rejected readings"),
        (curated.CuratedWrite, "publish", "publish: the Iceberg commit (stale hours, fast-forward main)"),
        (job, "finish", "after the commit: the locations table, the top jam locations"),
        (locations, "record", "the locations table (merge and write)"),
        (job, "_write_report", "write the run report"),
    ):
        phases.wrap(module, name, label)


# --- Spark's event log -------------------------------------------------------------------


def _event_lines(folder: Path) -> list[str]:
    """The lines of the newest application's event log in `folder`: its rolling files
    (`eventlog_v2_<app>/events_<n>_<app>[.zstd]`, session.event_log_conf), in order."""
    apps = sorted(folder.glob("eventlog_v2_*"), key=lambda p: p.stat().st_mtime)
    if not apps:
        raise RuntimeError(f"no event log in {folder}")
    lines = []
    for part in sorted(apps[-1].glob("events_*"), key=lambda p: int(p.name.split("_")[1])):
        codec = "zstd" if part.suffix == ".zstd" else None
        with pa.CompressedInputStream(str(part), codec) if codec else part.open("rb") as stream:
            lines += stream.read().decode().splitlines()
    return lines


def read_event_log(folder: Path) -> dict:
    stages, tasks, jobs, sql = {}, defaultdict(lambda: defaultdict(float)), {}, {}
    app_start = None
    for line in _event_lines(folder):
        event = json.loads(line)
        kind = event["Event"]
        if kind == "SparkListenerApplicationStart":
            app_start = event["Timestamp"] / 1000
        elif kind == "SparkListenerJobStart":
            props = event.get("Properties") or {}
            jobs[event["Job ID"]] = {
                "job": event["Job ID"], "start": event["Submission Time"] / 1000,
                "stages": event["Stage IDs"], "sql": props.get("spark.sql.execution.id"),
                "call_site": props.get("callSite.short", ""),
            }
        elif kind == "SparkListenerJobEnd":
            jobs[event["Job ID"]]["end"] = event["Completion Time"] / 1000
        elif kind == "SparkListenerStageCompleted":
            info = event["Stage Info"]
            stages[info["Stage ID"]] = {
                "stage": info["Stage ID"], "name": info["Stage Name"], "tasks": info["Number of Tasks"],
                "start": info["Submission Time"] / 1000, "end": info["Completion Time"] / 1000,
            }
        elif kind == "SparkListenerTaskEnd":
            _add_task(tasks[event["Stage ID"]], event.get("Task Metrics") or {})
        elif kind.endswith("SparkListenerSQLExecutionStart"):
            sql[event["executionId"]] = {"description": event["description"], "start": event["time"] / 1000}
        elif kind.endswith("SparkListenerSQLExecutionEnd"):
            sql[event["executionId"]]["end"] = event["time"] / 1000
    for stage_id, stage in stages.items():
        stage.update({k: round(v, 3) for k, v in tasks[stage_id].items()})
    return {"app_start": app_start, "jobs": list(jobs.values()), "stages": sorted(stages.values(), key=lambda s: s["stage"]),
            "sql": sql}


def _add_task(total: dict, m: dict) -> None:
    total["task_seconds"] += m.get("Executor Run Time", 0) / 1000
    total["cpu_seconds"] += m.get("Executor CPU Time", 0) / 1e9
    total["gc_seconds"] += m.get("JVM GC Time", 0) / 1000
    total["records_in"] += (m.get("Input Metrics") or {}).get("Records Read", 0)
    total["bytes_in"] += (m.get("Input Metrics") or {}).get("Bytes Read", 0)
    shuffle_read = m.get("Shuffle Read Metrics") or {}
    total["shuffle_read_bytes"] += shuffle_read.get("Local Bytes Read", 0) + shuffle_read.get("Remote Bytes Read", 0)
    total["shuffle_read_records"] += shuffle_read.get("Total Records Read", 0)
    shuffle_write = m.get("Shuffle Write Metrics") or {}
    total["shuffle_write_bytes"] += shuffle_write.get("Shuffle Bytes Written", 0)
    total["shuffle_write_records"] += shuffle_write.get("Shuffle Records Written", 0)
    total["shuffle_write_seconds"] += shuffle_write.get("Shuffle Write Time", 0) / 1e9
    total["records_out"] += (m.get("Output Metrics") or {}).get("Records Written", 0)
    total["bytes_out"] += (m.get("Output Metrics") or {}).get("Bytes Written", 0)
    total["spill_disk_bytes"] += m.get("Disk Bytes Spilled", 0)
    total["spill_memory_bytes"] += m.get("Memory Bytes Spilled", 0)


# --- ablation: ever longer prefixes of the plan into the noop sink -------------------------


def ablation(spark, raw: Path, start, end, mode: str) -> list[dict]:
    from traffic_glue.compute import pipeline, transforms, validation
    from traffic_glue.store import curated as curated_table, sources
    from traffic_glue.compute import schema as S
    from traffic_glue.compute.run_range import RunRange

    span = RunRange.for_days(start, end, 60, 24)
    raw_input = sources.read_raw(spark, str(raw), "parquet", span, mode, skip_corrupt=False)
    readings = sources.readings_to_validate(raw_input, span)  # the job's scan filter
    typed = validation.typed_readings(readings, validation.left_to_judge(readings, span.context))
    statused = typed.transform(transforms.with_reading_status)
    curated = pipeline.curated_minutes(typed, mode, span).rows
    prefixes = [
        ("scan the raw columns (the run's time range)", readings),
        ("+ validation and reading status", statused),
        ("+ shuffle by lve_nr (all readings read)", statused.repartition(S.UNIT_ID)),
        ("+ the whole computation (curated rows)", curated),
        ("+ the write's shuffle by hour and sort", curated.repartition(*S.EVENT_PARTITIONS)
         .sortWithinPartitions(*S.EVENT_PARTITIONS, S.LOCATION_ID, S.RECORD_TIMESTAMP)),
    ]
    found = []
    for label, frame in prefixes:
        began = time.time()
        frame.write.format("noop").mode("overwrite").save()
        found.append({"prefix": label, "seconds": round(time.time() - began, 2)})
        print(f"  ablation: {label}: {found[-1]['seconds']:.1f} s", flush=True)
    with tempfile.TemporaryDirectory(dir=REPO / "benchmarks" / "data") as scratch:
        began = time.time()
        (curated_table.layout_for_write(curated).write.mode("overwrite").option("compression", "snappy")
         .partitionBy(*S.EVENT_PARTITIONS).parquet(scratch + "/staged"))
        found.append({"prefix": "+ plain Parquet write (the job's layout)",
                      "seconds": round(time.time() - began, 2)})
        print(f"  ablation: {found[-1]['prefix']}: {found[-1]['seconds']:.1f} s", flush=True)
    return found


# --- report ---------------------------------------------------------------------------


def timeline(phases: Phases, events: dict, process_start: float) -> list[dict]:
    rows = [{"phase": "python start and imports, until the session is asked for", "start": process_start,
             "end": min(s["start"] for s in phases.spans), "depth": 0}]
    job_end = max(s["end"] for s in phases.spans if s["phase"].startswith("job.run"))
    # the job's own phases only (the ablation calls the same functions again later)
    rows += sorted((s for s in phases.spans if s["end"] <= job_end), key=lambda s: (s["start"], s["depth"]))
    if events.get("app_start"):
        rows.insert(2, {"phase": "until SparkContext started (JVM up)", "start": rows[1]["start"],
                        "end": events["app_start"], "depth": 1})
    for row in rows:
        row["seconds"] = round(row["end"] - row["start"], 2)
        row["at"] = round(row["start"] - process_start, 2)
    return rows


def render(result: dict) -> str:
    lines = ["Driver timeline (s from process start):"]
    for row in result["timeline"]:
        lines.append(f"  {row['at']:7.2f}  {row['seconds']:7.2f}  {'  ' * row['depth']}{row['phase']}")
    lines.append("\nSpark stages (wall = submission to completion; task/CPU/GC summed over tasks):")
    lines.append(f"  {'stage':>5} {'tasks':>5} {'wall':>6} {'task':>7} {'cpu':>7} {'gc':>5} {'rec in':>11} "
                 f"{'MB in':>7} {'shufW MB':>8} {'shufR MB':>8} {'spill MB':>8} {'rec out':>10}  name")
    for s in result["events"]["stages"]:
        lines.append(
            f"  {s['stage']:>5} {s['tasks']:>5} {s['end'] - s['start']:6.1f} {s.get('task_seconds', 0):7.1f} "
            f"{s.get('cpu_seconds', 0):7.1f} {s.get('gc_seconds', 0):5.1f} {int(s.get('records_in', 0)):>11,} "
            f"{s.get('bytes_in', 0) / 1e6:7.0f} {s.get('shuffle_write_bytes', 0) / 1e6:8.0f} "
            f"{s.get('shuffle_read_bytes', 0) / 1e6:8.0f} {s.get('spill_disk_bytes', 0) / 1e6:8.0f} "
            f"{int(s.get('records_out', 0)):>10,}  {s['name'][:60]}")
    if result.get("ablation"):
        lines.append("\nAblation (warm JVM; each line runs the plan up to that point into the noop sink):")
        previous = 0.0
        for row in result["ablation"]:
            lines.append(f"  {row['seconds']:7.1f} s  (+{row['seconds'] - previous:6.1f})  {row['prefix']}")
            previous = row["seconds"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    process_start = _process_start_time()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, choices=bench.DEFAULT_DAYS, default=1)
    parser.add_argument("--mode", choices=("athena", "corrected"), default="corrected")
    parser.add_argument("--lanes", type=int, default=bench.FULL_LANES)
    parser.add_argument("--cache-dir", type=Path, default=REPO / "benchmarks" / "data")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--max-wait", type=float, default=600,
                        help="seconds to wait for other processes to go quiet first")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    out = args.out or REPO / "benchmarks" / "results" / f"profile-days{args.days}-{args.mode}.json"

    longest = max(bench.DEFAULT_DAYS)  # the same cached data as `make bench`
    raw = bench.ensure_raw_data(args.cache_dir.resolve(), bench.data_spec(args.lanes, bench.DEFAULT_DAYS), longest)
    start, end = bench.case_days(args.days, longest)
    event_dir = Path(tempfile.mkdtemp(prefix="eventlog-", dir=args.cache_dir.resolve()))
    target = args.cache_dir.resolve() / "_outputs" / f"profile-days{args.days}-{args.mode}"
    os.environ["TRAFFIC_GLUE_MASTER"] = bench.JOB_MASTER
    # The job's session writes its own event log (session.event_log_conf): here, into a
    # folder of this run's.
    os.environ[session.EVENT_LOG_ENV] = str(event_dir)
    phases = Phases()
    instrument(phases)
    started_up = time.time() - process_start
    waited, load = wait_for_idle(bench.QUIET_OTHER_CORES, args.max_wait)
    print(f"waited {waited:.0f} s for a quiet machine (other load {load:.2f} cores)", flush=True)
    process_start = time.time() - started_up  # the timeline leaves the wait out
    busy_before, clock_before = machine_busy_seconds(), time.time()
    own_before = _own_tree_seconds()
    spec = importlib.util.spec_from_file_location("traffic_transform", REPO / "glue_jobs" / "traffic_transform.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    code = script.main(["traffic_transform.py", "--JOB_NAME", "profile", "--source_path", str(raw),
                        "--target_path", str(target), "--start_date", start.isoformat(),
                        "--end_date", end.isoformat(), "--semantics", args.mode])
    if code:
        return code
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    ablation_rows = ablation(spark, raw, start, end, args.mode) if args.ablation else []
    stopping = time.time()
    spark.stop()  # the job itself leaves this to the interpreter's exit
    stopped = time.time()
    # Everything the machine did that was not this process (or the JVM, its child).
    other_load = ((machine_busy_seconds() - busy_before) - (_own_tree_seconds() - own_before)) / (stopped - clock_before)
    events = read_event_log(event_dir)
    rows = timeline(phases, events, process_start)
    rows.append({"phase": "spark.stop", "start": stopping, "end": stopped, "depth": 0,
                 "seconds": round(stopped - stopping, 2), "at": round(stopping - process_start, 2)})
    result = {"days": args.days, "mode": args.mode, "start_date": str(start), "end_date": str(end),
              "other_load_cores": round(max(0.0, other_load), 2), "timeline": rows, "events": events,
              "ablation": ablation_rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(render(result))
    print(f"\nother processes used {result['other_load_cores']:.2f} cores meanwhile")
    for folder in (event_dir, target):
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
