"""Live trades: each batch checked against the deduper, gaps filled over REST first."""

from __future__ import annotations

import logging
from typing import Any

from engine.errors import InvalidEventError
from engine.feeds.exchange.dedupe import Delivery, TradeRecord
from engine.feeds.exchange.feed_state import FeedContext
from engine.feeds.exchange.parse import trade_event, trade_from_ccxt
from engine.feeds.exchange.rest_history import RestHistory

log = logging.getLogger(__name__)


class TradeStream:
    """Turns batches of ccxt trades into `Trade` events, none lost and none doubled."""

    def __init__(self, ctx: FeedContext, history: RestHistory) -> None:
        self._ctx = ctx
        self._history = history

    async def on_trades(self, symbol: str, batch: list[dict[str, Any]]) -> None:
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
            trades.needs_backfill = True

    def disconnected(self, symbol: str) -> None:
        """The stream dropped: a new delivery, checked against REST, starts after it."""
        trades = self._ctx.symbols[symbol].trades
        trades.session = None
        trades.needs_backfill = True

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

    async def _backfill(self, symbol: str, since_ms: int, until_ms: int) -> None:
        """Emit, in order, the trades of [since_ms, until_ms] not emitted yet."""
        ctx = self._ctx
        ctx.stats.gaps_detected += 1
        state = ctx.symbols[symbol]
        delivery = state.trades.dedupe.delivery()
        emitted = 0
        for record in await self._history.trades(state, since_ms, until_ms):
            if await self._emit(symbol, delivery, record):
                emitted += 1
        ctx.stats.backfilled += emitted
        log.info("%s: backfilled %d trade(s) from %d ms", symbol, emitted, since_ms)
