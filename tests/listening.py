"""Which addresses a process listens on, from Linux's /proc (tests that need it skip elsewhere)."""

from __future__ import annotations

import os
import re
from pathlib import Path

PROC = Path("/proc")
# 127.0.0.1 as /proc/net/tcp and /proc/net/tcp6 (IPv4-mapped) write it.
LOOPBACK = frozenset({"0100007F", "0000000000000000FFFF00000100007F"})
_LISTEN = "0A"
_SOCKET = re.compile(r"socket:\[(\d+)\]")


def has_proc_net() -> bool:
    return (PROC / "net" / "tcp").exists()


def process_group(pgid: int) -> list[int]:
    """The processes of the group `pgid` (a server and the JVM it started, say)."""
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
            members.append(int(entry.name))
    return members


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in (PROC / str(pid) / "fd").iterdir():
        try:
            found = _SOCKET.fullmatch(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile
        if found:
            inodes.add(found.group(1))
    return inodes


def listening(pids: list[int]) -> set[tuple[str, int]]:
    """The (address in /proc's hex, port) of every TCP socket of `pids` that listens."""
    inodes = set().union(*(_socket_inodes(pid) for pid in pids))
    found = set()
    for table in ("tcp", "tcp6"):
        path = PROC / "net" / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == _LISTEN and fields[9] in inodes:
                address, port = fields[1].split(":")
                found.add((address, int(port, 16)))
    return found
