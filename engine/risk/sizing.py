"""Position sizing as pure functions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise

from engine.events import ZERO


def fixed_fraction_notional(equity: Decimal, fraction: Decimal) -> Decimal:
    return max(equity, ZERO) * fraction


def realized_volatility(closes: Sequence[float]) -> float | None:
    """Standard deviation of log returns per bar; None with fewer than two returns."""
    if len(closes) < 3:
        return None
    returns = [math.log(b / a) for a, b in pairwise(closes) if a > 0 and b > 0]
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return math.sqrt(variance)


def volatility_scaled_notional(
    equity: Decimal,
    base_fraction: Decimal,
    target_daily_vol: Decimal,
    bar_vol: float | None,
    bars_per_day: float,
) -> Decimal:
    """Scale the base fraction by target / realized daily volatility (never above 1x... 3x).

    Calm markets get larger positions and wild ones smaller; the result is capped
    at three times the base fraction and always by the position limit later on.
    """
    if bar_vol is None or bar_vol <= 0:
        return fixed_fraction_notional(equity, base_fraction)
    daily = Decimal(repr(bar_vol * math.sqrt(bars_per_day)))
    scale = min(target_daily_vol / daily, Decimal(3))
    return fixed_fraction_notional(equity, base_fraction * scale)


@dataclass(frozen=True, slots=True)
class Headroom:
    """How much more notional each limit allows; the smallest one binds."""

    position: Decimal
    exposure: Decimal
    cash: Decimal

    def binding(self) -> tuple[str, Decimal]:
        limits = {
            "max_position": self.position,
            "max_total_exposure": self.exposure,
            "insufficient_cash": self.cash,
        }
        name = min(limits, key=lambda k: limits[k])
        return name, max(limits[name], ZERO)


def entry_headroom(
    equity: Decimal,
    max_position_pct: Decimal,
    max_exposure_pct: Decimal,
    symbol_notional: Decimal,
    total_notional: Decimal,
    free_cash: Decimal,
    cost_rate: Decimal,
) -> Headroom:
    """Room for a new entry: position and exposure limits (with in-flight) and spendable cash.

    `cost_rate` covers the taker fee and the worst slippage expected, so a buy that
    passes here can still be paid for when it fills a little higher.
    """
    return Headroom(
        position=equity * max_position_pct - symbol_notional,
        exposure=equity * max_exposure_pct - total_notional,
        cash=free_cash / (1 + cost_rate),
    )
