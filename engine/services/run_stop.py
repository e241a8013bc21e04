"""An operator's stop told to services that no supervisor signals (a container stack).

Under `claire papertest start --services` the supervisor stops its services with
SIGTERM. A stack's services are containers that restart when they exit, and the
stack's steward (engine.stack.steward) has no hand on them: it tells them through
the run's Redis instead, in one key, `control:stop`:

- `feed`: a planned stop's first step. The feed publishes no market time after the
  one it is on, then says so (`control:feed-stopped`); the others go on handling what
  it published, so the steward can wait for them to drain.
- `all`: every service stops between two steps (an emergency stop, or a planned stop
  once drained).

A service that is told to stop does not exit (its container would be started again):
it stays up, idle, answering `/health` with its state `stopped`, until the container
is stopped. One started again after the stop reads the key first and idles at once.
Each service looks at the key at most every `LOOK_EVERY_S` of wall time, so a stop
costs one Redis read per service and half a second, not one per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, Literal

import redis

from engine.bus.redis import RedisBus

STOP_KEY: Final = "control:stop"
FEED_STOPPED_KEY: Final = "control:feed-stopped"
LOOK_EVERY_S: Final = 0.5

Scope = Literal["feed", "all"]


def request_stop(bus: RedisBus, scope: Scope) -> None:
    """Tell the run's services to stop: the feed alone, or every one. `all` is never
    narrowed back to `feed`."""
    if scope not in ("feed", "all"):
        raise ValueError(f"a stop is for 'feed' or 'all', not {scope!r}")
    if scope == "feed":
        bus.redis.set(bus.key(STOP_KEY), "feed", nx=True)
    else:
        bus.redis.set(bus.key(STOP_KEY), "all")


def stop_requested(bus: RedisBus, service: str) -> bool:
    """Whether `service` has been told to stop."""
    raw = bus.redis.get(bus.key(STOP_KEY))
    if raw is None:
        return False
    scope = raw.decode() if isinstance(raw, bytes) else str(raw)
    return scope == "all" or (scope == "feed" and service == "feed")


def note_feed_stopped(bus: RedisBus) -> None:
    """The feed has published its last market time for the stop."""
    bus.redis.set(bus.key(FEED_STOPPED_KEY), "1")


def feed_stopped(bus: RedisBus) -> bool:
    return bus.redis.get(bus.key(FEED_STOPPED_KEY)) is not None


class StopFlag:
    """`stop_requested` for one service, read at most every `every_s` of wall time;
    once told, it stays told."""

    def __init__(
        self,
        bus: RedisBus,
        service: str,
        *,
        every_s: float = LOOK_EVERY_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._service = service
        self._every_s = every_s
        self._monotonic = monotonic
        self._next_look = 0.0
        self.told = False

    def __call__(self) -> bool:
        if self.told:
            return True
        now = self._monotonic()
        if now < self._next_look:
            return False
        self._next_look = now + self._every_s
        try:
            self.told = stop_requested(self._bus, self._service)
        except (redis.RedisError, OSError):  # Redis down: the service's own loop sees it
            return False
        return self.told


__all__ = [
    "FEED_STOPPED_KEY",
    "LOOK_EVERY_S",
    "STOP_KEY",
    "StopFlag",
    "feed_stopped",
    "note_feed_stopped",
    "request_stop",
    "stop_requested",
]
