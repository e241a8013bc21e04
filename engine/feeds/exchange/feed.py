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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from engine.errors import DataSourceError, ExchangeError, InvalidEventError
from engine.events import Alert, Candle, Heartbeat, Quote, Severity, Trade, derive_id
from engine.feeds.exchange.backoff import RestCaller, backoff_delay_s
from engine.feeds.exchange.candle_groups import CandleGroups
from engine.feeds.exchange.candles import CandleAssembler, CandleStep
from engine.feeds.exchange.client import (
    RawBookTicker,
    RawKline,
    SubscriptionRefusedError,
    build_exchange,
    force_reconnect,
)
from engine.feeds.exchange.clock import ExchangeClock
from engine.feeds.exchange.dedupe import Delivery, TradeDeduper, TradeRecord
from engine.feeds.exchange.markets import (
    FundingRate,
    MarketSpec,
    engine_symbol,
    funding_from_mexc,
    spec_from_market,
)
from engine.feeds.exchange.numbers import epoch_ms
from engine.feeds.exchange.parse import (
    book_from_ccxt_ticker,
    candle_event,
    futures_deal,
    futures_kline_rows,
    heartbeat_event,
    quote_event,
    spot_agg_trade,
    spot_kline_row,
    trade_event,
    trade_from_ccxt,
)
from engine.feeds.exchange.settings import FeedSettings

log = logging.getLogger(__name__)

LiveMarketEvent = Trade | Candle | Quote | Heartbeat
FeedEvent = LiveMarketEvent | Alert
SPOT_REST_PAGE = 1000
SPOT_KLINE_PAGE = 500  # ccxt: MEXC answers at most 500 in practice
FUTURES_DEALS_MAX = 100
CLOSER_IDLE_S = 1.0  # the candle closer looks again at least this often
CLOSER_MIN_WAIT_S = 0.005


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
class _TradeState:
    dedupe: TradeDeduper
    session: Delivery | None = None
    needs_backfill: bool = False


