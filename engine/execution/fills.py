"""The paper fill model as pure functions: spread, slippage, participation, price bounds.

A taker fill starts from the market as it stood when the order arrived (on a candle:
the intra-bar path at `order.ts + latency`, see `path.py`; on a trade: the middle
between the print and the other side of the book), pays half the spread and then
slippage = base bps + impact bps * sqrt(share of the volume the order could meet).
The result is rounded onto the tick grid against the trader and, on a candle, kept
inside the bar's low-high range: paper never fills at a price the market did not
trade. A resting limit order fills at exactly its limit as maker, never better.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.events import ZERO, Liquidity, Side
from engine.markets import SymbolSpec

BPS = Decimal(10000)
_BPS_QUANTUM = Decimal("0.0001")


def slippage_bps(base_bps: Decimal, impact_bps: Decimal, qty: Decimal, volume: Decimal) -> Decimal:
    """Square-root impact: doubling the share of volume costs about 41 % more."""
    if volume <= 0:
        return base_bps + impact_bps
    share = min(qty / volume, Decimal(1))
    return base_bps + impact_bps * share.sqrt()


def fillable_qty(
    remaining: Decimal,
    volume: Decimal,
    participation_cap: Decimal,
    already_used: Decimal,
    spec: SymbolSpec,
) -> Decimal:
    """How much of an order this chance can take: a capped share of the volume, in lots."""
    room = volume * participation_cap - already_used
    if room <= 0:
        return ZERO
    return spec.floor_qty(min(remaining, room))


def bounded(price: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return min(max(price, low), high)


def cost_bps(side: Side, reference: Decimal, fill: Decimal) -> Decimal:
    """Signed cost in bps: positive when the fill is worse than the reference."""
    return ((fill - reference) * side.sign / reference * BPS).quantize(_BPS_QUANTUM)


@dataclass(frozen=True, slots=True)
class FillQuote:
    price: Decimal
    reference: Decimal  # the market the order met (or its limit, for a resting fill)
    spread_bps: Decimal  # half spread paid, in bps of the reference
    slippage_bps: Decimal  # the rest of the cost: impact and tick rounding
    liquidity: Liquidity


def taker_fill(
    side: Side,
    reference: Decimal,
    half_spread_bps: Decimal,
    qty: Decimal,
    volume: Decimal,
    spec: SymbolSpec,
    base_bps: Decimal,
    impact_bps: Decimal,
    bounds: tuple[Decimal, Decimal] | None,
) -> FillQuote:
    """Price a taker fill of `qty` that meets the market at `reference` (a mid price).

    `bounds` is the bar's low-high range on candles (a fill stays inside it), None on
    trades. The recorded spread is the part of the cost that the spread explains; the
    slippage is the rest, so spread + slippage is the whole cost against `reference`.
    """
    impact = slippage_bps(base_bps, impact_bps, qty, volume)
    raw = reference * (1 + side.sign * (half_spread_bps + impact) / BPS)
    price = spec.adverse_price(raw, side)
    if bounds is not None:
        price = bounded(price, *bounds)
    total = cost_bps(side, reference, price)
    spread = min(half_spread_bps.quantize(_BPS_QUANTUM), max(total, ZERO))
    return FillQuote(price, reference, spread, total - spread, Liquidity.TAKER)


def limit_is_marketable(side: Side, limit: Decimal, touch: Decimal) -> bool:
    """Whether a limit meets the other side of the book (`touch`: the ask for a buy)."""
    return touch <= limit if side is Side.BUY else touch >= limit


def capped_at_limit(quote: FillQuote, side: Side, limit: Decimal) -> FillQuote:
    """A marketable limit takes liquidity, never beyond its limit."""
    price = min(quote.price, limit) if side is Side.BUY else max(quote.price, limit)
    if price == quote.price:
        return quote
    total = cost_bps(side, quote.reference, price)
    spread = min(quote.spread_bps, max(total, ZERO))
    return FillQuote(price, quote.reference, spread, total - spread, quote.liquidity)


def traded_through(side: Side, limit: Decimal, low: Decimal, high: Decimal) -> bool:
    """A resting limit fills only when the market trades through it (a touch is not enough)."""
    return low < limit if side is Side.BUY else high > limit


def resting_fill(limit: Decimal) -> FillQuote:
    """A resting limit fills at exactly its price as maker: never better, even on a gap."""
    return FillQuote(limit, limit, ZERO, ZERO, Liquidity.MAKER)


def fee(qty: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    return qty * price * rate
