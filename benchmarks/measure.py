"""Run a command and measure its whole process tree: wall time, CPU time, peak RSS.

Linux only (it reads /proc), and no dependency beyond the standard library.

- CPU time is the `RUSAGE_CHILDREN` delta around the run. That counts a process
  only once it has been reaped, and PySpark does not wait for its JVM: the JVM is
  still running when the Python process exits, and would be reparented to init and
  its CPU time lost. So the benchmark makes itself a *child subreaper*
  (`prctl(PR_SET_CHILD_SUBREAPER)`): orphaned descendants are reparented to it, and
  it reaps every one of them before reading the delta.
- Peak memory is the largest sum of RSS over every live descendant, sampled every
  `SAMPLE_SECONDS` (the JVM, the Python driver, `spark-submit`'s launcher JVM, ...),
  with one exception: a child forked but not yet exec'd (the JVM starts helper
  processes, e.g. for Hadoop's local file operations) shares every page of its
  parent, and its RSS is the parent's again; summed as is, it would count the JVM
  twice for that moment. Such a child (same memory layout in /proc/PID/stat as its
  parent) is left out of the sum. Otherwise RSS counts shared pages (libraries) once
  per process, so the sum slightly overstates what the tree needs: a few tens of MiB
  for a JVM plus one Python process.
- Wall time ends when the command's own process exits; the tree's stragglers (the
  JVM shutting down) are timed separately as `tree_exit_seconds`.
- Other load: the CPU time the whole machine spent (/proc/stat, steal included) that
  was neither the run's nor this process's, in cores. A run that shared the machine
  with something else is slower than it should be; `wait_for_idle` waits for a quiet
  machine first, and the figure says how quiet it stayed.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shlex
import signal
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_SECONDS = 0.2
PR_SET_CHILD_SUBREAPER = 36
STRAGGLER_TIMEOUT_SECONDS = 120
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
IDLE_CHECK_SECONDS = 3.0


def submit_args_with(conf: dict[str, str], current: str | None) -> str:
    """`PYSPARK_SUBMIT_ARGS` with `conf` added to what was set already (the user's own
    settings stay; pyspark splits it as a shell would and wants `pyspark-shell` last)."""
    words = shlex.split(current or "")
    if words and words[-1] == "pyspark-shell":
        words.pop()
    for key, value in conf.items():
        words += ["--conf", f"{key}={value}"]
    return shlex.join([*words, "pyspark-shell"])


def machine_busy_seconds() -> float:
    """CPU seconds the machine has spent busy since boot, all cores, steal included."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def _own_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def wait_for_idle(max_other_cores: float, max_wait: float) -> tuple[float, float]:
    """Wait until the machine is busy with less than `max_other_cores` cores (over
    IDLE_CHECK_SECONDS), at most `max_wait` seconds. Returns (waited, last load)."""
    began = time.monotonic()
    while True:
        busy, own = machine_busy_seconds(), _own_seconds()
        time.sleep(IDLE_CHECK_SECONDS)
        load = (machine_busy_seconds() - busy - (_own_seconds() - own)) / IDLE_CHECK_SECONDS
        waited = time.monotonic() - began
        if load < max_other_cores or waited >= max_wait:
            return waited, load


def become_subreaper() -> None:
    """Orphaned descendants of this process are reparented to it (so it can reap them)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


# Fields of /proc/PID/stat (counted after the command name, from 0) that describe the
# address space: start/end of code, start of stack, arguments and environment. A child
# that has them all equal to its parent's has not exec'd yet: it shares its memory.
_LAYOUT_FIELDS = (23, 24, 25, 45, 46, 47, 48)


def _processes() -> dict[int, tuple[int, tuple]]:
    """pid: (parent pid, address-space layout) of every process."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # The command name may hold spaces and parentheses: fields follow the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        layout = tuple(fields[i] for i in _LAYOUT_FIELDS if i < len(fields))
        found[int(entry.name)] = (int(fields[1]), layout)
    return found


def descendants(root: int, skip_unexeced_forks: bool = False) -> list[int]:
    processes = _processes()
    children = defaultdict(list)
    for pid, (ppid, _) in processes.items():
        children[ppid].append(pid)
    found, todo = [], [root]
    while todo:
        parent = todo.pop()
        for child in children.get(parent, []):
            todo.append(child)
            layout = processes[child][1]
            if (skip_unexeced_forks and parent in processes and any(v != "0" for v in layout)
                    and layout == processes[parent][1]):
                continue
            found.append(child)
    return found


def _rss_and_name(pid: int) -> tuple[int, str] | None:
    try:
        resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * PAGE_BYTES, name


@dataclass
class TreeSampler:
    """Samples the summed RSS of every descendant of this process in a thread."""

    interval: float = SAMPLE_SECONDS
    peak_bytes: int = 0
    peak_by_name: dict = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        by_name: dict[str, int] = defaultdict(int)
        for pid in descendants(os.getpid(), skip_unexeced_forks=True):
            found = _rss_and_name(pid)
            if found:
                by_name[found[1]] += found[0]
        total = sum(by_name.values())
        self.samples += 1
        if total > self.peak_bytes:
            self.peak_bytes, self.peak_by_name = total, dict(by_name)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "TreeSampler":
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Measurement:
    returncode: int
    wall_seconds: float
    user_seconds: float
    system_seconds: float
    peak_rss_bytes: int
    peak_rss_by_process: dict
    tree_exit_seconds: float  # after the command exited, until its last descendant did
    rss_samples: int
    other_load_cores: float  # CPU the machine spent on anything else, per second of the run

    @property
    def cpu_seconds(self) -> float:
        return self.user_seconds + self.system_seconds


def _reap_stragglers(timeout: float) -> None:
    """Wait for every descendant (reparented here: we are a subreaper) to exit."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no child left
        if pid:
            continue
        if time.monotonic() > deadline:
            for straggler in descendants(os.getpid()):
                os.kill(straggler, signal.SIGTERM)
            deadline = time.monotonic() + timeout
        time.sleep(0.02)


def run_measured(command: list[str], env: dict, cwd: str, log_path: Path) -> Measurement:
    """Run `command` (stdout and stderr to `log_path`) and measure its process tree."""
    _reap_stragglers(STRAGGLER_TIMEOUT_SECONDS)  # nothing of an earlier run may count
    log_path.parent.mkdir(parents=True, exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before, own_before = machine_busy_seconds(), _own_seconds()
    with open(log_path, "wb") as log, TreeSampler() as sampler:
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        returncode = process.wait()
        exited = time.monotonic()
        _reap_stragglers(STRAGGLER_TIMEOUT_SECONDS)
        tree_exited = time.monotonic()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tree_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    others = (machine_busy_seconds() - busy_before) - tree_cpu - (_own_seconds() - own_before)
    return Measurement(
        returncode=returncode,
        wall_seconds=exited - started,
        user_seconds=after.ru_utime - before.ru_utime,
        system_seconds=after.ru_stime - before.ru_stime,
        peak_rss_bytes=sampler.peak_bytes,
        peak_rss_by_process=sampler.peak_by_name,
        tree_exit_seconds=tree_exited - exited,
        rss_samples=sampler.samples,
        other_load_cores=max(0.0, others) / (tree_exited - started),
    )
