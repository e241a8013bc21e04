"""One claire process per data folder, enforced with an advisory file lock.

`flock` is released by the kernel when its holder dies, even by `kill -9`, so a
crashed run never leaves a lock behind that blocks the next start. The lock's
file descriptor is not inherited by the PostgreSQL child (Python opens files
non-inheritable), otherwise an orphaned server would keep holding it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from engine.errors import StoreError


class DataDirLock:
    __slots__ = ("_fd", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(
                f"another claire process is using the database in {self.path.parent}; stop it "
                "first, or set CLAIRE_HOME to another folder."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock
