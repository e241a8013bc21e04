"""The lock a process holds on a run while it runs it, and the data folder's start lock.

Starting a run is: check that no other run is active in the folder (the preflight),
then record the run and take its lock. Two starts at once could both pass the
check before either holds its lock; the start lock makes the two steps one: a start
takes it before the check and keeps it until this process holds its run's lock (or
the start ends), so a second start waits for it, then sees the first run active
and is refused with its id.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Final

from engine.errors import ConfigError

START_WAIT_S: Final = 120.0  # how long a start waits for another start in the folder
_starting: list[StartLock] = []  # the start lock this process holds, until `run_started`


class RunLock:
    """Held by the process that runs a run; released by the kernel even after kill -9."""

    def __init__(self, data_dir: Path, run_id: str) -> None:
        folder = data_dir / "runs"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{run_id}.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def run_started() -> None:
    """This process holds its run's lock now: other starts in the folder may go ahead
    (they see the run active). Called by whoever takes a run's lock to run it."""
    for start in list(_starting):
        start.release()


class StartLock:
    """Held by a process from the check for other active runs until it holds its run's lock."""

    def __init__(self, data_dir: Path) -> None:
        folder = Path(data_dir) / "runs"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / ".starting"  # not a run lock: `locked_runs` lists *.lock
        self._fd: int | None = None

    def acquire(self, wait_s: float = START_WAIT_S) -> None:
        """Wait (bounded) for another start in the folder to finish starting, then hold it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self.path.read_text().strip() or "another process"
                    os.close(fd)
                    raise ConfigError(
                        f"another run is starting in {self.path.parent.parent} ({holder}) and "
                        f"has not finished starting after {wait_s:g} s; try again, or use "
                        "another --data-dir."
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self._fd = fd
        _starting.append(self)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if self in _starting:
            _starting.remove(self)
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)

    def __enter__(self) -> StartLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def run_is_alive(data_dir: Path, run_id: str) -> bool:
    """Whether some process holds the run's lock right now."""
    lock = RunLock(data_dir, run_id)
    if lock.acquire():
        lock.release()
        return False
    return True


__all__ = ["START_WAIT_S", "RunLock", "StartLock", "run_is_alive", "run_started"]
