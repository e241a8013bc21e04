"""The stream loops of a live feed: watch, reconnect with backoff, and watch for silence.

One task per (symbol, stream) loops on ccxt.pro's watch_trades / watch_ohlcv and
the book-ticker watch. When a watch fails the task waits with exponential backoff
and jitter and watches again, which makes ccxt open a new socket and resubscribe.
A watchdog on the age of the last message per symbol raises a data-stop alert
after `silence_threshold_s` and forces a reconnect. A message that yields no
market event yields a `Heartbeat`, at most one per symbol per
`heartbeat_interval_ms` of exchange time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from engine.errors import ExchangeError
from engine.events import Severity
from engine.feeds.exchange.backoff import backoff_delay_s
from engine.feeds.exchange.candle_stream import CandleStream
from engine.feeds.exchange.client import SubscriptionRefusedError, force_reconnect
from engine.feeds.exchange.feed_state import FeedContext, SymbolState
from engine.feeds.exchange.parse import heartbeat_event
from engine.feeds.exchange.quote_stream import QuoteStream
from engine.feeds.exchange.trade_stream import TradeStream

log = logging.getLogger(__name__)

Watch = Callable[[], Awaitable[Any]]
Handle = Callable[[Any], Awaitable[None]]


class Subscriptions:
    """Runs the watch loops and the watchdog, and hands each batch to its handler."""

    def __init__(
        self, ctx: FeedContext, trades: TradeStream, candles: CandleStream, quotes: QuoteStream
    ) -> None:
        self._ctx = ctx
        self._trades = trades
        self._candles = candles
        self._quotes = quotes

    def loops(self) -> list[tuple[Coroutine[Any, Any, None], str]]:
        """The tasks to run, each with its name, silence measured from now."""
        ctx = self._ctx
        now = time.monotonic()
        for state in ctx.symbols.values():
            state.last_data = now  # silence is measured from the subscription
        out: list[tuple[Coroutine[Any, Any, None], str]] = []
        for symbol in ctx.symbols:
            if ctx.settings.trades:
                out.append((self._watch_trades(symbol), f"trades {symbol}"))
            if ctx.settings.book_ticker:
                out.append((self._watch_book(symbol), f"book ticker {symbol}"))
            if ctx.settings.candle_timeframe is not None:
                out.append((self._watch_candles(symbol), f"candles {symbol}"))
        if ctx.settings.candle_timeframe is not None:
            out.append((self._candles.run_closer(), "candle closer"))
        out.append((self._watchdog(), "watchdog"))
        return out

    # --- callbacks from the exchange client --------------------------------------------

    def on_message(self, symbol_id: str, exchange_ms: int | None) -> None:
        """Every data message, before ccxt handles it: the exchange's clock and liveness."""
        if exchange_ms is None:
            return
        ctx = self._ctx
        ctx.clock.observe(exchange_ms)
        symbol = ctx.by_exchange_id.get(symbol_id)
        if symbol is not None:
            ctx.symbols[symbol].exchange_ms = exchange_ms
        self._candles.wake_if_due()

    def on_malformed(self, url: str) -> None:
        # The frame we skipped may have carried trades: check the next batch against REST.
        self._trades.frame_lost()

    # --- watch loops --------------------------------------------------------------------

    async def _watch_trades(self, symbol: str) -> None:
        state = self._ctx.symbols[symbol]
        await self._watch_loop(
            symbol,
            "trades",
            lambda: self._ctx.ex.watch_trades(state.spec.ccxt_symbol),
            lambda batch: self._trades.on_trades(symbol, batch),
        )

    async def _watch_candles(self, symbol: str) -> None:
        state = self._ctx.symbols[symbol]
        timeframe = self._ctx.settings.candle_timeframe
        await self._watch_loop(
            symbol,
            "candles",
            lambda: self._ctx.ex.watch_ohlcv(state.spec.ccxt_symbol, timeframe),
            lambda _batch: self._candles.on_candles(symbol),
        )

    async def _watch_book(self, symbol: str) -> None:
        ctx = self._ctx
        ccxt_symbol = ctx.symbols[symbol].spec.ccxt_symbol

        async def watch() -> Any:
            if ctx.settings.is_mexc:
                return await ctx.ex.claire_watch_book_ticker(ccxt_symbol)
            return await ctx.ex.watch_ticker(ccxt_symbol)  # other exchanges: floats

        await self._watch_loop(
            symbol, "book ticker", watch, lambda batch: self._quotes.on_book(symbol, batch)
        )

    async def _watch_loop(self, symbol: str, stream: str, watch: Watch, handle: Handle) -> None:
        attempt = 0
        while True:
            try:
                batch = await watch()
            except asyncio.CancelledError:
                raise
            except SubscriptionRefusedError as exc:
                await self._ctx.queue.put(exc)
                return
            except Exception as exc:  # ccxt raises many types; all of them mean "reconnect"
                self._disconnected(symbol)
                delay = backoff_delay_s(attempt, self._ctx.settings)
                attempt += 1
                log.info(
                    "%s %s stream interrupted (%s); resubscribing in %.2f s",
                    symbol, stream, type(exc).__name__, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                continue
            attempt = 0
            await self._handle(symbol, handle, batch)

    async def _handle(self, symbol: str, handle: Handle, batch: Any) -> None:
        self._heard(symbol)
        state = self._ctx.symbols[symbol]
        emitted_before = state.emitted
        try:
            await handle(batch)
        except ExchangeError as exc:  # a backfill that could not be fetched
            await self._ctx.alert(
                Severity.WARNING, "backfill_failed", f"{symbol}: {exc}", {"symbol": symbol}
            )
        if state.emitted == emitted_before:
            await self._heartbeat(symbol, state)

    def _disconnected(self, symbol: str) -> None:
        self._trades.disconnected(symbol)
        self._candles.disconnected(symbol)

    async def _heartbeat(self, symbol: str, state: SymbolState) -> None:
        """The exchange spoke about `symbol` and nothing came of it: say it is alive."""
        at = state.exchange_ms
        if at is None:
            return
        settings = self._ctx.settings
        last = state.last_event_ms
        if last is not None and at < last + settings.heartbeat_interval_ms:
            return
        await self._ctx.put(heartbeat_event(settings.exchange, settings.market, symbol, at))

    # --- silence ---------------------------------------------------------------------

    def _heard(self, symbol: str) -> None:
        ctx = self._ctx
        state = ctx.symbols[symbol]
        state.last_data = time.monotonic()
        if state.silent_since is not None:
            silent_for = state.last_data - state.silent_since + ctx.settings.silence_threshold_s
            state.silent_since = None
            ctx.queue.put_nowait(
                ctx.make_alert(
                    Severity.INFO,
                    "data_resumed",
                    f"market data for {symbol} resumed after {silent_for:.1f} s of silence",
                    {"symbol": symbol, "silent_s": f"{silent_for:.3f}"},
                )
            )

    async def _watchdog(self) -> None:
        threshold = self._ctx.settings.silence_threshold_s
        last_forced = 0.0
        while True:
            await asyncio.sleep(self._ctx.settings.watchdog_interval_s)
            await self._trades.recheck_due()
            now = time.monotonic()
            stale = False
            for symbol, state in self._ctx.symbols.items():
                age = now - state.last_data
                if age <= threshold:
                    continue
                stale = True
                if state.silent_since is None:
                    await self._data_stopped(symbol, state, age)
            # A stale socket may be a receive loop that died silently: replace it, but
            # no more often than the threshold so a quiet exchange is not hammered.
            if stale and now - last_forced > threshold:
                last_forced = now
                ex = self._ctx.ex
                for url in list((ex.clients or {}).keys()):
                    force_reconnect(ex, url, f"no data for {threshold:g} s")

    async def _data_stopped(self, symbol: str, state: SymbolState, age: float) -> None:
        threshold = self._ctx.settings.silence_threshold_s
        state.silent_since = state.last_data
        self._ctx.stats.data_stop_alerts += 1
        await self._ctx.alert(
            Severity.CRITICAL,
            "data_stop",
            f"no market data for {symbol} for {age:.1f} s "
            f"(threshold {threshold:g} s); reconnecting",
            {"symbol": symbol, "silent_s": f"{age:.3f}", "threshold_s": f"{threshold:g}"},
        )
