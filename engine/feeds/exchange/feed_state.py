"""What the parts of a live feed share: per-symbol state, counters and the output queue.

`FeedContext` is created by `LiveFeed` and handed to each of its parts (the stream
loops, the trade, candle and quote handlers, the REST history); every event and
alert leaves through its queue, counted in its `FeedStats`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engine.errors import ExchangeError
from engine.events import Alert, Candle, Heartbeat, Quote, Severity, Trade, derive_id
from engine.feeds.exchange.backoff import RestCaller
from engine.feeds.exchange.candles import CandleAssembler
from engine.feeds.exchange.client import RawBookTicker
from engine.feeds.exchange.clock import ExchangeClock
from engine.feeds.exchange.dedupe import Delivery, TradeDeduper
from engine.feeds.exchange.markets import MarketSpec
from engine.feeds.exchange.numbers import epoch_ms
from engine.feeds.exchange.settings import FeedSettings

log = logging.getLogger(__name__)

LiveMarketEvent = Trade | Candle | Quote | Heartbeat
FeedEvent = LiveMarketEvent | Alert
QueueItem = FeedEvent | list[Candle] | BaseException


@dataclass
class FeedStats:
    """Counters for monitoring; `reconnects` counts sockets re-opened after the first."""

    malformed_frames: int = 0
    reconnects: int = 0
    backfilled: int = 0
    duplicates_dropped: int = 0
    gaps_detected: int = 0
    rate_limited: int = 0
    data_stop_alerts: int = 0
    emitted: int = 0  # market events: trades, candles, quotes and heartbeats
    quotes: int = 0
    heartbeats: int = 0
    candles_closed_by_clock: int = 0  # closed at end + grace, no later push needed
    late_candle_updates: int = 0  # pushes for a window already closed by the clock


@dataclass
class TradeState:
    dedupe: TradeDeduper
    session: Delivery | None = None
    needs_backfill: bool = False


@dataclass
class SymbolState:
    spec: MarketSpec
    market: dict[str, Any]
    trades: TradeState
    candles: CandleAssembler | None
    last_data: float = field(default_factory=time.monotonic)
    silent_since: float | None = None  # set while a data-stop alert is open
    exchange_ms: int | None = None  # the exchange's stamp on the latest message
    last_event_ms: int | None = None  # the latest time of a market event emitted
    emitted: int = 0  # market events emitted
    book: RawBookTicker | None = None  # the latest book ticker not yet looked at
    last_quote: tuple[Decimal, Decimal] | None = None  # bid and ask last emitted


@dataclass
class FeedContext:
    """The exchange connection, the symbols' state and the way out for events."""

    settings: FeedSettings
    queue: asyncio.Queue[QueueItem]
    clock: ExchangeClock
    ex: Any = None  # the ccxt.pro exchange, once the feed has started
    rest: RestCaller | None = None
    symbols: dict[str, SymbolState] = field(default_factory=dict)
    by_exchange_id: dict[str, str] = field(default_factory=dict)
    stats: FeedStats = field(default_factory=FeedStats)
    invalid: int = 0  # items the feed itself refused (bad numbers, crossed books)

    def rest_caller(self) -> RestCaller:
        assert self.rest is not None
        return self.rest

    def state(self, symbol: str) -> SymbolState:
        try:
            return self.symbols[symbol]
        except KeyError:
            raise ExchangeError(f"{symbol} is not one of this feed's symbols") from None

    def make_alert(
        self, severity: Severity, rule: str, message: str, detail: dict[str, str]
    ) -> Alert:
        now = datetime.now(UTC)
        return Alert(
            event_id=derive_id("alert", self.settings.exchange, rule, message, now.isoformat()),
            ts=now,
            cause_id=None,
            severity=severity,
            rule=rule,
            message=message,
            detail={"exchange": self.settings.exchange, "market": self.settings.market, **detail},
        )

    async def alert(
        self, severity: Severity, rule: str, message: str, detail: dict[str, str]
    ) -> None:
        log.warning("feed alert %s: %s", rule, message)
        await self.put(self.make_alert(severity, rule, message, detail))

    async def put(self, event: FeedEvent) -> None:
        if not isinstance(event, Alert):
            self.count(event)
        await self.queue.put(event)

    def count(self, event: LiveMarketEvent) -> None:
        self.stats.emitted += 1
        if isinstance(event, Quote):
            self.stats.quotes += 1
        elif isinstance(event, Heartbeat):
            self.stats.heartbeats += 1
        state = self.symbols.get(event.symbol)
        if state is not None:
            state.emitted += 1
            at = epoch_ms(event.ts)
            if state.last_event_ms is None or at > state.last_event_ms:
                state.last_event_ms = at
