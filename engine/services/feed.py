"""The feed service: a replay's market events onto `market_data`, one market time at a time.

Each group of events that share a time goes out followed by its `Watermark`, in one
Redis transaction together with how many groups are out (`feed:position`), so a
restarted feed continues exactly after the last group it published. `max_len` on
the bus makes the feed wait while the pipeline is behind, never drop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

from engine.bus.redis import RedisBus
from engine.events import Event, MarketData, MarketEvent, Watermark, derive_id, to_json
from engine.kernel.pipeline import by_time

log = logging.getLogger("claire.services.feed")


class FeedService:
    def __init__(
        self,
        bus: RedisBus,
        events: Callable[[], Iterator[MarketEvent]],
        on_published: Callable[[Sequence[MarketData]], None] | None = None,
    ) -> None:
        self.bus = bus
        self._events = events
        self._on_published = on_published  # hears each group once it is out
        self.published = 0
        self.groups = 0
        self.last_event_ts: str | None = None

    @property
    def position_key(self) -> str:
        return self.bus.key("feed:position")

    @property
    def done_key(self) -> str:
        return self.bus.key("feed:done")

    def run(self, stop: Callable[[], bool]) -> bool:
        """Publish every group not yet out; True when the data is exhausted."""
        done_groups = int(self.bus.redis.get(self.position_key) or 0)
        self.groups = done_groups
        for n, group in enumerate(by_time(self._events()), start=1):
            if n <= done_groups:
                continue
            if stop():
                return False
            self._publish(group, n)
        self.bus.redis.set(self.done_key, "1")
        return True

    def _publish(self, group: Sequence[MarketData], n: int) -> None:
        if self.bus.max_len is not None:
            self.bus._wait_for_room("market_data", self.bus.key("market_data"))
        last = group[-1]
        mark: Event = Watermark(derive_id("wm", last.event_id), last.ts, None)
        key = self.bus.key("market_data")
        pipe = self.bus.redis.pipeline(transaction=True)
        for event in (*group, mark):
            pipe.xadd(key, {b"e": to_json(event).encode()})
        pipe.set(self.position_key, n)
        pipe.execute()
        self.published += len(group)
        self.groups = n
        self.last_event_ts = last.ts.isoformat()
        if self._on_published is not None:
            self._on_published(group)
