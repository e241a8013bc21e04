"""Live quotes: the best bid and ask, sent when either changed and at a bounded rate.

Quotes leave only when the bid or the ask changed, at most one per symbol per
`quote_min_interval_ms`, always with the latest book.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engine.errors import DataSourceError, InvalidEventError
from engine.feeds.exchange.client import RawBookTicker
from engine.feeds.exchange.feed_state import FeedContext, SymbolState
from engine.feeds.exchange.numbers import epoch_ms
from engine.feeds.exchange.parse import book_from_ccxt_ticker, quote_event

log = logging.getLogger(__name__)


class QuoteStream:
    """Turns book-ticker messages into `Quote` events."""

    def __init__(self, ctx: FeedContext) -> None:
        self._ctx = ctx

    def on_book_ticker(self, raw: RawBookTicker) -> None:
        """Every book-ticker message: keep only the latest per symbol until it is read."""
        symbol = self._ctx.by_exchange_id.get(raw.symbol_id)
        if symbol is not None:
            self._ctx.symbols[symbol].book = raw

    async def on_book(self, symbol: str, batch: Any) -> None:
        settings = self._ctx.settings
        state = self._ctx.symbols[symbol]
        if not settings.is_mexc and isinstance(batch, dict):
            state.book = book_from_ccxt_ticker(state.spec.exchange_id, batch)
        interval_s = settings.quote_min_interval_ms / 1000
        while state.book is not None:
            raw, state.book = state.book, None
            if not await self._emit(symbol, state, raw) or interval_s <= 0:
                return
            # Let the book settle, then send its latest state: at most one quote per
            # interval, and never an old one left standing.
            await asyncio.sleep(interval_s)

    async def _emit(self, symbol: str, state: SymbolState, raw: RawBookTicker) -> bool:
        ctx = self._ctx
        time_ms = raw.time_ms or ctx.clock.now_ms() or epoch_ms(datetime.now(UTC))
        scale = state.spec.contract_size if state.spec.market == "futures" else Decimal(1)
        try:
            quote = quote_event(
                ctx.settings.exchange, ctx.settings.market, symbol, raw, time_ms, scale
            )
        except (InvalidEventError, DataSourceError) as exc:
            ctx.invalid += 1
            log.warning("skipped an invalid %s book ticker: %s", symbol, exc)
            return False
        if state.last_quote == (quote.bid, quote.ask):
            return False  # only the sizes changed, or nothing did
        state.last_quote = (quote.bid, quote.ask)
        await ctx.put(quote)
        return True
