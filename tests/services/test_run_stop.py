"""A stop told to services through the run's Redis (a stack's services have no
supervisor to signal them): who it is for, and how often a service looks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.bus.redis import RedisBus
from engine.runtime.redis import EmbeddedRedis
from engine.services.run_stop import (
    StopFlag,
    feed_stopped,
    note_feed_stopped,
    request_stop,
    stop_requested,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[RedisBus]:
    server = EmbeddedRedis(tmp_path / "redis")
    opened = RedisBus(server.start(), prefix="claire:run-1")
    try:
        yield opened
    finally:
        opened.close()
        server.stop()


def test_a_feed_stop_is_for_the_feed_alone_and_all_is_never_narrowed(bus: RedisBus) -> None:
    assert not stop_requested(bus, "feed") and not feed_stopped(bus)
    request_stop(bus, "feed")
    assert stop_requested(bus, "feed")
    assert not any(stop_requested(bus, s) for s in ("signal", "risk", "writer"))
    note_feed_stopped(bus)
    assert feed_stopped(bus)
    request_stop(bus, "all")
    assert all(stop_requested(bus, s) for s in ("feed", "signal", "risk", "writer"))
    request_stop(bus, "feed")  # a late planned stop does not undo an emergency one
    assert stop_requested(bus, "writer")
    other = RedisBus("", prefix="claire:run-2", client=bus.redis)  # another run goes on
    assert not stop_requested(other, "feed")
    with pytest.raises(ValueError, match="'feed' or 'all'"):
        request_stop(bus, "risk")  # type: ignore[arg-type]


def test_a_service_looks_at_most_every_half_second_and_stays_told(bus: RedisBus) -> None:
    now = [100.0]
    flag = StopFlag(bus, "risk", every_s=0.5, monotonic=lambda: now[0])
    assert flag() is False  # looked: nothing
    request_stop(bus, "all")
    now[0] += 0.4
    assert flag() is False  # not looked again yet
    now[0] += 0.1
    assert flag() is True and flag.told
    bus.redis.delete(bus.key("control:stop"))
    now[0] += 10
    assert flag() is True  # once told, a service stays stopped
