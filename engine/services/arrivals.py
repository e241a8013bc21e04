"""When a live run's market events arrived, and how long they took to be handled.

The live feed notes the wall-clock time (ms) at which it received each market event
from the exchange, and publishes those times beside each market time, in one Redis
key per close (`feed:arrived:<close ms>`, kept `ARRIVALS_TTL_S`), in the same
transaction as the events. The signal service (arrival -> decision) and the writer
(arrival -> fill committed) read it back once per market time and keep the
latencies in memory; on the way out each service saves a summary of them, overall
and per minute of the run, for the benchmark. Nothing here feeds a decision: the
times only measure.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any, Final

from engine.bus.redis import RedisBus
from engine.events import Event, Watermark
from engine.services.market_times import to_ms

ARRIVALS_TTL_S: Final = 900
MAX_NOTED: Final = 100_000  # arrivals kept for events not yet published


def arrived_key(bus: RedisBus, close_ms: int) -> str:
    return bus.key(f"feed:arrived:{close_ms}")


def wall_ms() -> int:
    return int(time.time() * 1000)


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 and max of `values` (nearest rank); empty when there are none."""
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": ordered[len(ordered) // 2],
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max_ms": ordered[-1],
    }


class ArrivalNotes:
    """The feed's side: arrival times of events received and not yet published."""

    def __init__(self) -> None:
        self._at: dict[str, int] = {}

    def note(self, events: Iterable[Any]) -> None:
        now = wall_ms()
        if len(self._at) > MAX_NOTED:  # events that were never published (late, dropped)
            self._at.clear()
        for event in events:
            event_id = getattr(event, "event_id", None)
            if event_id is not None:
                self._at[event_id] = now

    def take(self, events: Iterable[Event]) -> dict[str, int]:
        """The arrival times of `events` (those noted), forgotten here."""
        out = {}
        for event in events:
            at = self._at.pop(event.event_id, None)
            if at is not None:
                out[event.event_id] = at
        return out


class ArrivalLatency:
    """A consumer's side: latencies from arrival to the moment it handled an event."""

    def __init__(self, bus: RedisBus) -> None:
        self.bus = bus
        self.began_ms = wall_ms()
        self.samples: list[tuple[int, float]] = []  # (minute of the run, ms)
        self._arrived: dict[str, int] = {}

    def load(self, mark: Watermark) -> dict[str, int]:
        """The arrivals published with the market time `mark` closes."""
        raw = self.bus.redis.get(arrived_key(self.bus, to_ms(mark.ts)))
        return {} if raw is None else {str(k): int(v) for k, v in json.loads(raw).items()}

    def remember(self, mark: Watermark) -> None:
        """Keep the arrivals of `mark`'s market time for events handled later (fills)."""
        if len(self._arrived) > MAX_NOTED:
            self._arrived.clear()
        self._arrived.update(self.load(mark))

    def handled(self, events: list[Event], outputs: list[Event] | None = None) -> None:
        """`events` (a market time, its watermark last) were handled now (a step committed
        with `outputs`)."""
        now = wall_ms()
        for event in events:
            if isinstance(event, Watermark):
                for at in self.load(event).values():
                    self.add(now - at, now)

    def add(self, latency_ms: float, now_ms: int) -> None:
        self.samples.append(((now_ms - self.began_ms) // 60_000, latency_ms))

    def arrival_of(self, event_id: str | None) -> int | None:
        return None if event_id is None else self._arrived.get(event_id)

    def summary(self) -> dict[str, Any]:
        minutes: dict[int, list[float]] = {}
        for minute, value in self.samples:
            minutes.setdefault(minute, []).append(value)
        return {
            **percentiles([v for _, v in self.samples]),
            "minutes": [{"minute": m, **percentiles(v)} for m, v in sorted(minutes.items())],
        }

    def save(self, name: str) -> None:
        if self.samples:
            self.bus.redis.set(self.bus.key(name), json.dumps(self.summary()))


__all__ = [
    "ARRIVALS_TTL_S",
    "ArrivalLatency",
    "ArrivalNotes",
    "arrived_key",
    "percentiles",
    "wall_ms",
]
