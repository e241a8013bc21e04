"""What `postmaster.pid` says about the server running in a data folder.

PostgreSQL (10+) writes, one per line: the postmaster's PID, the data folder,
its start time, the port, the socket folder, the listen address, the shared
memory key and the state (`starting`, `ready`, `stopping`, `standby`). A server
is usable when that PID is a live `postgres` process working in this data folder
and the state is `ready`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True, slots=True)
class PidFile:
    pid: int
    port: int
    socket_dir: str
    listen: str
    state: str


def read_pidfile(pgdata: Path) -> PidFile | None:
    """The parsed `postmaster.pid`, or None if it is missing, partial or unreadable."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 8 or not lines[0].strip().isdigit() or not lines[3].strip().isdigit():
        return None
    return PidFile(
        pid=int(lines[0]),
        port=int(lines[3]),
        socket_dir=lines[4].strip(),
        listen=lines[5].strip(),
        state=lines[7].strip(),
    )


def is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """Whether `pid` is a live (non-zombie) `postgres` process working in `pgdata`."""
    with contextlib.suppress(psutil.Error, OSError):
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or proc.name() != "postgres":
            return False
        return Path(proc.cwd()) == pgdata.resolve()
    return False


def running_server(pgdata: Path) -> PidFile | None:
    """The ready server working in `pgdata`, or None."""
    found = read_pidfile(pgdata)
    if found is None or found.state != "ready" or not is_postmaster_of(found.pid, pgdata):
        return None
    return found
