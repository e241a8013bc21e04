"""A live paper run: an exchange feed drives the pipeline in exchange (event) time.

The feed's candles warm the strategy up first; after that every market event goes
through the pipeline as it arrives (trades, candles, quotes of the best bid and
ask, and heartbeats that say a quiet symbol's feed is alive; candles that end
together arrive one after the other), and the feed's own alerts (data stop,
incomplete backfill) go on the alerts stream beside the engine's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from engine.config import Settings
from engine.errors import ClaireError
from engine.events import Alert, Event, FundingSettlement, derive_id
from engine.feeds.exchange import LiveFeed, LiveMarketEvent
from engine.feeds.perpetual import settle_times
from engine.kernel.pipeline import Pipeline
from engine.markets import SymbolSpec
from engine.signal.base import Strategy

log = logging.getLogger("claire.live")


async def live_specs(feed: LiveFeed) -> dict[str, SymbolSpec]:
    """Ticks, lots, minimums and fees of the feed's symbols, as the exchange states them."""
    return {symbol: market.symbol_spec() for symbol, market in (await feed.specs()).items()}


def build_live_pipeline(
    settings: Settings,
    specs: dict[str, SymbolSpec],
    strategy: Strategy | None = None,
    observers: Iterable[Callable[[Event], None]] = (),
) -> Pipeline:
    return Pipeline(settings, specs, strategy=strategy, observers=observers)


class FundingClock:
    """Perpetuals settle funding every `funding_interval_h` hours of exchange time.

    When market time passes a settle time, the exchange's current rate is settled at
    that time, before the event that passed it (the last known rate, or
    `default_rate`, if the exchange does not answer).
    """

    def __init__(self, feed: LiveFeed, specs: dict[str, SymbolSpec], default_rate: Decimal):
        self.feed = feed
        self.hours = {
            s: spec.contract.funding_interval_h
            for s, spec in specs.items()
            if spec.contract is not None
        }
        self.default_rate = default_rate
        self.rates: dict[str, Decimal] = {}

    async def due(self, after: datetime | None, until: datetime) -> list[FundingSettlement]:
        """Settlements in (after, until]; none before the first market time."""
        if after is None or not self.hours:
            return []
        out = []
        for symbol, hours in sorted(self.hours.items()):
            for at in settle_times(after + _TICK, until + _TICK, hours):
                rate = await self._rate(symbol)
                event_id = derive_id("settle", symbol, at.isoformat())
                out.append(FundingSettlement(event_id, at, None, symbol, rate))
        return sorted(out, key=lambda s: (s.ts, s.symbol))

    async def _rate(self, symbol: str) -> Decimal:
        try:
            self.rates[symbol] = (await self.feed.funding_rate(symbol)).rate
        except ClaireError as exc:
            log.warning("funding rate of %s unavailable (%s); using the last known", symbol, exc)
        return self.rates.get(symbol, self.default_rate)


class _FundingClock:
    """`FundingClock` for a pipeline in this process: settled after its market time."""

    def __init__(self, feed: LiveFeed, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.clock = FundingClock(feed, pipeline.specs, pipeline.settings.funding_default_rate)

    async def due(self, ts: datetime) -> list[FundingSettlement]:
        last = self.pipeline.clock.now()
        processed = last.year >= 2000  # nothing processed yet: no settlement is behind us
        return await self.clock.due(last if processed else None, ts)


_TICK = timedelta(microseconds=1)


async def drive(
    feed: LiveFeed,
    pipeline: Pipeline,
    process: Callable[[LiveMarketEvent | FundingSettlement], None] | None = None,
    *,
    warmup: bool = True,
    max_events: int | None = None,
    until: datetime | None = None,
    stop: asyncio.Event | None = None,
    progress: Callable[[datetime], None] | None = None,
) -> int:
    """Feed the pipeline until `max_events`, event time `until`, `stop`, or cancellation.

    `process` defaults to `pipeline.process`; a persisted run passes its own, which
    also writes to the database. Every market event goes to it, quotes and
    heartbeats included. Returns how many market events were processed.
    """
    handle = process or pipeline.process
    if warmup:
        pipeline.warm_up(await feed.warmup())
    funding = _FundingClock(feed, pipeline)
    count = 0
    async for event in feed.events():
        if isinstance(event, Alert):
            pipeline.publish(event)
            continue
        for settlement in await funding.due(event.ts):
            handle(settlement)
        handle(event)
        count += 1
        if progress is not None:
            progress(event.ts)
        if max_events is not None and count >= max_events:
            break
        if until is not None and event.ts >= until:
            break
        if stop is not None and stop.is_set():
            break
    return count
