"""Live trades: each batch checked against the deduper, gaps filled over REST first.

After a stream opens on a continued feed (or drops), its first batch is checked
against REST, so trades made while it was not listening are backfilled before it.
A symbol whose market goes quiet right then (the exchange's last trades of the
day, a thin symbol, a run stopped soon after) would bring no batch to trigger that
check: `recheck_due` asks REST once more `RECHECK_S` later, without waiting for one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Final

from engine.errors import ExchangeError, InvalidEventError
from engine.feeds.exchange.dedupe import Delivery, TradeRecord
from engine.feeds.exchange.feed_state import FeedContext
from engine.feeds.exchange.parse import trade_event, trade_from_ccxt
from engine.feeds.exchange.rest_history import RestHistory

log = logging.getLogger(__name__)

RECHECK_S: Final = 3.0  # a stream that opened (or dropped) and brought no batch since
RECHECK_WINDOW_MS: Final = 86_400_000  # what a recheck asks for: a day from the last trade


class TradeStream:
    """Turns batches of ccxt trades into `Trade` events, none lost and none doubled."""

    def __init__(
        self,
        ctx: FeedContext,
        history: RestHistory,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ctx = ctx
        self._history = history
        self._monotonic = monotonic
        self._recheck: dict[str, float] = {}  # symbol -> when to ask REST once more
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def on_trades(self, symbol: str, batch: list[dict[str, Any]]) -> None:
        async with self._locks[symbol]:  # never beside a recheck of the same symbol
            self._recheck.pop(symbol, None)
            await self._on_trades(symbol, batch)

    async def _on_trades(self, symbol: str, batch: list[dict[str, Any]]) -> None:
        ctx = self._ctx
        state = ctx.symbols[symbol]
        records: list[TradeRecord] = []
        for trade in batch:
            try:
                records.append(
                    trade_from_ccxt(trade, state.spec.contract_size, ctx.settings.is_mexc)
                )
            except Exception as exc:
                ctx.invalid += 1
                log.warning("skipped an unreadable %s trade: %s", symbol, exc)
        if not records:
            return
        ts = state.trades
        if ts.session is None:
            ts.session = ts.dedupe.delivery()
        if ts.needs_backfill and ts.dedupe.last_ms is not None:
            ts.needs_backfill = False
            await self._backfill(symbol, ts.dedupe.last_ms, records[0].time_ms)
        ts.needs_backfill = False
        for record in records:
            if ctx.settings.trade_id_gap_detection and ts.dedupe.gap_before(record) is not None:
                await self._backfill(symbol, ts.dedupe.last_ms or record.time_ms, record.time_ms)
            await self._emit(symbol, ts.session, record)

    async def catch_up(self, symbol: str, window_ms: int) -> None:
        """Backfill `window_ms` from the last trade emitted (as an earlier feed left it).

        The stream opens after this backfill: its first batch is checked against REST
        again, so a trade made between the two is backfilled then, never lost."""
        trades = self._ctx.symbols[symbol].trades
        last_ms = trades.dedupe.last_ms
        if last_ms is not None:
            await self._backfill(symbol, last_ms, last_ms + window_ms)
            self._recheck[symbol] = self._monotonic() + RECHECK_S
            trades.needs_backfill = True

    def disconnected(self, symbol: str) -> None:
        """The stream dropped: a new delivery, checked against REST, starts after it."""
        trades = self._ctx.symbols[symbol].trades
        trades.session = None
        trades.needs_backfill = True
        self._recheck[symbol] = self._monotonic() + RECHECK_S

    def frame_lost(self) -> None:
        """A frame was skipped and may have carried trades: check the next batch."""
        for state in self._ctx.symbols.values():
            state.trades.needs_backfill = True

    async def _emit(self, symbol: str, delivery: Delivery, record: TradeRecord) -> bool:
        ctx = self._ctx
        key = delivery.accept(record)
        if key is None:
            ctx.stats.duplicates_dropped += 1
            return False
        try:
            event = trade_event(ctx.settings.exchange, ctx.settings.market, symbol, record, key)
        except InvalidEventError as exc:
            ctx.invalid += 1
            log.warning("skipped an invalid %s trade: %s", symbol, exc)
            return False
        await ctx.put(event)
        return True

    async def recheck_due(self) -> None:
        """Ask REST once more for each symbol whose stream opened (or dropped) `RECHECK_S`
        ago and brought no batch since; its first batch is still checked too."""
        now = self._monotonic()
        for symbol, due in list(self._recheck.items()):
            if due > now:
                continue
            del self._recheck[symbol]
            trades = self._ctx.symbols[symbol].trades
            async with self._locks[symbol]:
                last_ms = trades.dedupe.last_ms
                if not trades.needs_backfill or last_ms is None:
                    continue  # a batch came (and was checked), or nothing to continue
                until_ms = last_ms + RECHECK_WINDOW_MS
                try:
                    await self._backfill(symbol, last_ms, until_ms, known_gap=False)
                except ExchangeError as exc:  # the first live batch asks again
                    log.info("%s: could not look for missed trades (%s)", symbol, exc)

    async def _backfill(
        self, symbol: str, since_ms: int, until_ms: int, *, known_gap: bool = True
    ) -> None:
        """Emit, in order, the trades of [since_ms, until_ms] not emitted yet; a look
        that was not for a `known_gap` counts as one only when it found trades."""
        ctx = self._ctx
        state = ctx.symbols[symbol]
        delivery = state.trades.dedupe.delivery()
        emitted = 0
        for record in await self._history.trades(state, since_ms, until_ms):
            ctx.clock.observe(record.time_ms)  # made by then: the exchange's clock is past it
            if await self._emit(symbol, delivery, record):
                emitted += 1
        ctx.stats.backfilled += emitted
        if known_gap or emitted:
            ctx.stats.gaps_detected += 1
        log.info("%s: backfilled %d trade(s) from %d ms", symbol, emitted, since_ms)