@dataclass
class _SymbolState:
    spec: MarketSpec
    market: dict[str, Any]
    trades: _TradeState
    candles: CandleAssembler | None
    last_data: float = field(default_factory=time.monotonic)
    silent_since: float | None = None  # set while a data-stop alert is open
    exchange_ms: int | None = None  # the exchange's stamp on the latest message
    last_event_ms: int | None = None  # the latest time of a market event emitted
    emitted: int = 0  # market events emitted
    book: RawBookTicker | None = None  # the latest book ticker not yet looked at
    last_quote: tuple[Decimal, Decimal] | None = None  # bid and ask last emitted


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
        self._ex: Any = None
        self._rest: RestCaller | None = None
        self._symbols: dict[str, _SymbolState] = {}
        self._by_exchange_id: dict[str, str] = {}
        self._queue: asyncio.Queue[FeedEvent | list[Candle] | BaseException] = asyncio.Queue(
            queue_size
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._klines: dict[str, list[RawKline]] = {}
        self._stats = FeedStats()
        self._invalid = 0  # items the feed itself refused (bad numbers, crossed books)
        self._clock = ExchangeClock(monotonic)
        self._groups: CandleGroups | None = None
        self._candle_lock = asyncio.Lock()
        self._candles_changed = asyncio.Event()
        self._next_candle_due_ms: int | None = None
        self._backfilled_candles: set[tuple[str, int]] = set()
        self._started = False
        self._closed = False

    # --- public API ---------------------------------------------------------------

    @property
    def stats(self) -> FeedStats:
        """A snapshot of the counters (malformed_frames, reconnects, backfilled, ...)."""
        frames = self._ex.claire_stats.malformed_frames if self._ex is not None else 0
        self._stats.malformed_frames = frames + self._invalid
        if self._ex is not None:
            self._stats.reconnects = self._ex.claire_stats.reconnects
        if self._rest is not None:
            self._stats.rate_limited = self._rest.rate_limited
        self._stats.late_candle_updates = sum(
            s.candles.late_updates for s in self._symbols.values() if s.candles is not None
        )
        return FeedStats(**vars(self._stats))

    def exchange_now_ms(self) -> int | None:
        """The exchange's time as the feed estimates it; None before its first message."""
        return self._clock.now_ms()

    async def start(self) -> None:
        """Load markets and resolve the symbols (no subscription yet); idempotent."""
        if self._ex is not None:
            return
        self._ex = build_exchange(self.settings)
        self._ex.claire_on_kline = self._on_kline
        self._ex.claire_on_malformed = self._on_malformed
        self._ex.claire_on_book_ticker = self._on_book_ticker
        self._ex.claire_on_message = self._on_message
        self._rest = RestCaller(self._ex, self.settings)
        await self._load_symbols()

    async def _subscribe(self) -> None:
        """Start the stream tasks; the first call to `events()` does this."""
        await self.start()
        if self._started:
            return
        self._started = True
        now = time.monotonic()
        for state in self._symbols.values():
            state.last_data = now  # silence is measured from the subscription
        for symbol in self._symbols:
            if self.settings.trades:
                self._spawn(self._watch_trades(symbol), f"trades {symbol}")
            if self.settings.book_ticker:
                self._spawn(self._watch_book(symbol), f"book ticker {symbol}")
            if self.settings.candle_timeframe is not None:
                self._spawn(self._watch_candles(symbol), f"candles {symbol}")
        if self.settings.candle_timeframe is not None:
            self._spawn(self._candle_closer(), "candle closer")
        self._spawn(self._watchdog(), "watchdog")

    async def events(self) -> AsyncIterator[FeedEvent]:
        """Market events and alerts as they arrive; raises ExchangeError on a refusal.

        Subscribes on the first call. Call `warmup()` before, so the live candles
        continue right after the warm-up ones.
        """
        await self._subscribe()
        while True:
            item = await self._queue.get()
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, list):  # candles that end together, in one piece
                for candle in item:
                    yield candle
            else:
                yield item

    async def specs(self) -> dict[str, MarketSpec]:
        await self.start()
        return {symbol: state.spec for symbol, state in self._symbols.items()}

    async def warmup(self, limit: int | None = None) -> list[Candle]:
        """The latest closed candles per symbol over REST, oldest first per symbol.

        The live candle stream then continues after the last of them (a hole
        between the two is backfilled).
        """
        await self.start()
        timeframe, interval_s = self.settings.candle_timeframe, self.settings.candle_interval_s
        if timeframe is None or interval_s is None:
            return []
        count = limit or self.settings.warmup_candles
        now_ms = int(time.time() * 1000)
        out: list[Candle] = []
        for symbol, state in self._symbols.items():
            klines = await self._fetch_klines(state, None, None, count + 1)
            closed = [k for k in klines if k.open_ms + interval_s * 1000 <= now_ms][-count:]
            for kline in closed:
                candle = self._candle(symbol, state, kline)
                if candle is not None and state.candles is not None:
                    state.candles.emitted(kline.open_ms)
                    out.append(candle)
        return out

    async def funding_rate(self, symbol: str) -> FundingRate:
        """The current funding rate of a perpetual (futures market only)."""
        await self.start()
        state = self._state(symbol)
        if state.spec.market != "futures":
            raise ExchangeError(f"{symbol} is a spot symbol; funding applies to perpetuals only")
        assert self._rest is not None
        if self.settings.is_mexc:
            sym_id = state.spec.exchange_id
            body = await self._rest(
                f"funding rate of {symbol}",
                lambda: self._ex.contractPublicGetFundingRateSymbol({"symbol": sym_id}),
            )
            return funding_from_mexc(symbol, body.get("data") or {})
        raw = await self._rest(
            f"funding rate of {symbol}", lambda: self._ex.fetch_funding_rate(state.spec.ccxt_symbol)
        )
        return funding_from_mexc(
            symbol,
            {"fundingRate": raw.get("fundingRate"), "nextSettleTime": raw.get("fundingTimestamp")},
        )

    def reconnect(self, why: str) -> int:
        """Drop every socket now: each watch reconnects with backoff, resubscribes and
        backfills the gap over REST, as after a dropped connection. How many sockets."""
        if self._ex is None or self._closed:
            return 0
        log.warning("reconnecting the feed: %s", why)
        return sum(force_reconnect(self._ex, url, why) for url in list(self._ex.clients or {}))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._ex is not None:
            with contextlib.suppress(Exception):
                await self._ex.close()

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
        assert self._rest is not None
        markets = await self._rest("loading markets", lambda: self._ex.load_markets())
        futures = self.settings.market == "futures"
        wanted: dict[str, dict[str, Any]] = {}
        for market in markets.values():
            is_perp = bool(market.get("swap")) and market.get("settle") == market.get("quote")
            if (is_perp if futures else bool(market.get("spot"))) and market.get("base"):
                wanted.setdefault(engine_symbol(market), market)
        missing = [s for s in self.settings.symbols if s not in wanted]
        if missing:
            raise ExchangeError(
                f"{', '.join(missing)} not listed on {self.settings.exchange} "
                f"{self.settings.market}; check the symbol names"
            )
        for symbol in self.settings.symbols:
            market = wanted[symbol]
            spec = spec_from_market(market)
            interval = self.settings.candle_interval_s
            self._symbols[symbol] = _SymbolState(
                spec=spec,
                market=market,
                trades=_TradeState(TradeDeduper(self.settings.dedupe_window)),
                candles=None if interval is None else CandleAssembler(interval * 1000),
            )
            self._by_exchange_id[market["id"]] = symbol
        interval = self.settings.candle_interval_s
        if interval is not None:
            self._groups = CandleGroups(
                self.settings.symbols, interval * 1000, self.settings.candle_close_grace_ms
            )

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"live-feed {name}"))

    def _state(self, symbol: str) -> _SymbolState:
        try:
            return self._symbols[symbol]
        except KeyError:
            raise ExchangeError(f"{symbol} is not one of this feed's symbols") from None

    # --- stream loops -------------------------------------------------------------------

    async def _watch_trades(self, symbol: str) -> None:
        state = self._symbols[symbol]
        await self._watch_loop(
            symbol,
            "trades",
            lambda: self._ex.watch_trades(state.spec.ccxt_symbol),
            lambda batch: self._on_trades(symbol, batch),
        )

    async def _watch_candles(self, symbol: str) -> None:
        state = self._symbols[symbol]
        await self._watch_loop(
            symbol,
            "candles",
            lambda: self._ex.watch_ohlcv(state.spec.ccxt_symbol, self.settings.candle_timeframe),
            lambda _batch: self._on_candles(symbol),
        )

    async def _watch_loop(self, symbol: str, stream: str, watch: Any, handle: Any) -> None:
        attempt = 0
        while True:
            try:
                batch = await watch()
            except asyncio.CancelledError:
                raise
            except SubscriptionRefusedError as exc:
                await self._queue.put(exc)
                return
            except Exception as exc:  # ccxt raises many types; all of them mean "reconnect"
                self._disconnected(symbol)
                delay = backoff_delay_s(attempt, self.settings)
                attempt += 1
                log.info(
                    "%s %s stream interrupted (%s); resubscribing in %.2f s",
                    symbol, stream, type(exc).__name__, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self._heard(symbol)
            state = self._symbols[symbol]
            emitted_before = state.emitted
            try:
                await handle(batch)
            except ExchangeError as exc:  # a backfill that could not be fetched
                await self._alert(
                    Severity.WARNING, "backfill_failed", f"{symbol}: {exc}", {"symbol": symbol}
                )
            if state.emitted == emitted_before:
                await self._heartbeat(symbol, state)

    def _disconnected(self, symbol: str) -> None:
        state = self._symbols[symbol]
        state.trades.session = None
        state.trades.needs_backfill = True
        if state.candles is not None:
            state.candles.reconnected()

    def _on_message(self, symbol_id: str, exchange_ms: int | None) -> None:
        """Every data message, before ccxt handles it: the exchange's clock and liveness."""
        if exchange_ms is None:
            return
        self._clock.observe(exchange_ms)
        symbol = self._by_exchange_id.get(symbol_id)
        if symbol is not None:
            self._symbols[symbol].exchange_ms = exchange_ms
        due = self._next_candle_due_ms
        if due is not None and (self._clock.now_ms() or 0) >= due:
            self._candles_changed.set()  # the clock jumped past a candle's deadline

    async def _heartbeat(self, symbol: str, state: _SymbolState) -> None:
        """The exchange spoke about `symbol` and nothing came of it: say it is alive."""
        at = state.exchange_ms
        if at is None:
            return
        last = state.last_event_ms
        if last is not None and at < last + self.settings.heartbeat_interval_ms:
            return
        await self._put(heartbeat_event(self.settings.exchange, self.settings.market, symbol, at))

    def _on_malformed(self, url: str) -> None:
        # The frame we skipped may have carried trades: check the next batch against REST.
        for state in self._symbols.values():
            state.trades.needs_backfill = True

    def _heard(self, symbol: str) -> None:
        state = self._symbols[symbol]
        state.last_data = time.monotonic()
        if state.silent_since is not None:
            silent_for = state.last_data - state.silent_since + self.settings.silence_threshold_s
            state.silent_since = None
            self._queue.put_nowait(
                self._make_alert(
                    Severity.INFO,
                    "data_resumed",
                    f"market data for {symbol} resumed after {silent_for:.1f} s of silence",
                    {"symbol": symbol, "silent_s": f"{silent_for:.3f}"},
                )
            )

    # --- trades ------------------------------------------------------------------------

    async def _on_trades(self, symbol: str, batch: list[dict[str, Any]]) -> None:
        state = self._symbols[symbol]
        records: list[TradeRecord] = []
        for trade in batch:
            try:
                records.append(
                    trade_from_ccxt(trade, state.spec.contract_size, self.settings.is_mexc)
                )
            except Exception as exc:
                self._invalid += 1
                log.warning("skipped an unreadable %s trade: %s", symbol, exc)
        if not records:
            return
        ts = state.trades
        if ts.session is None:
            ts.session = ts.dedupe.delivery()
        if ts.needs_backfill and ts.dedupe.last_ms is not None:
            ts.needs_backfill = False
            await self._backfill_trades(symbol, ts.dedupe.last_ms, records[0].time_ms)
        ts.needs_backfill = False
        for record in records:
            if self.settings.trade_id_gap_detection and ts.dedupe.gap_before(record) is not None:
                await self._backfill_trades(
                    symbol, ts.dedupe.last_ms or record.time_ms, record.time_ms
                )
            await self._emit_trade(symbol, ts.session, record)

    async def _emit_trade(self, symbol: str, delivery: Delivery, record: TradeRecord) -> bool:
        key = delivery.accept(record)
        if key is None:
            self._stats.duplicates_dropped += 1
            return False
        try:
            event = trade_event(self.settings.exchange, self.settings.market, symbol, record, key)
        except InvalidEventError as exc:
            self._invalid += 1
            log.warning("skipped an invalid %s trade: %s", symbol, exc)
            return False
        await self._put(event)
        return True

    async def _backfill_trades(self, symbol: str, since_ms: int, until_ms: int) -> None:
        """Emit, in order, the trades of [since_ms, until_ms] not emitted yet."""
        self._stats.gaps_detected += 1
        state = self._symbols[symbol]
        delivery = state.trades.dedupe.delivery()
        emitted = 0
        for record in await self._fetch_trades(state, since_ms, until_ms):
            if await self._emit_trade(symbol, delivery, record):
                emitted += 1
        self._stats.backfilled += emitted
        log.info("%s: backfilled %d trade(s) from %d ms", symbol, emitted, since_ms)

    async def _fetch_trades(
        self, state: _SymbolState, since_ms: int, until_ms: int
    ) -> list[TradeRecord]:
        assert self._rest is not None
        spec = state.spec
        if self.settings.is_mexc and spec.market == "spot":
            out: list[TradeRecord] = []
            cursor = since_ms
            while True:
                params = {"symbol": spec.exchange_id, "startTime": cursor, "endTime": until_ms,
                          "limit": SPOT_REST_PAGE}  # fmt: skip
                rows = await self._rest(
                    f"trades of {spec.symbol}", partial(self._ex.spotPublicGetAggTrades, params)
                )
                out.extend(spot_agg_trade(row) for row in rows)
                if len(rows) < SPOT_REST_PAGE or not out or out[-1].time_ms <= cursor:
                    return out
                cursor = out[-1].time_ms  # inclusive: the deduper drops the overlap
        if self.settings.is_mexc:
            body = await self._rest(
                f"deals of {spec.symbol}",
                lambda: self._ex.contractPublicGetDealsSymbol(
                    {"symbol": spec.exchange_id, "limit": FUTURES_DEALS_MAX}
                ),
            )
            rows = list(body.get("data") or [])
            if rows and rows[0].get("t", 0) > rows[-1].get("t", 0):
                rows.reverse()  # MEXC lists newest first; keep same-ms deals in order
            if len(rows) >= FUTURES_DEALS_MAX and rows and rows[0].get("t", 0) > since_ms:
                await self._alert(
                    Severity.WARNING,
                    "backfill_incomplete",
                    f"{spec.symbol}: more than {FUTURES_DEALS_MAX} deals were missed; "
                    "the oldest could not be fetched",
                    {"symbol": spec.symbol, "since_ms": str(since_ms)},
                )
            deals = [futures_deal(r, spec.contract_size) for r in rows]
            return [d for d in deals if since_ms <= d.time_ms <= until_ms]
        trades = await self._rest(
            f"trades of {spec.symbol}", lambda: self._ex.fetch_trades(spec.ccxt_symbol, since_ms)
        )
        records = [trade_from_ccxt(t, spec.contract_size, False) for t in trades]
        return [r for r in records if r.time_ms <= until_ms]

    # --- candles -----------------------------------------------------------------------

    def _on_kline(self, kline: RawKline) -> None:
        symbol = self._by_exchange_id.get(kline.symbol_id)
        if symbol is not None and kline.timeframe == self.settings.candle_timeframe:
            self._klines.setdefault(symbol, []).append(kline)

    async def _on_candles(self, symbol: str) -> None:
        """New pushes for `symbol` (kept by `_on_kline`); every symbol's are applied."""
        async with self._candle_lock:
            await self._close_and_release()
        self._candles_changed.set()  # a window opened or closed: the closer looks again

    async def _candle_closer(self) -> None:
        """Closes candles whose next push is late, at end + grace on the exchange's clock."""
        while True:
            due, now = self._next_candle_due_ms, self._clock.now_ms()
            wait = CLOSER_IDLE_S if due is None or now is None else (due - now) / 1000
            # Never less than a few ms: whatever goes wrong, the closer must not spin.
            # asyncio.timeout, not wait_for: wait_for can swallow a cancellation that
            # arrives as the event is set, and close() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(max(wait, CLOSER_MIN_WAIT_S), CLOSER_IDLE_S)):
                    await self._candles_changed.wait()
            self._candles_changed.clear()
            try:
                async with self._candle_lock:
                    await self._close_and_release()
            except ExchangeError as exc:  # a backfill that could not be fetched
                await self._alert(Severity.WARNING, "backfill_failed", str(exc), {})

    async def _close_and_release(self) -> None:
        """Apply the pushes received, close the windows that are due, then emit every
        group that is complete or due.

        Called with the candle lock held.
        """
        groups = self._groups
        assert groups is not None
        # Pushes first, also those that came in while a backfill was fetched: the push
        # that moved the clock past a deadline may be the one that shows the open
        # window's last pushes were lost (then REST has them).
        while any(self._klines.get(symbol) for symbol in groups.symbols):
            for symbol in groups.symbols:
                state = self._symbols[symbol]
                assert state.candles is not None
                pushes, self._klines[symbol] = self._klines.get(symbol, []), []
                for kline in pushes:
                    await self._apply(symbol, state, state.candles.push(kline))
        grace = self.settings.candle_close_grace_ms
        now = self._clock.now_ms()
        if now is not None:
            for symbol in groups.symbols:
                state = self._symbols[symbol]
                assert state.candles is not None
                step = state.candles.close_due(now, grace)
                if step.closed is not None or step.backfill_from_ms is not None:
                    self._stats.candles_closed_by_clock += 1
                    await self._apply(symbol, state, step)
        closed_through = {
            symbol: state.candles.closed_through_ms
            for symbol, state in self._symbols.items()
            if state.candles is not None
        }
        for group in groups.release(closed_through, self._clock.now_ms()):
            candles = [
                candle
                for symbol, kline in group
                if (candle := self._accept_candle(symbol, self._symbols[symbol], kline))
            ]
            if candles:
                await self._put_candles(candles)
        for state in self._symbols.values():
            if state.candles is not None:
                self._stats.duplicates_dropped += state.candles.duplicates
                state.candles.duplicates = 0
        dues = [
            state.candles.due_ms + grace
            for state in self._symbols.values()
            if state.candles is not None and state.candles.due_ms is not None
        ]
        held = groups.next_due_ms()
        if held is not None:
            dues.append(held)
        self._next_candle_due_ms = min(dues) if dues else None

    async def _apply(self, symbol: str, state: _SymbolState, step: CandleStep) -> None:
        """Hold a closed window for its group; fetch the windows the stream lost."""
        groups = self._groups
        assert groups is not None
        if step.closed is not None:
            groups.add(symbol, step.closed)
        if step.backfill_from_ms is None or step.backfill_to_ms is None:
            return
        self._stats.gaps_detected += 1
        fetched = await self._fetch_klines(state, step.backfill_from_ms, step.backfill_to_ms, None)
        for raw in fetched:
            if step.backfill_from_ms <= raw.open_ms < step.backfill_to_ms:
                self._backfilled_candles.add((symbol, raw.open_ms))
                groups.add(symbol, raw)

    def _accept_candle(self, symbol: str, state: _SymbolState, kline: RawKline) -> Candle | None:
        """The candle to emit, or None if it is invalid or not newer than the last one."""
        assert state.candles is not None
        candle = self._candle(symbol, state, kline)
        if candle is None or not state.candles.emitted(kline.open_ms):
            return None
        if (symbol, kline.open_ms) in self._backfilled_candles:
            self._backfilled_candles.discard((symbol, kline.open_ms))
            self._stats.backfilled += 1
        return candle

    async def _put_candles(self, candles: list[Candle]) -> None:
        for candle in candles:
            self._count(candle)
        await self._queue.put(candles if len(candles) > 1 else candles[0])

    def _candle(self, symbol: str, state: _SymbolState, kline: RawKline) -> Candle | None:
        interval_s = self.settings.candle_interval_s
        assert interval_s is not None
        # MEXC futures volumes are contracts; spot volumes are already base units.
        scale = state.spec.contract_size if state.spec.market == "futures" else Decimal(1)
        try:
            return candle_event(
                self.settings.exchange, self.settings.market, symbol, kline, interval_s, scale
            )
        except Exception as exc:  # InvalidEventError, DataSourceError: refuse and count
            self._invalid += 1
            log.warning("skipped an invalid %s candle at %d: %s", symbol, kline.open_ms, exc)
            return None

    async def _fetch_klines(
        self, state: _SymbolState, from_ms: int | None, to_ms: int | None, limit: int | None
    ) -> list[RawKline]:
        """Klines with from_ms <= open < to_ms (or the latest `limit`), oldest first."""
        assert self._rest is not None
        spec, timeframe = state.spec, self.settings.candle_timeframe
        assert timeframe is not None
        interval_ms = (self.settings.candle_interval_s or 60) * 1000
        if self.settings.is_mexc and spec.market == "spot":
            interval = self._ex.options["timeframes"]["spot"][timeframe]
            out: list[RawKline] = []
            cursor = from_ms
            while True:
                params: dict[str, Any] = {"symbol": spec.exchange_id, "interval": interval}
                if cursor is not None and to_ms is not None:
                    params |= {"startTime": cursor, "endTime": to_ms, "limit": SPOT_KLINE_PAGE}
                else:
                    params["limit"] = min(limit or SPOT_KLINE_PAGE, SPOT_KLINE_PAGE)
                rows = await self._rest(
                    f"klines of {spec.symbol}", partial(self._ex.spotPublicGetKlines, params)
                )
                page = [spot_kline_row(r, spec.exchange_id, timeframe) for r in rows]
                out.extend(page)
                if cursor is None or len(page) < SPOT_KLINE_PAGE:
                    return out
                cursor = page[-1].open_ms + interval_ms
        if self.settings.is_mexc:
            interval = self._ex.options["timeframes"]["swap"][timeframe]
            params = {"symbol": spec.exchange_id, "interval": interval}
            if from_ms is not None and to_ms is not None:
                params |= {"start": from_ms // 1000, "end": (to_ms - 1) // 1000}
            body = await self._rest(
                f"klines of {spec.symbol}", lambda: self._ex.contractPublicGetKlineSymbol(params)
            )
            rows = futures_kline_rows(body.get("data") or {}, spec.exchange_id, timeframe)
            return rows if limit is None else rows[-limit:]
        ohlcv = await self._rest(
            f"klines of {spec.symbol}",
            lambda: self._ex.fetch_ohlcv(spec.ccxt_symbol, timeframe, from_ms, limit),
        )
        return [RawKline(spec.exchange_id, timeframe, int(r[0]), *r[1:6]) for r in ohlcv]

    # --- book ticker -----------------------------------------------------------------

    async def _watch_book(self, symbol: str) -> None:
        state = self._symbols[symbol]
        ccxt_symbol = state.spec.ccxt_symbol

        async def watch() -> Any:
            if self.settings.is_mexc:
                return await self._ex.claire_watch_book_ticker(ccxt_symbol)
            return await self._ex.watch_ticker(ccxt_symbol)  # other exchanges: floats

        await self._watch_loop(
            symbol, "book ticker", watch, lambda batch: self._on_book(symbol, batch)
        )

    def _on_book_ticker(self, raw: RawBookTicker) -> None:
        """Every book-ticker message: keep only the latest per symbol until it is read."""
        symbol = self._by_exchange_id.get(raw.symbol_id)
        if symbol is not None:
            self._symbols[symbol].book = raw

    async def _on_book(self, symbol: str, batch: Any) -> None:
        state = self._symbols[symbol]
        if not self.settings.is_mexc and isinstance(batch, dict):
            state.book = book_from_ccxt_ticker(state.spec.exchange_id, batch)
        interval_s = self.settings.quote_min_interval_ms / 1000
        while state.book is not None:
            raw, state.book = state.book, None
            if not await self._emit_quote(symbol, state, raw) or interval_s <= 0:
                return
            # Let the book settle, then send its latest state: at most one quote per
            # interval, and never an old one left standing.
            await asyncio.sleep(interval_s)

    async def _emit_quote(self, symbol: str, state: _SymbolState, raw: RawBookTicker) -> bool:
        time_ms = raw.time_ms or self._clock.now_ms() or epoch_ms(datetime.now(UTC))
        scale = state.spec.contract_size if state.spec.market == "futures" else Decimal(1)
        try:
            quote = quote_event(
                self.settings.exchange, self.settings.market, symbol, raw, time_ms, scale
            )
        except (InvalidEventError, DataSourceError) as exc:
            self._invalid += 1
            log.warning("skipped an invalid %s book ticker: %s", symbol, exc)
            return False
        if state.last_quote == (quote.bid, quote.ask):
            return False  # only the sizes changed, or nothing did
        state.last_quote = (quote.bid, quote.ask)
        await self._put(quote)
        return True

    # --- watchdog and alerts ---------------------------------------------------------------

    async def _watchdog(self) -> None:
        threshold = self.settings.silence_threshold_s
        last_forced = 0.0
        while True:
            await asyncio.sleep(self.settings.watchdog_interval_s)
            now = time.monotonic()
            stale = False
            for symbol, state in self._symbols.items():
                age = now - state.last_data
                if age <= threshold:
                    continue
                stale = True
                if state.silent_since is None:
                    state.silent_since = state.last_data
                    self._stats.data_stop_alerts += 1
                    await self._alert(
                        Severity.CRITICAL,
                        "data_stop",
                        f"no market data for {symbol} for {age:.1f} s "
                        f"(threshold {threshold:g} s); reconnecting",
                        {
                            "symbol": symbol,
                            "silent_s": f"{age:.3f}",
                            "threshold_s": f"{threshold:g}",
                        },
                    )
            # A stale socket may be a receive loop that died silently: replace it, but
            # no more often than the threshold so a quiet exchange is not hammered.
            if stale and now - last_forced > threshold:
                last_forced = now
                for url in list((self._ex.clients or {}).keys()):
                    force_reconnect(self._ex, url, f"no data for {threshold:g} s")

    def _make_alert(
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

    async def _alert(
        self, severity: Severity, rule: str, message: str, detail: dict[str, str]
    ) -> None:
        log.warning("feed alert %s: %s", rule, message)
        await self._put(self._make_alert(severity, rule, message, detail))

    async def _put(self, event: FeedEvent) -> None:
        if not isinstance(event, Alert):
            self._count(event)
        await self._queue.put(event)

    def _count(self, event: LiveMarketEvent) -> None:
        self._stats.emitted += 1
        if isinstance(event, Quote):
            self._stats.quotes += 1
        elif isinstance(event, Heartbeat):
            self._stats.heartbeats += 1
        state = self._symbols.get(event.symbol)
        if state is not None:
            state.emitted += 1
            at = epoch_ms(event.ts)
            if state.last_event_ms is None or at > state.last_event_ms:
                state.last_event_ms = at
