"""The live feed service: an exchange's market data onto `market_data`, in market times
closed by the exchange's clock.

The exchange feed (engine.feeds.exchange: trades, candles, quotes and heartbeats,
REST backfill of gaps, the data-stop watchdog) is cut into market times
(engine.services.market_times): a `Watermark` at least every `FEED_WATERMARK_MS` of
exchange time, and one at each candle close. Perpetuals settle funding when market
time passes a settle time, at the exchange's current rate, as in one process. The
feed's own alerts (data stop, incomplete backfill) go onto `alerts`.

Each market time goes out in one Redis transaction with the count of market times
out (`feed:position`), the last close (`feed:closed`) and what was published last per
symbol and kind (`feed:marks`). A feed killed and started again reads them back: its
trades continue after the last published one (the gap backfilled over REST, with the
same event ids), candles that closed meanwhile are published late, and nothing at or
before a mark goes out twice. A live run has no end of data: the feed runs until
stopped, or until market time reaches the run's planned end (then `feed:done`).
With each market time go the wall-clock arrival times of its events
(engine.services.arrivals), which only measure latency.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import groupby
from typing import Any

from engine.bus.redis import RedisBus
from engine.config import Settings
from engine.events import (
    Alert,
    MarketData,
    Watermark,
    derive_id,
    to_json,
)
from engine.feeds.exchange import LiveFeed
from engine.kernel.live import FundingClock as LiveFundingClock
from engine.markets import SymbolSpec
from engine.services.arrivals import ARRIVALS_TTL_S, ArrivalNotes, arrived_key
from engine.services.live_run import live_specs_of, save_warmup
from engine.services.market_times import MarketTime, MarketTimes, PublishedMarks, from_ms, to_ms
from engine.services.reconnects import answer_reconnect, take_reconnects
from engine.store import RunRecord

log = logging.getLogger("claire.services.feed")

RECONNECT_POLL_S = 0.2  # how often the feed looks for an operator's reconnect (wall time)


class LiveFeedService:
    def __init__(
        self,
        bus: RedisBus,
        feed: LiveFeed,
        specs: dict[str, SymbolSpec],
        *,
        watermark_ms: int,
        funding_default_rate: Decimal,
        until: datetime | None = None,
        on_published: Callable[[Sequence[MarketData]], None] | None = None,
    ) -> None:
        self.bus = bus
        self.feed = feed
        self.until_ms = None if until is None else to_ms(until)
        self.watermark_ms = watermark_ms
        self.funding = LiveFundingClock(feed, specs, funding_default_rate)
        self._on_published = on_published
        self.times = MarketTimes(watermark_ms)
        self.marks = PublishedMarks()
        self.arrivals = ArrivalNotes()  # wall-clock arrival times, for measuring only
        self.published = 0
        self.groups = 0
        self.closed_out: int | None = None  # the close of the last market time published
        self.alerts = 0
        self.last_event_ts: str | None = None
        self.finished = False
        self.reconnects = 0
        self._next_look = 0.0

    def key(self, name: str) -> str:
        return self.bus.key(f"feed:{name}")

    # --- the run -------------------------------------------------------------------------

    async def run(self, stop: Callable[[], bool]) -> bool:
        """Publish until `stop` (False) or the planned end (True)."""
        await self._start()
        while not stop():
            item = await self.feed.next_item(self._wait_s())
            if isinstance(item, Alert):
                self._publish_alert(item)
            elif isinstance(item, list):
                self.arrivals.note(item)
                await self._publish_all(self.times.candles(item))
            elif item is not None:
                self.arrivals.note((item,))
                await self._publish_all(self.times.add(item))
            now_ms = self.feed.exchange_now_ms()
            if now_ms is not None:
                await self._publish_all(self.times.tick(now_ms))
            if self.until_ms is not None and (self.times.closed_ms or 0) >= self.until_ms:
                self.bus.redis.set(self.key("done"), "1")
                return True
            self._take_reconnects()
        return False

    def _take_reconnects(self) -> None:
        """An operator's reconnect (engine.services.reconnects), looked for a few times
        a second."""
        now = time.monotonic()
        if now < self._next_look:
            return
        self._next_look = now + RECONNECT_POLL_S
        for command_id, note in take_reconnects(self.bus):
            sockets = self.feed.reconnect(f"operator: {note}")
            answer_reconnect(self.bus, command_id, sockets)
            self.reconnects += 1

    async def _start(self) -> None:
        """Connect; after a restart, continue where the published data stopped."""
        restarted = self._restore()
        await self.feed.start()
        for symbol in await self.feed.specs():
            resume = self.marks.trades_of(symbol)
            if resume is not None:
                self.feed.continue_trades(symbol, resume.last_ms, resume.last_id, resume.at_last_ms)
        warm = await self.feed.warmup()
        save_warmup(self.bus, warm)
        if restarted:  # candles that closed while no feed ran: late, but not lost
            missed = sorted(
                (c for c in warm if self.marks.fresh(c)), key=lambda c: (c.ts, c.symbol)
            )
            for _, same_end in groupby(missed, key=lambda c: c.ts):
                await self._publish_all(self.times.candles(list(same_end)))

    def _wait_s(self) -> float:
        """How long until the exchange's clock reaches the next close."""
        now_ms, step = self.feed.exchange_now_ms(), self.watermark_ms
        if now_ms is None:
            return step / 1000
        return max(0.005, ((now_ms // step + 1) * step - now_ms) / 1000)

    def _restore(self) -> bool:
        """Read back what an earlier start published; True when there was one."""
        r = self.bus.redis
        raw = r.hgetall(self.key("marks")) or {}
        saved = {_text(k): _text(v) for k, v in raw.items()}
        self.marks = PublishedMarks(saved)
        closed = r.get(self.key("closed"))
        self.closed_out = None if closed is None else int(closed)
        self.times = MarketTimes(self.watermark_ms, self.closed_out)
        self.groups = int(r.get(self.key("position")) or 0)
        return self.groups > 0

    # --- publishing ----------------------------------------------------------------------

    async def _publish_all(self, times: list[MarketTime]) -> None:
        for market_time in times:
            await self._publish(market_time)

    async def _publish(self, market_time: MarketTime) -> None:
        after = None if self.closed_out is None else from_ms(self.closed_out)
        settlements = await self.funding.due(after, market_time.close)
        events = [e for e in (*settlements, *market_time.events) if self.marks.fresh(e)]
        changed = self.marks.note(events)
        arrived = self.arrivals.take(market_time.events)
        n = self.groups + 1
        mark = Watermark(derive_id("wm", "live", n, market_time.close_ms), market_time.close, None)
        if self.bus.max_len is not None:
            self.bus._wait_for_room("market_data", self.bus.key("market_data"))
        stream = self.bus.key("market_data")
        pipe = self.bus.redis.pipeline(transaction=True)
        for event in (*events, mark):
            pipe.xadd(stream, {b"e": to_json(event).encode()})
        if arrived:
            mapping_ms = {e.event_id: arrived[e.event_id] for e in events if e.event_id in arrived}
            pipe.set(arrived_key(self.bus, market_time.close_ms), json.dumps(mapping_ms),
                     ex=ARRIVALS_TTL_S)  # fmt: skip
        pipe.set(self.key("position"), n)
        pipe.set(self.key("closed"), market_time.close_ms)
        if changed:
            mapping: dict[Any, Any] = dict(changed)
            pipe.hset(self.key("marks"), mapping=mapping)
        pipe.execute()
        self.groups = n
        self.closed_out = market_time.close_ms
        self.published += len(events)
        if events:
            self.last_event_ts = events[-1].ts.isoformat()
            if self._on_published is not None:
                self._on_published(events)

    def _publish_alert(self, alert: Alert) -> None:
        self.bus.redis.xadd(self.bus.key("alerts"), {b"e": to_json(alert).encode()})
        self.alerts += 1


def run_live_feed(
    bus: RedisBus,
    run: RunRecord,
    settings: Settings,
    stop: Callable[[], bool],
    on_published: Callable[[Sequence[MarketData]], None] | None = None,
) -> LiveFeedService:
    """The feed service of the live run `run` until `stop` or its planned end."""
    from engine.feeds.exchange.settings import live_feed_settings

    live = run.config["live"]
    feed_settings = live_feed_settings(
        live["exchange"], live["market"], ",".join(live["symbols"]), live.get("timeframe") or "none"
    )

    async def go() -> LiveFeedService:
        feed = LiveFeed(feed_settings)
        service = LiveFeedService(
            bus,
            feed,
            live_specs_of(run),
            watermark_ms=settings.feed_watermark_ms,
            funding_default_rate=settings.funding_default_rate,
            until=run.planned_end,
            on_published=on_published,
        )
        try:
            service.finished = await service.run(stop)
        finally:
            await feed.close()
        return service

    return asyncio.run(go())


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


__all__ = ["LiveFeedService", "LiveFundingClock", "run_live_feed"]
