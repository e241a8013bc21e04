"""Two advisory file locks that let every claire process of a data folder share one server.

    postgres.lock   exclusive, held for a moment by whoever decides to start, join,
                    leave, restart or stop the server: two starts never race
    postgres.users  shared, held by every process that uses the server for as long
                    as it does; the last one to leave stops the server

`flock` locks are released by the kernel when their holder dies, even by
`kill -9`, so a crashed process never blocks the next start nor keeps a server
"in use". The descriptors are not inherited by the PostgreSQL child (Python
opens files non-inheritable), otherwise the server would hold its own users lock.

A process only takes or drops its shared hold while it holds the control lock,
so "nobody else holds the users lock" is a stable fact under the control lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from engine.errors import StoreError

POLL_S: Final = 0.05


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def _try_lock(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class ControlLock:
    """The exclusive lock held while a process starts, joins, leaves or stops the server.

    Re-entrant within one object: a nested `held()` (say, `stop()` called from a
    signal handler while `start()` holds the lock) does not wait for itself.
    """

    __slots__ = ("_depth", "_fd", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._depth = 0

    @contextlib.contextmanager
    def held(self, timeout_s: float) -> Iterator[None]:
        if self._fd is None:
            self._acquire(timeout_s)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                fd, self._fd = self._fd, None
                if fd is not None:
                    os.close(fd)  # closing the descriptor drops the flock

    def _acquire(self, timeout_s: float) -> None:
        fd = _open(self.path)
        deadline = time.monotonic() + timeout_s
        while not _try_lock(fd, fcntl.LOCK_EX):
            if time.monotonic() >= deadline:
                os.close(fd)
                raise StoreError(
                    f"another claire process has been starting or stopping the database in "
                    f"{self.path.parent} for over {timeout_s:g} s; wait for it, or see "
                    f"{self.path.parent / 'postgres.log'} if it seems stuck."
                )
            time.sleep(POLL_S)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd


class UsersLock:
    """A shared hold on `postgres.users` for as long as this process uses the server."""

    __slots__ = ("_fd", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def joined(self) -> bool:
        return self._fd is not None

    def join(self) -> bool:
        """Take a shared hold; return True if no other process held one. Hold the control lock."""
        if self._fd is not None:
            return not self.others_present()
        fd = _open(self.path)
        alone = _try_lock(fd, fcntl.LOCK_EX)  # only while nobody else holds a shared lock
        # Under the control lock nobody holds it exclusively, so this never waits.
        if not _try_lock(fd, fcntl.LOCK_SH):
            os.close(fd)
            raise StoreError(
                f"the database users lock {self.path} is held exclusively by a process that "
                "does not follow claire's locking; stop that process."
            )
        self._fd = fd
        return alone

    def leave(self) -> bool:
        """Drop our hold; return True if no other process holds one. Hold the control lock."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        return not self.others_present()

    def others_present(self) -> bool:
        """Whether any process other than this object holds the users lock."""
        if self._fd is not None:
            alone = _try_lock(self._fd, fcntl.LOCK_EX)  # an upgrade works only without sharers
            # Back to shared: on Linux a failed upgrade has already dropped the old lock.
            fcntl.flock(self._fd, fcntl.LOCK_SH)
            return not alone
        fd = _open(self.path)
        try:
            return not _try_lock(fd, fcntl.LOCK_EX)
        finally:
            os.close(fd)
