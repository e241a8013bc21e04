"""Live candles: pushes applied, windows closed on the exchange's clock, gaps backfilled.

A live candle closes when the next window's first push arrives or when the
exchange's clock is `candle_close_grace_ms` past the window's end, whichever comes
first; candles of several symbols that end together leave together, sorted by
symbol (candle_groups.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from decimal import Decimal

from engine.errors import ExchangeError
from engine.events import Candle, Severity
from engine.feeds.exchange.candle_groups import CandleGroups
from engine.feeds.exchange.candles import CandleStep
from engine.feeds.exchange.client import RawKline
from engine.feeds.exchange.feed_state import FeedContext, SymbolState
from engine.feeds.exchange.parse import candle_event
from engine.feeds.exchange.rest_history import RestHistory

log = logging.getLogger(__name__)

CLOSER_IDLE_S = 1.0  # the candle closer looks again at least this often
CLOSER_MIN_WAIT_S = 0.005


class CandleStream:
    """Assembles the live klines of every symbol into closed `Candle` events."""

    def __init__(self, ctx: FeedContext, history: RestHistory) -> None:
        self._ctx = ctx
        self._history = history
        self._klines: dict[str, list[RawKline]] = {}
        self._groups: CandleGroups | None = None
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._next_due_ms: int | None = None
        self._backfilled: set[tuple[str, int]] = set()

    def group_symbols(self) -> None:
        """Once the symbols are known: hold candles that end together for one another."""
        settings = self._ctx.settings
        interval = settings.candle_interval_s
        if interval is not None:
            self._groups = CandleGroups(
                settings.symbols, interval * 1000, settings.candle_close_grace_ms
            )

    async def warmup(self, count: int) -> list[Candle]:
        """The latest `count` closed candles per symbol over REST, oldest first per symbol."""
        interval_s = self._ctx.settings.candle_interval_s
        assert interval_s is not None
        now_ms = int(time.time() * 1000)
        out: list[Candle] = []
        for symbol, state in self._ctx.symbols.items():
            klines = await self._history.klines(state, None, None, count + 1)
            closed = [k for k in klines if k.open_ms + interval_s * 1000 <= now_ms][-count:]
            for kline in closed:
                candle = self._candle(symbol, state, kline)
                if candle is not None and state.candles is not None:
                    state.candles.emitted(kline.open_ms)
                    out.append(candle)
        return out

    def late_updates(self) -> int:
        return sum(
            s.candles.late_updates for s in self._ctx.symbols.values() if s.candles is not None
        )

    # --- pushes and the closer ------------------------------------------------------

    def on_kline(self, kline: RawKline) -> None:
        symbol = self._ctx.by_exchange_id.get(kline.symbol_id)
        if symbol is not None and kline.timeframe == self._ctx.settings.candle_timeframe:
            self._klines.setdefault(symbol, []).append(kline)

    async def on_candles(self, symbol: str) -> None:
        """New pushes for `symbol` (kept by `on_kline`); every symbol's are applied."""
        async with self._lock:
            await self._close_and_release()
        self._changed.set()  # a window opened or closed: the closer looks again

    def wake_if_due(self) -> None:
        """The exchange's clock moved: wake the closer if it passed a candle's deadline."""
        due = self._next_due_ms
        if due is not None and (self._ctx.clock.now_ms() or 0) >= due:
            self._changed.set()  # the clock jumped past a candle's deadline

    def disconnected(self, symbol: str) -> None:
        candles = self._ctx.symbols[symbol].candles
        if candles is not None:
            candles.reconnected()

    async def run_closer(self) -> None:
        """Closes candles whose next push is late, at end + grace on the exchange's clock."""
        while True:
            due, now = self._next_due_ms, self._ctx.clock.now_ms()
            wait = CLOSER_IDLE_S if due is None or now is None else (due - now) / 1000
            # Never less than a few ms: whatever goes wrong, the closer must not spin.
            # asyncio.timeout, not wait_for: wait_for can swallow a cancellation that
            # arrives as the event is set, and close() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(max(wait, CLOSER_MIN_WAIT_S), CLOSER_IDLE_S)):
                    await self._changed.wait()
            self._changed.clear()
            try:
                async with self._lock:
                    await self._close_and_release()
            except ExchangeError as exc:  # a backfill that could not be fetched
                await self._ctx.alert(Severity.WARNING, "backfill_failed", str(exc), {})

    async def _close_and_release(self) -> None:
        """Apply the pushes received, close the windows that are due, then emit every
        group that is complete or due.

        Called with the lock held.
        """
        groups = self._groups
        assert groups is not None
        await self._apply_pushes(groups)
        await self._close_due(groups)
        await self._release(groups)
        for state in self._ctx.symbols.values():
            if state.candles is not None:
                self._ctx.stats.duplicates_dropped += state.candles.duplicates
                state.candles.duplicates = 0
        self._next_due_ms = self._next_deadline(groups)

    async def _apply_pushes(self, groups: CandleGroups) -> None:
        # Pushes first, also those that came in while a backfill was fetched: the push
        # that moved the clock past a deadline may be the one that shows the open
        # window's last pushes were lost (then REST has them).
        while any(self._klines.get(symbol) for symbol in groups.symbols):
            for symbol in groups.symbols:
                state = self._ctx.symbols[symbol]
                assert state.candles is not None
                pushes, self._klines[symbol] = self._klines.get(symbol, []), []
                for kline in pushes:
                    await self._apply(symbol, state, state.candles.push(kline))

    async def _close_due(self, groups: CandleGroups) -> None:
        grace = self._ctx.settings.candle_close_grace_ms
        now = self._ctx.clock.now_ms()
        if now is None:
            return
        for symbol in groups.symbols:
            state = self._ctx.symbols[symbol]
            assert state.candles is not None
            step = state.candles.close_due(now, grace)
            if step.closed is not None or step.backfill_from_ms is not None:
                self._ctx.stats.candles_closed_by_clock += 1
                await self._apply(symbol, state, step)

    async def _release(self, groups: CandleGroups) -> None:
        symbols = self._ctx.symbols
        closed_through = {
            symbol: state.candles.closed_through_ms
            for symbol, state in symbols.items()
            if state.candles is not None
        }
        for group in groups.release(closed_through, self._ctx.clock.now_ms()):
            candles = [
                candle
                for symbol, kline in group
                if (candle := self._accept(symbol, symbols[symbol], kline))
            ]
            if candles:
                await self._put(candles)

    def _next_deadline(self, groups: CandleGroups) -> int | None:
        grace = self._ctx.settings.candle_close_grace_ms
        dues = [
            state.candles.due_ms + grace
            for state in self._ctx.symbols.values()
            if state.candles is not None and state.candles.due_ms is not None
        ]
        held = groups.next_due_ms()
        if held is not None:
            dues.append(held)
        return min(dues) if dues else None

    async def _apply(self, symbol: str, state: SymbolState, step: CandleStep) -> None:
        """Hold a closed window for its group; fetch the windows the stream lost."""
        groups = self._groups
        assert groups is not None
        if step.closed is not None:
            groups.add(symbol, step.closed)
        if step.backfill_from_ms is None or step.backfill_to_ms is None:
            return
        self._ctx.stats.gaps_detected += 1
        fetched = await self._history.klines(
            state, step.backfill_from_ms, step.backfill_to_ms, None
        )
        for raw in fetched:
            if step.backfill_from_ms <= raw.open_ms < step.backfill_to_ms:
                self._backfilled.add((symbol, raw.open_ms))
                groups.add(symbol, raw)

    # --- emitting -------------------------------------------------------------------

    def _accept(self, symbol: str, state: SymbolState, kline: RawKline) -> Candle | None:
        """The candle to emit, or None if it is invalid or not newer than the last one."""
        assert state.candles is not None
        candle = self._candle(symbol, state, kline)
        if candle is None or not state.candles.emitted(kline.open_ms):
            return None
        if (symbol, kline.open_ms) in self._backfilled:
            self._backfilled.discard((symbol, kline.open_ms))
            self._ctx.stats.backfilled += 1
        return candle

    async def _put(self, candles: list[Candle]) -> None:
        for candle in candles:
            self._ctx.count(candle)
        await self._ctx.queue.put(candles if len(candles) > 1 else candles[0])

    def _candle(self, symbol: str, state: SymbolState, kline: RawKline) -> Candle | None:
        settings = self._ctx.settings
        interval_s = settings.candle_interval_s
        assert interval_s is not None
        # MEXC futures volumes are contracts; spot volumes are already base units.
        scale = state.spec.contract_size if state.spec.market == "futures" else Decimal(1)
        try:
            return candle_event(
                settings.exchange, settings.market, symbol, kline, interval_s, scale
            )
        except Exception as exc:  # InvalidEventError, DataSourceError: refuse and count
            self._ctx.invalid += 1
            log.warning("skipped an invalid %s candle at %d: %s", symbol, kline.open_ms, exc)
            return None
