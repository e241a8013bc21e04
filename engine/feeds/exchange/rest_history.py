"""Trades and klines of a past interval over REST, to fill what the live streams missed."""

from __future__ import annotations

from functools import partial
from typing import Any

from engine.events import Severity
from engine.feeds.exchange.client import RawKline
from engine.feeds.exchange.dedupe import TradeRecord
from engine.feeds.exchange.feed_state import FeedContext, SymbolState
from engine.feeds.exchange.markets import MarketSpec
from engine.feeds.exchange.parse import (
    futures_deal,
    futures_kline_rows,
    spot_agg_trade,
    spot_kline_row,
    trade_from_ccxt,
)

SPOT_REST_PAGE = 1000
SPOT_KLINE_PAGE = 500  # ccxt: MEXC answers at most 500 in practice
FUTURES_DEALS_MAX = 100


class RestHistory:
    """Fetches a symbol's trades and klines of a past interval, oldest first."""

    def __init__(self, ctx: FeedContext) -> None:
        self._ctx = ctx

    # --- trades ------------------------------------------------------------------------

    async def trades(self, state: SymbolState, since_ms: int, until_ms: int) -> list[TradeRecord]:
        ctx = self._ctx
        spec = state.spec
        if ctx.settings.is_mexc and spec.market == "spot":
            return await self._mexc_spot_trades(spec, since_ms, until_ms)
        if ctx.settings.is_mexc:
            return await self._mexc_futures_deals(spec, since_ms, until_ms)
        trades = await ctx.rest_caller()(
            f"trades of {spec.symbol}", lambda: ctx.ex.fetch_trades(spec.ccxt_symbol, since_ms)
        )
        records = [trade_from_ccxt(t, spec.contract_size, False) for t in trades]
        return [r for r in records if r.time_ms <= until_ms]

    async def _mexc_spot_trades(
        self, spec: MarketSpec, since_ms: int, until_ms: int
    ) -> list[TradeRecord]:
        ctx = self._ctx
        out: list[TradeRecord] = []
        cursor = since_ms
        while True:
            params = {"symbol": spec.exchange_id, "startTime": cursor, "endTime": until_ms,
                      "limit": SPOT_REST_PAGE}  # fmt: skip
            rows = await ctx.rest_caller()(
                f"trades of {spec.symbol}", partial(ctx.ex.spotPublicGetAggTrades, params)
            )
            out.extend(spot_agg_trade(row) for row in rows)
            if len(rows) < SPOT_REST_PAGE or not out or out[-1].time_ms <= cursor:
                return out
            cursor = out[-1].time_ms  # inclusive: the deduper drops the overlap

    async def _mexc_futures_deals(
        self, spec: MarketSpec, since_ms: int, until_ms: int
    ) -> list[TradeRecord]:
        ctx = self._ctx
        body = await ctx.rest_caller()(
            f"deals of {spec.symbol}",
            lambda: ctx.ex.contractPublicGetDealsSymbol(
                {"symbol": spec.exchange_id, "limit": FUTURES_DEALS_MAX}
            ),
        )
        rows = list(body.get("data") or [])
        if rows and rows[0].get("t", 0) > rows[-1].get("t", 0):
            rows.reverse()  # MEXC lists newest first; keep same-ms deals in order
        if len(rows) >= FUTURES_DEALS_MAX and rows and rows[0].get("t", 0) > since_ms:
            await ctx.alert(
                Severity.WARNING,
                "backfill_incomplete",
                f"{spec.symbol}: more than {FUTURES_DEALS_MAX} deals were missed; "
                "the oldest could not be fetched",
                {"symbol": spec.symbol, "since_ms": str(since_ms)},
            )
        deals = [futures_deal(r, spec.contract_size) for r in rows]
        return [d for d in deals if since_ms <= d.time_ms <= until_ms]

    # --- klines ------------------------------------------------------------------------

    async def klines(
        self, state: SymbolState, from_ms: int | None, to_ms: int | None, limit: int | None
    ) -> list[RawKline]:
        """Klines with from_ms <= open < to_ms (or the latest `limit`), oldest first."""
        ctx = self._ctx
        spec, timeframe = state.spec, ctx.settings.candle_timeframe
        assert timeframe is not None
        if ctx.settings.is_mexc and spec.market == "spot":
            return await self._mexc_spot_klines(spec, timeframe, from_ms, to_ms, limit)
        if ctx.settings.is_mexc:
            return await self._mexc_futures_klines(spec, timeframe, from_ms, to_ms, limit)
        ohlcv = await ctx.rest_caller()(
            f"klines of {spec.symbol}",
            lambda: ctx.ex.fetch_ohlcv(spec.ccxt_symbol, timeframe, from_ms, limit),
        )
        return [RawKline(spec.exchange_id, timeframe, int(r[0]), *r[1:6]) for r in ohlcv]

    async def _mexc_spot_klines(
        self,
        spec: MarketSpec,
        timeframe: str,
        from_ms: int | None,
        to_ms: int | None,
        limit: int | None,
    ) -> list[RawKline]:
        ctx = self._ctx
        interval_ms = (ctx.settings.candle_interval_s or 60) * 1000
        interval = ctx.ex.options["timeframes"]["spot"][timeframe]
        out: list[RawKline] = []
        cursor = from_ms
        while True:
            params: dict[str, Any] = {"symbol": spec.exchange_id, "interval": interval}
            if cursor is not None and to_ms is not None:
                params |= {"startTime": cursor, "endTime": to_ms, "limit": SPOT_KLINE_PAGE}
            else:
                params["limit"] = min(limit or SPOT_KLINE_PAGE, SPOT_KLINE_PAGE)
            rows = await ctx.rest_caller()(
                f"klines of {spec.symbol}", partial(ctx.ex.spotPublicGetKlines, params)
            )
            page = [spot_kline_row(r, spec.exchange_id, timeframe) for r in rows]
            out.extend(page)
            if cursor is None or len(page) < SPOT_KLINE_PAGE:
                return out
            cursor = page[-1].open_ms + interval_ms

    async def _mexc_futures_klines(
        self,
        spec: MarketSpec,
        timeframe: str,
        from_ms: int | None,
        to_ms: int | None,
        limit: int | None,
    ) -> list[RawKline]:
        ctx = self._ctx
        interval = ctx.ex.options["timeframes"]["swap"][timeframe]
        params = {"symbol": spec.exchange_id, "interval": interval}
        if from_ms is not None and to_ms is not None:
            params |= {"start": from_ms // 1000, "end": (to_ms - 1) // 1000}
        body = await ctx.rest_caller()(
            f"klines of {spec.symbol}", lambda: ctx.ex.contractPublicGetKlineSymbol(params)
        )
        rows = futures_kline_rows(body.get("data") or {}, spec.exchange_id, timeframe)
        return rows if limit is None else rows[-limit:]
