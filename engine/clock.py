"""Clocks are injected: services ask a clock for the time, never `datetime.now()`.

`WallClock` is for live runs. `EventClock` follows the event time of a replay, so a
7-day run replays in seconds and gives the same decisions every time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class EventClock:
    """Time is the latest event time seen; it never moves backwards."""

    __slots__ = ("_now",)

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(1970, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, ts: datetime) -> None:
        if ts > self._now:
            self._now = ts
