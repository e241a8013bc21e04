"""Isolated-margin maths of a USDT-settled perpetual, as pure functions (MEXC's rules).

- Position margin (PM) = entry price x size / leverage, reserved at entry and
  released in proportion as the position is reduced.
- Maintenance margin (MM) = entry price x size x maintenance margin rate of the
  position's tier.
- Liquidation when PM + unrealized PnL <= MM at the fair (mark) price, which gives
  long LP = (MM - PM + entry x size) / size, short LP = (entry x size - MM + PM) / size.
  MEXC's example: 0.1 BTC at 50,000 with 25x and MMR 0.4 %: PM 200, MM 20, LP 48,200.
- Funding fee = position value at the fair price x funding rate: a positive rate
  makes longs pay and shorts receive, a negative one the reverse.
- PnL = (exit - entry) x size for a long, the reverse for a short.
"""

from __future__ import annotations

from decimal import Decimal

from engine.events import ZERO, Side


def position_margin(entry_notional: Decimal, leverage: Decimal) -> Decimal:
    return abs(entry_notional) / leverage


def maintenance_margin(entry_notional: Decimal, mmr: Decimal) -> Decimal:
    return abs(entry_notional) * mmr


def liquidation_price(
    side: Side, entry: Decimal, size: Decimal, margin: Decimal, mmr: Decimal
) -> Decimal:
    """The fair price at which an isolated position of `size` base units is liquidated."""
    size = abs(size)
    value = entry * size
    mm = value * mmr
    if side is Side.BUY:
        return max((mm - margin + value) / size, ZERO)
    return (value - mm + margin) / size


def liquidation_crossed(side: Side, liquidation: Decimal, low: Decimal, high: Decimal) -> bool:
    """Whether a fair price ranging over [low, high] reaches the liquidation price."""
    return low <= liquidation if side is Side.BUY else high >= liquidation


def funding_fee(qty: Decimal, fair_price: Decimal, rate: Decimal) -> Decimal:
    """What the position pays (positive) or receives (negative) at one settlement.

    `qty` is signed (longs positive): a long pays when the rate is positive.
    """
    return qty * fair_price * rate


def clamp_rate(rate: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return min(max(rate, low), high)


def pnl(qty: Decimal, entry: Decimal, exit_price: Decimal) -> Decimal:
    """Realized PnL of closing signed `qty` opened at `entry` at `exit_price`."""
    return qty * (exit_price - entry)
