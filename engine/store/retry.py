"""Riding out a database outage: retry with backoff for a bounded time, then give up clearly.

A run's writes are idempotent (keys make re-delivery a no-op, cursors and
checkpoints only move forward), so a batch whose transaction was cut off by a
killed connection, a restarting server or a short outage can simply be written
again. `OutageTolerance.call` does that for `DatabaseUnavailable` only: errors a
retry would repeat (a refused row, a missing table) go straight through.

    tolerance = OutageTolerance(seconds=60)
    tolerance.call(lambda: writer.write(batch, checkpoint), "writing run X")
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from engine.store.errors import DatabaseUnavailable

log = logging.getLogger("claire.store")

T = TypeVar("T")


class DatabaseOutage(DatabaseUnavailable):
    """The database stayed unreachable longer than the tolerance allows."""

    def __init__(self, message: str, detail: str, waited_s: float) -> None:
        super().__init__(message, detail)
        self.waited_s = waited_s


@dataclass(frozen=True, slots=True)
class OutageTolerance:
    """Retry `DatabaseUnavailable` for up to `seconds`, waiting 0.1 s, 0.2 s ... up to 5 s."""

    seconds: float
    first_delay_s: float = 0.1
    max_delay_s: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic

    def call(self, action: Callable[[], T], doing: str) -> T:
        started: float | None = None
        delay = self.first_delay_s
        while True:
            attempt = self.monotonic()
            try:
                result = action()
            except DatabaseUnavailable as exc:
                now = self.monotonic()
                if started is None:
                    started = attempt  # the outage began when the failed attempt did
                    if self.seconds > 0:
                        log.warning(
                            "lost the database while %s (%s); retrying for up to %g s",
                            doing,
                            exc.detail or "unreachable",
                            self.seconds,
                            extra={"event": "db_outage", "detail": exc.detail},
                        )
                waited = now - started
                if waited >= self.seconds:
                    raise DatabaseOutage(
                        f"the database was unreachable for {waited:.0f} s while {doing} "
                        f"({exc.detail or 'no connection'})",
                        exc.detail,
                        waited,
                    ) from None
                self.sleep(min(delay, self.seconds - waited))
                delay = min(delay * 2, self.max_delay_s)
                continue
            if started is not None:
                log.warning(
                    "the database is back after %.1f s; continuing",
                    self.monotonic() - started,
                    extra={"event": "db_outage_over"},
                )
            return result
