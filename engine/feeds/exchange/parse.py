"""Exchange payloads to `TradeRecord`s, `RawKline`s and engine events (trades, candles,
quotes and heartbeats).

Prices and sizes are read from the raw payload (`trade["info"]`), never from
ccxt's float fields: MEXC spot sends strings, kept verbatim; MEXC futures sends
JSON numbers, recovered exactly through `exact_decimal` (see numbers.py).
Futures sizes arrive in contracts and are turned into base units here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.events import Candle, Heartbeat, Quote, Side, Trade, derive_id
from engine.feeds.exchange.client import RawBookTicker, RawKline
from engine.feeds.exchange.dedupe import TradeRecord
from engine.feeds.exchange.numbers import exact_decimal, int_ms, utc_ms


def _side_from_type(value: object) -> Side:
    # MEXC: 1 = buy, 2 = sell, for the taker.
    return Side.BUY if str(value) == "1" else Side.SELL


def trade_from_ccxt(trade: dict[str, Any], contract_size: Decimal, mexc: bool) -> TradeRecord:
    """A trade from ccxt's watch_trades; the exact values come from `trade["info"]`."""
    info = trade.get("info") or {}
    if mexc and "quantity" in info:  # spot protobuf deal
        return TradeRecord(
            time_ms=int_ms(info.get("time"), "time"),
            price=exact_decimal(info.get("price"), "price"),
            qty=exact_decimal(info.get("quantity"), "quantity"),
            side=_side_from_type(info.get("tradeType")),
            trade_id=str(info["tradeId"]) if info.get("tradeId") else None,
        )
    if mexc and "v" in info and "p" in info:  # futures deal
        return futures_deal(info, contract_size)
    # Other exchanges: ccxt's unified fields (floats, via their shortest repr).
    trade_id = trade.get("id")
    return TradeRecord(
        time_ms=int_ms(trade.get("timestamp"), "timestamp"),
        price=exact_decimal(trade.get("price"), "price"),
        qty=exact_decimal(trade.get("amount"), "amount") * contract_size,
        side=Side.BUY if trade.get("side") == "buy" else Side.SELL,
        trade_id=None if trade_id is None else str(trade_id),
    )


def futures_deal(row: dict[str, Any], contract_size: Decimal) -> TradeRecord:
    """`{"p":..,"v":..,"T":1|2,"t":ms}` from push.deal or /contract/deals (no id)."""
    return TradeRecord(
        time_ms=int_ms(row.get("t"), "t"),
        price=exact_decimal(row.get("p"), "p"),
        qty=exact_decimal(row.get("v"), "v") * contract_size,
        side=_side_from_type(row.get("T")),
        trade_id=None,
    )


def spot_agg_trade(row: dict[str, Any]) -> TradeRecord:
    """`/api/v3/aggTrades` row; `m` true means the buyer was the maker, so the taker sold."""
    trade_id = row.get("a")
    return TradeRecord(
        time_ms=int_ms(row.get("T"), "T"),
        price=exact_decimal(row.get("p"), "p"),
        qty=exact_decimal(row.get("q"), "q"),
        side=Side.SELL if row.get("m") in (True, "true") else Side.BUY,
        trade_id=None if trade_id in (None, "") else str(trade_id),
    )


def spot_kline_row(row: list[Any], symbol_id: str, timeframe: str) -> RawKline:
    """`/api/v3/klines` row: [openTime, "o", "h", "l", "c", "v", closeTime, "quoteVolume"]."""
    return RawKline(symbol_id, timeframe, int_ms(row[0], "openTime"), *row[1:6])


def futures_kline_rows(data: dict[str, Any], symbol_id: str, timeframe: str) -> list[RawKline]:
    """Columnar `/contract/kline` data; `time` is in seconds, `vol` in contracts."""
    times = data.get("time") or []
    columns = [data.get(k) or [] for k in ("open", "high", "low", "close", "vol")]
    return [
        RawKline(symbol_id, timeframe, int_ms(t, "time") * 1000, *(col[i] for col in columns))
        for i, t in enumerate(times)
    ]


def trade_event(exchange: str, market: str, symbol: str, record: TradeRecord, key: str) -> Trade:
    return Trade(
        event_id=derive_id("mkt", exchange, market, symbol, "trade", key),
        ts=utc_ms(record.time_ms),
        cause_id=None,
        symbol=symbol,
        price=record.price,
        qty=record.qty,
        side=record.side,
        trade_id=record.trade_id or key,
    )


def candle_event(
    exchange: str, market: str, symbol: str, kline: RawKline, interval_s: int, volume_scale: Decimal
) -> Candle:
    open_time = utc_ms(kline.open_ms)
    return Candle(
        event_id=derive_id("mkt", exchange, market, symbol, "candle", interval_s, kline.open_ms),
        ts=utc_ms(kline.open_ms + interval_s * 1000),  # a candle is known at its close
        cause_id=None,
        symbol=symbol,
        open_time=open_time,
        interval_s=interval_s,
        open=exact_decimal(kline.open, "open"),
        high=exact_decimal(kline.high, "high"),
        low=exact_decimal(kline.low, "low"),
        close=exact_decimal(kline.close, "close"),
        volume=exact_decimal(kline.volume, "volume") * volume_scale,
    )


def quote_event(
    exchange: str, market: str, symbol: str, raw: RawBookTicker, time_ms: int, qty_scale: Decimal
) -> Quote:
    """The best bid and ask; raises for a missing side, a bad number or a crossed book.

    `time_ms` is the exchange's stamp on the message (or its clock when unstamped);
    futures sizes are contracts, scaled to base units by `qty_scale`.
    """
    bid, ask = exact_decimal(raw.bid, "bid"), exact_decimal(raw.ask, "ask")
    bid_qty = exact_decimal(raw.bid_qty, "bid quantity") * qty_scale
    ask_qty = exact_decimal(raw.ask_qty, "ask quantity") * qty_scale
    return Quote(
        event_id=derive_id(
            "mkt", exchange, market, symbol, "quote", time_ms, bid, ask, raw.version or ""
        ),
        ts=utc_ms(time_ms),
        cause_id=None,
        symbol=symbol,
        bid=bid,
        ask=ask,
        bid_qty=bid_qty,
        ask_qty=ask_qty,
    )


def heartbeat_event(exchange: str, market: str, symbol: str, time_ms: int) -> Heartbeat:
    """The feed heard about `symbol` at exchange time `time_ms` and had nothing else to say."""
    return Heartbeat(
        event_id=derive_id("mkt", exchange, market, symbol, "heartbeat", time_ms),
        ts=utc_ms(time_ms),
        cause_id=None,
        symbol=symbol,
    )


def book_from_ccxt_ticker(symbol_id: str, ticker: dict[str, Any]) -> RawBookTicker:
    """ccxt's unified ticker (floats, via their shortest repr) for exchanges other than MEXC."""
    stamp = ticker.get("timestamp")
    return RawBookTicker(
        symbol_id,
        int(stamp) if isinstance(stamp, int | float) and stamp > 0 else None,
        ticker.get("bid"),
        ticker.get("bidVolume"),
        ticker.get("ask"),
        ticker.get("askVolume"),
    )
