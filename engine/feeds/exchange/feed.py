"""The live market-data feed: trades, candles, quotes and heartbeats from an exchange.

    async with LiveFeed(FeedSettings.from_env("BTCUSDT,ETHUSDT", market="spot")) as feed:
        specs = await feed.specs()            # per-symbol rules for risk and execution
        history = await feed.warmup()         # closed candles for the strategy
        async for event in feed.events():     # Trade | Candle | Quote | Heartbeat | Alert
            pipeline.process(event)

One task per (symbol, stream) loops on ccxt.pro's watch_trades / watch_ohlcv and
the book-ticker watch. When a watch fails (socket dropped, keepalive missed,
forced by the watchdog) the task waits with exponential backoff and jitter and
watches again, which makes ccxt open a new socket and resubscribe. The first
batch after that is preceded by a REST backfill from the last emitted trade, and
every trade passes the deduper, so nothing is lost or doubled. A watchdog on the
age of the last message per symbol raises a data-stop alert after
`silence_threshold_s` and forces a reconnect, which also recovers a receive loop
that died without a word.

Time: every message's exchange timestamp feeds an estimate of the exchange's
clock (clock.py). A live candle closes when the next window's first push arrives
or when that clock is `candle_close_grace_ms` past the window's end, whichever
comes first; candles of several symbols that end together leave together, one
after the other, sorted by symbol (candle_groups.py).

Liveness: a message for a symbol that yields no trade, candle or quote (an
update of the open candle, an unchanged book) yields a `Heartbeat` instead, at
most one per symbol per `heartbeat_interval_ms` of exchange time, so the
pipeline can tell a quiet market from a dead feed. Quotes (best bid and ask)
leave only when the bid or the ask changed, at most one per symbol per
`quote_min_interval_ms`, always with the latest book.

The parts: subscriptions.py (the watch loops and the watchdog), trade_stream.py,
candle_stream.py and quote_stream.py (each stream's events), rest_history.py
(backfill over REST) and feed_state.py (what they share, and the output queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

from engine.errors import ClaireError, ExchangeError, UnlistedSymbolsError
from engine.events import Candle
from engine.feeds.exchange.backoff import RestCaller
from engine.feeds.exchange.candle_stream import CandleStream
from engine.feeds.exchange.candles import CandleAssembler
from engine.feeds.exchange.check import server_time
from engine.feeds.exchange.client import build_exchange, force_reconnect
from engine.feeds.exchange.clock import ExchangeClock
from engine.feeds.exchange.dedupe import TradeDeduper
from engine.feeds.exchange.feed_state import (
    FeedContext,
    FeedEvent,
    FeedStats,
    LiveMarketEvent,
    SymbolState,
    TradeState,
)
from engine.feeds.exchange.markets import (
    FundingRate,
    MarketSpec,
    engine_symbol,
    funding_from_mexc,
    spec_from_market,
)
from engine.feeds.exchange.quote_stream import QuoteStream
from engine.feeds.exchange.rest_history import RestHistory
from engine.feeds.exchange.settings import FeedSettings
from engine.feeds.exchange.subscriptions import Subscriptions
from engine.feeds.exchange.trade_stream import TradeStream

__all__ = ["FeedEvent", "FeedStats", "LiveFeed", "LiveMarketEvent"]

log = logging.getLogger(__name__)

CATCH_UP_MS = 86_400_000  # a continued feed backfills up to a day at once, the rest live


class LiveFeed:
    """Live market data for `settings.symbols`; see the module docstring."""

    def __init__(
        self,
        settings: FeedSettings,
        *,
        queue_size: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._ctx = FeedContext(
            settings=settings, queue=asyncio.Queue(queue_size), clock=ExchangeClock(monotonic)
        )
        history = RestHistory(self._ctx)
        self._trades = TradeStream(self._ctx, history)
        self._candles = CandleStream(self._ctx, history)
        self._quotes = QuoteStream(self._ctx)
        self._streams = Subscriptions(self._ctx, self._trades, self._candles, self._quotes)
        self._tasks: list[asyncio.Task[None]] = []
        self._continued: list[str] = []  # symbols whose trades continue an earlier feed's
        self._started = False
        self._closed = False

    # --- public API ---------------------------------------------------------------

    @property
    def stats(self) -> FeedStats:
        """A snapshot of the counters (malformed_frames, reconnects, backfilled, ...)."""
        ctx = self._ctx
        frames = ctx.ex.claire_stats.malformed_frames if ctx.ex is not None else 0
        ctx.stats.malformed_frames = frames + ctx.invalid
        if ctx.ex is not None:
            ctx.stats.reconnects = ctx.ex.claire_stats.reconnects
        if ctx.rest is not None:
            ctx.stats.rate_limited = ctx.rest.rate_limited
        ctx.stats.late_candle_updates = self._candles.late_updates()
        return FeedStats(**vars(ctx.stats))

    def exchange_now_ms(self) -> int | None:
        """The exchange's time as the feed estimates it; None before its first message."""
        return self._ctx.clock.now_ms()

    async def start(self) -> None:
        """Load markets and resolve the symbols (no subscription yet); idempotent."""
        if self._ctx.ex is not None:
            return
        ex = self._ctx.ex = build_exchange(self.settings)
        ex.claire_on_kline = self._candles.on_kline
        ex.claire_on_malformed = self._streams.on_malformed
        ex.claire_on_book_ticker = self._quotes.on_book_ticker
        ex.claire_on_message = self._streams.on_message
        self._ctx.rest = RestCaller(ex, self.settings)
        await self._load_symbols()

    async def _subscribe(self) -> None:
        """Start the stream tasks; the first call to `events()` does this."""
        await self.start()
        if self._started:
            return
        self._started = True
        self._spawn(self._open_streams(), "opening")

    async def _open_streams(self) -> None:
        """Backfill what trades continue an earlier feed's, then start the stream loops:
        one after the other, so no live trade is emitted before an older one."""
        ctx = self._ctx
        try:
            if self._continued:  # its clock from the REST server time: a quiet market has none
                ms = await ctx.rest_caller()(
                    "server time", lambda: server_time(ctx.ex, self.settings)
                )
                ctx.clock.observe(ms)
            for symbol in self._continued:
                await self._trades.catch_up(symbol, CATCH_UP_MS)
        except ClaireError as exc:  # the first live batch backfills it instead
            log.warning("could not backfill at the start (%s)", exc)
        for coro, name in self._streams.loops():
            self._spawn(coro, name)

    async def events(self) -> AsyncIterator[FeedEvent]:
        """Market events and alerts as they arrive; raises ExchangeError on a refusal.

        Subscribes on the first call. Call `warmup()` before, so the live candles
        continue right after the warm-up ones.
        """
        await self._subscribe()
        while True:
            item = await self._ctx.queue.get()
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, list):  # candles that end together, in one piece
                for candle in item:
                    yield candle
            else:
                yield item

    async def next_item(self, timeout_s: float) -> FeedEvent | list[Candle] | None:
        """The next event, alert or group of candles that end together; None when nothing
        came within `timeout_s`. Subscribes on the first call, as `events()` does."""
        await self._subscribe()
        try:
            # Not wait_for: on 3.11 it can swallow a cancellation that meets an item.
            async with asyncio.timeout(timeout_s):
                item = await self._ctx.queue.get()
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def continue_trades(
        self,
        symbol: str,
        last_ms: int,
        last_id: int | None,
        at_last_ms: Counter[tuple[str, str, str]],
    ) -> None:
        """`symbol`'s trades continue after what an earlier feed emitted (its latest time,
        highest id and copies per content at that time): the first batch is preceded by
        a REST backfill from there up to now, before the streams open, and what was
        emitted already is not emitted again."""
        state = self._ctx.state(symbol)
        state.trades.dedupe.resume(last_ms, last_id, at_last_ms)
        state.trades.needs_backfill = True
        self._continued.append(symbol)

    async def specs(self) -> dict[str, MarketSpec]:
        await self.start()
        return {symbol: state.spec for symbol, state in self._ctx.symbols.items()}

    async def warmup(self, limit: int | None = None) -> list[Candle]:
        """The latest closed candles per symbol over REST, oldest first per symbol.

        The live candle stream then continues after the last of them (a hole
        between the two is backfilled).
        """
        await self.start()
        timeframe, interval_s = self.settings.candle_timeframe, self.settings.candle_interval_s
        if timeframe is None or interval_s is None:
            return []
        return await self._candles.warmup(limit or self.settings.warmup_candles)

    async def funding_rate(self, symbol: str) -> FundingRate:
        """The current funding rate of a perpetual (futures market only)."""
        await self.start()
        state = self._ctx.state(symbol)
        if state.spec.market != "futures":
            raise ExchangeError(f"{symbol} is a spot symbol; funding applies to perpetuals only")
        rest, ex = self._ctx.rest_caller(), self._ctx.ex
        if self.settings.is_mexc:
            sym_id = state.spec.exchange_id
            body = await rest(
                f"funding rate of {symbol}",
                lambda: ex.contractPublicGetFundingRateSymbol({"symbol": sym_id}),
            )
            return funding_from_mexc(symbol, body.get("data") or {})
        raw = await rest(
            f"funding rate of {symbol}", lambda: ex.fetch_funding_rate(state.spec.ccxt_symbol)
        )
        return funding_from_mexc(
            symbol,
            {"fundingRate": raw.get("fundingRate"), "nextSettleTime": raw.get("fundingTimestamp")},
        )

    def reconnect(self, why: str) -> int:
        """Drop every socket now: each watch reconnects with backoff, resubscribes and
        backfills the gap over REST, as after a dropped connection. How many sockets."""
        ex = self._ctx.ex
        if ex is None or self._closed:
            return 0
        log.warning("reconnecting the feed: %s", why)
        return sum(force_reconnect(ex, url, why) for url in list(ex.clients or {}))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._ctx.ex is not None:
            with contextlib.suppress(Exception):
                await self._ctx.ex.close()

    async def __aenter__(self) -> LiveFeed:
        try:
            await self.start()
        except BaseException:
            await self.close()  # release ccxt's HTTP session even when start fails
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- setup ----------------------------------------------------------------------

    async def _load_symbols(self) -> None:
        ctx = self._ctx
        markets = await ctx.rest_caller()("loading markets", lambda: ctx.ex.load_markets())
        wanted = self._listed_markets(markets)
        missing = [s for s in self.settings.symbols if s not in wanted]
        if missing:
            raise UnlistedSymbolsError(
                f"{', '.join(missing)} not listed on {self.settings.exchange} "
                f"{self.settings.market}; check the symbol names",
                missing,
            )
        for symbol in self.settings.symbols:
            market = wanted[symbol]
            interval = self.settings.candle_interval_s
            ctx.symbols[symbol] = SymbolState(
                spec=spec_from_market(market),
                market=market,
                trades=TradeState(TradeDeduper(self.settings.dedupe_window)),
                candles=None if interval is None else CandleAssembler(interval * 1000),
            )
            ctx.by_exchange_id[market["id"]] = symbol
        self._candles.group_symbols()

    def _listed_markets(self, markets: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The exchange's markets of this feed's kind (spot, or linear perpetuals)."""
        futures = self.settings.market == "futures"
        wanted: dict[str, dict[str, Any]] = {}
        for market in markets.values():
            is_perp = bool(market.get("swap")) and market.get("settle") == market.get("quote")
            if (is_perp if futures else bool(market.get("spot"))) and market.get("base"):
                wanted.setdefault(engine_symbol(market), market)
        return wanted

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"live-feed {name}"))
