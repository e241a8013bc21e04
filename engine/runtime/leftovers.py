"""Stop the server working in a data folder, and clear what a crashed one left behind.

After `kill -9` of the last claire using it, a server keeps running, orphaned;
after `kill -9` of the server itself, `postmaster.pid` stays behind, and while
its process is an unreaped zombie (or its PID is reused) PostgreSQL refuses to
start ("lock file postmaster.pid already exists"). Both are handled here, under
the data folder's control lock (see `lock.py`), when no live claire uses the
server, or when its last user stops a server it did not start itself:

1. every `postgres` process whose working directory is this data folder is
   ours (PostgreSQL `chdir`s into its data folder, and its children keep the
   process name `postgres` even after they rename their command line);
2. a live postmaster gets a fast shutdown (SIGINT), leftovers of a dead one
   get SIGKILL, as the PostgreSQL documentation advises;
3. then `postmaster.pid` and socket lock files are stale by construction and
   are removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

import psutil

_log = logging.getLogger(__name__)

POLL_S = 0.02


def recorded_pid(pgdata: Path) -> int | None:
    """The postmaster PID written in `postmaster.pid`, if the file exists and is readable."""
    try:
        first = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0]
        return int(first.strip())
    except (OSError, ValueError):
        return None


def server_processes(pgdata: Path) -> list[psutil.Process]:
    """Live (non-zombie) `postgres` processes working in `pgdata`."""
    target = pgdata.resolve()
    found = []
    for proc in psutil.process_iter(["name", "status"]):
        if proc.info["name"] != "postgres" or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if Path(proc.cwd()) == target:
                found.append(proc)
        except (psutil.Error, OSError):
            continue  # gone meanwhile, or another user's process we may not inspect
    return found


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until each process is gone or a zombie; return those still alive."""
    deadline = time.monotonic() + timeout_s
    alive = [p for p in procs if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(POLL_S)
        alive = [p for p in alive if _alive(p)]
    return alive


def _signal(procs: list[psutil.Process], signum: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signum)


def clear_leftovers(
    pgdata: Path, shutdown_timeout_s: float = 30.0, *, orphaned: bool = True
) -> list[int]:
    """Stop the servers working in `pgdata` and remove stale lock files; return their PIDs.

    `orphaned=False` is a planned stop of a server this process did not start
    (it was shared, and we are its last user): logged as such, not as a leftover.
    """
    if not pgdata.exists():
        return []
    procs = server_processes(pgdata)
    handled = [p.pid for p in procs]
    if procs:
        postmaster_pid = recorded_pid(pgdata)
        postmaster = [p for p in procs if p.pid == postmaster_pid]
        if postmaster:
            if orphaned:
                _log.warning(
                    "stopping a PostgreSQL left running by a claire process that is gone",
                    extra={"event": "postgres_orphan_stop", "pid": postmaster_pid},
                )
            else:
                _log.info(
                    "stopping the shared embedded PostgreSQL",
                    extra={"event": "postgres_stop", "pid": postmaster_pid},
                )
            _signal(postmaster, signal.SIGINT)  # fast shutdown: consistent, with a checkpoint
            _wait_gone(postmaster, shutdown_timeout_s)
        rest = _wait_gone(procs, 0.5)  # children of a dead postmaster exit on their own, mostly
        if rest:
            _log.warning(
                "killing leftover PostgreSQL processes of a crashed server",
                extra={"event": "postgres_leftovers_kill", "pids": [p.pid for p in rest]},
            )
            _signal(rest, signal.SIGKILL)
            _wait_gone(rest, 5.0)
    _remove_stale_files(pgdata)
    return handled


def _remove_stale_files(pgdata: Path) -> None:
    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists():
        _log.info(
            "removing a stale postmaster.pid",
            extra={"event": "postgres_stale_pid", "pid": recorded_pid(pgdata)},
        )
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()
    for stale in pgdata.glob(".s.PGSQL.*"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stale)
