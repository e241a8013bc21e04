"""The paper fill model as pure functions: spread, slippage, participation, price bounds.

A taker fill starts from the market as it stood when the order arrived (on a candle:
the intra-bar path at `order.ts + latency`, see `path.py`; on a trade: the middle
between the print and the other side of the book), pays half the spread and then
slippage = base bps + impact bps * sqrt(share of the volume the order could meet).
The result is rounded onto the tick grid against the trader. The half spread is
always paid in full against the middle the order met: a buy in a bar that traded
at one price pays the ask, above that price. Only the slippage is limited, on a
candle, by the range the market covered after the order arrived, widened by the
half spread: a taker fill lies outside its bar's range by at most the half spread
it pays, never further. A resting limit order fills at exactly its limit as maker,
never better.
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


def widened(side: Side, bound: Decimal, half_spread_bps: Decimal, spec: SymbolSpec) -> Decimal:
    """The farthest a taker fill may go: the range's far end plus the half spread, on the grid.

    `bound` is the high of the range for a buy, its low for a sell.
    """
    return spec.adverse_price(bound * (1 + side.sign * half_spread_bps / BPS), side)


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

    `bounds` is, on candles, the low-high range the market covers from the order's
    arrival to the bar's end; None on trades. The whole half spread is paid whatever
    the range (the touch: the ask for a buy, on the tick grid); slippage beyond it
    goes at most to the range widened by the half spread. The recorded spread is the
    half spread; the slippage is the rest (impact and tick rounding), so spread +
    slippage is the whole cost against `reference`.
    """
    impact = slippage_bps(base_bps, impact_bps, qty, volume)
    half_spread_bps = half_spread_bps.quantize(_BPS_QUANTUM)  # what the fill records
    touch = spec.adverse_price(reference * (1 + side.sign * half_spread_bps / BPS), side)
    price = spec.adverse_price(reference * (1 + side.sign * (half_spread_bps + impact) / BPS), side)
    if bounds is not None:
        far = widened(side, bounds[1] if side is Side.BUY else bounds[0], half_spread_bps, spec)
        price = max(touch, min(price, far)) if side is Side.BUY else min(touch, max(price, far))
    total = cost_bps(side, reference, price)
    return FillQuote(price, reference, half_spread_bps, total - half_spread_bps, Liquidity.TAKER)


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
