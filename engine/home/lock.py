"""The lock a process holds on a run while it runs it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


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


def run_is_alive(data_dir: Path, run_id: str) -> bool:
    """Whether some process holds the run's lock right now."""
    lock = RunLock(data_dir, run_id)
    if lock.acquire():
        lock.release()
        return False
    return True


__all__ = ["RunLock", "run_is_alive"]
