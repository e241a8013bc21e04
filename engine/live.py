"""A live paper run: an exchange feed drives the pipeline in exchange (event) time.

The feed's candles warm the strategy up first; after that every market event goes
through the pipeline as it arrives (trades, candles, quotes of the best bid and
ask, and heartbeats that say a quiet symbol's feed is alive; candles that end
together arrive one after the other), and the feed's own alerts (data stop,
incomplete backfill) go on the alerts stream beside the engine's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime

from engine.config import Settings
from engine.events import Alert, Event
from engine.feeds.exchange import LiveFeed, LiveMarketEvent
from engine.kernel import Pipeline
from engine.markets import SymbolSpec
from engine.signal.base import Strategy


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


async def drive(
    feed: LiveFeed,
    pipeline: Pipeline,
    process: Callable[[LiveMarketEvent], None] | None = None,
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
    count = 0
    async for event in feed.events():
        if isinstance(event, Alert):
            pipeline.publish(event)
            continue
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
