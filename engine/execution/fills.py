"""The paper fill model as pure functions: slippage, participation, price bounds.

A market order fills at the reference price of the first market event at or after
its time plus latency (a candle's open: the first price the order could meet),
moved against the order by slippage = base bps + impact bps * sqrt(share of the
bar's volume). The result is rounded onto the tick grid against the trader and
kept inside the bar's low-high range: paper never fills at a price the market
did not trade.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.events import ZERO, Liquidity, Side
from engine.markets import SymbolSpec

BPS = Decimal(10000)
_BPS_QUANTUM = Decimal("0.0001")


def slippage_bps(
    base_bps: Decimal, impact_bps: Decimal, qty: Decimal, bar_volume: Decimal
) -> Decimal:
    """Square-root impact: doubling the share of volume costs about 41 % more."""
    if bar_volume <= 0:
        return base_bps
    share = min(qty / bar_volume, Decimal(1))
    return base_bps + impact_bps * share.sqrt()


def fillable_qty(
    remaining: Decimal,
    bar_volume: Decimal,
    participation_cap: Decimal,
    already_used: Decimal,
    spec: SymbolSpec,
) -> Decimal:
    """How much of an order this bar can take: a capped share of its volume, in whole lots."""
    room = bar_volume * participation_cap - already_used
    if room <= 0:
        return ZERO
    return spec.floor_qty(min(remaining, room))


def bounded(price: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return min(max(price, low), high)


def realized_slippage_bps(side: Side, reference: Decimal, fill: Decimal) -> Decimal:
    """Signed cost in bps: positive when the fill is worse than the reference."""
    return ((fill - reference) * side.sign / reference * BPS).quantize(_BPS_QUANTUM)


@dataclass(frozen=True, slots=True)
class FillQuote:
    price: Decimal
    reference: Decimal
    slippage_bps: Decimal
    liquidity: Liquidity


def market_fill(
    side: Side,
    reference: Decimal,
    qty: Decimal,
    bar_volume: Decimal,
    low: Decimal,
    high: Decimal,
    spec: SymbolSpec,
    base_bps: Decimal,
    impact_bps: Decimal,
) -> FillQuote:
    """Price a taker fill of `qty` against a bar (or a trade, where low == high)."""
    bps = slippage_bps(base_bps, impact_bps, qty, bar_volume)
    raw = reference * (1 + side.sign * bps / BPS)
    price = bounded(spec.adverse_price(raw, side), low, high)
    return FillQuote(
        price, reference, realized_slippage_bps(side, reference, price), Liquidity.TAKER
    )


def limit_fill(
    side: Side,
    limit: Decimal,
    open_price: Decimal,
    low: Decimal,
    high: Decimal,
    first_bar: bool,
    qty: Decimal,
    bar_volume: Decimal,
    spec: SymbolSpec,
    base_bps: Decimal,
    impact_bps: Decimal,
) -> FillQuote | None:
    """A limit order fills only when the market trades through its price.

    On the first bar an order whose limit is already marketable at the open takes
    liquidity like a market order, never beyond its limit. A resting order fills
    at its limit when the bar trades through it, or at the open when the bar
    gaps through it; resting fills are maker fills with no slippage.
    """
    marketable_at_open = open_price <= limit if side is Side.BUY else open_price >= limit
    if first_bar and marketable_at_open:
        quote = market_fill(
            side, open_price, qty, bar_volume, low, high, spec, base_bps, impact_bps
        )
        price = min(quote.price, limit) if side is Side.BUY else max(quote.price, limit)
        return FillQuote(
            price, open_price, realized_slippage_bps(side, open_price, price), Liquidity.TAKER
        )
    if marketable_at_open:
        return FillQuote(
            open_price, limit, realized_slippage_bps(side, limit, open_price), Liquidity.MAKER
        )
    traded_through = low < limit if side is Side.BUY else high > limit
    if not traded_through:
        return None
    return FillQuote(limit, limit, ZERO, Liquidity.MAKER)


def fee(qty: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    return qty * price * rate
