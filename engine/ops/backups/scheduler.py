"""A run's backups, in the background, without pausing the pipeline.

`BackupTimer` says when the next one is due, on the operator's wall clock: before a
live run starts, then each BACKUP_INTERVAL of wall time (a replay's first one after
an interval, so an accelerated replay that lasts seconds takes none). Market time
plays no part: a replay running through a week of market time in seconds is not a
week of the operator's work to lose.

`take()` is called between two market events: it exports a snapshot of the database
at once, so the backup holds exactly the run as it stood then, and hands the slow
part (counting, pg_dump, checksum) to one worker thread. A failed backup is logged
and counted; it never stops the run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime, timedelta
from typing import Final

from engine.clock import Clock
from engine.errors import ClaireError
from engine.ops.backups.manifest import Backup
from engine.ops.backups.service import Backups, PendingBackup
from engine.store import Database

log = logging.getLogger("claire.backup")

MAX_PENDING: Final = 3  # snapshots held open at once; a fourth waits for the first to finish


class BackupTimer:
    """When a run's next backup is due: at once (`at_start`, a live run) or one
    `interval` after the start, then one `interval` after each backup taken."""

    def __init__(self, interval: timedelta, clock: Clock, *, at_start: bool) -> None:
        self.interval = interval
        self.clock = clock
        now = clock.now()
        self.next_at = now if at_start else now + interval

    def due(self) -> bool:
        return self.clock.now() >= self.next_at

    def taken(self) -> None:
        self.next_at = self.clock.now() + self.interval


class BackupScheduler:
    def __init__(
        self, backups: Backups, db: Database, run_id: str, max_pending: int = MAX_PENDING
    ) -> None:
        self.backups = backups
        self.db = db
        self.run_id = run_id
        self.written: list[Backup] = []
        self.failures: list[str] = []
        self._queue: queue.Queue[PendingBackup | None] = queue.Queue(maxsize=max_pending)
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def take(self, reason: str, market_time: datetime | None = None) -> None:
        """Snapshot now, dump in the background."""
        try:
            pending = self.backups.begin(self.db, reason, self.run_id, market_time)
        except ClaireError as exc:
            self._failed(reason, exc)
            return
        self._start()
        self._queue.put(pending)

    def take_now(self, reason: str, market_time: datetime | None = None) -> Backup | None:
        """A backup after every earlier one, written before this returns (None if it failed)."""
        self.drain()
        try:
            backup = self.backups.create(self.db, reason, self.run_id, market_time)
        except ClaireError as exc:
            self._failed(reason, exc)
            return None
        with self._lock:
            self.written.append(backup)
        return backup

    def drain(self, timeout_s: float = 600.0) -> bool:
        """Wait for the backups begun so far; False when they took longer than `timeout_s`."""
        worker = self._worker
        if worker is None:
            return True
        self._queue.put(None)
        worker.join(timeout_s)
        if worker.is_alive():
            return False
        self._worker = None
        return True

    def _start(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(
                target=self._work, name=f"backups-{self.run_id}", daemon=True
            )
            self._worker.start()

    def _work(self) -> None:
        while True:
            pending = self._queue.get()
            if pending is None:
                return
            started = time.monotonic()
            try:
                backup = pending.complete()
            except Exception as exc:  # a backup never takes the run down
                self._failed(pending.reason, exc)
                continue
            with self._lock:
                self.written.append(backup)
            log.info(
                "backup %s written in %.1f s",
                backup.name,
                time.monotonic() - started,
                extra={"event": "backup_done", "backup": backup.name},
            )

    def _failed(self, reason: str, exc: BaseException) -> None:
        message = f"the {reason} backup of run {self.run_id} failed: {exc}"
        with self._lock:
            self.failures.append(message)
        log.warning(message, extra={"event": "backup_failed", "run_id": self.run_id})
