"""The trading state machine as a pure function.

ACTIVE -> REDUCING when equity falls `max_daily_drawdown_pct` below the UTC day's
start equity (only exits until the next UTC day); any state -> HALTED when equity
falls `circuit_breaker_threshold_pct` below its peak (nothing trades until an
operator resumes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from engine.events import TradingState


@dataclass(frozen=True, slots=True)
class Transition:
    state: TradingState
    reason: str


def next_state(
    state: TradingState,
    reducing_since: date | None,
    today: date,
    equity: Decimal,
    day_start_equity: Decimal,
    breaker_peak: Decimal,
    max_daily_drawdown_pct: Decimal,
    circuit_breaker_pct: Decimal,
) -> Transition | None:
    """The transition the numbers call for, or None to stay."""
    if state is TradingState.HALTED:
        return None
    if equity <= breaker_peak * (1 - circuit_breaker_pct):
        return Transition(TradingState.HALTED, "circuit_breaker")
    if state is TradingState.REDUCING:
        if reducing_since is not None and today > reducing_since:
            if equity <= day_start_equity * (1 - max_daily_drawdown_pct):
                return None  # a new day that starts below its own limit is impossible
            return Transition(TradingState.ACTIVE, "new_utc_day")
        return None
    if equity <= day_start_equity * (1 - max_daily_drawdown_pct):
        return Transition(TradingState.REDUCING, "daily_drawdown")
    return None
