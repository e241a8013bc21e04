from __future__ import annotations

from datetime import date
from decimal import Decimal

from engine.events import TradingState
from engine.risk.state import next_state

D = Decimal
DAY = date(2018, 1, 10)


def step(
    state: TradingState,
    equity: str,
    day: date = DAY,
    since: date | None = None,
    day_start: str = "100",
    peak: str = "100",
) -> TradingState | None:
    t = next_state(state, since, day, D(equity), D(day_start), D(peak), D("0.05"), D("0.10"))
    return t.state if t else None


def test_daily_drawdown_moves_active_to_reducing() -> None:
    assert step(TradingState.ACTIVE, "95.01") is None
    assert step(TradingState.ACTIVE, "95") is TradingState.REDUCING


def test_reducing_returns_to_active_on_the_next_utc_day_only() -> None:
    assert step(TradingState.REDUCING, "99", since=DAY) is None
    assert (
        step(TradingState.REDUCING, "99", day=date(2018, 1, 11), since=DAY, day_start="99")
        is TradingState.ACTIVE
    )


def test_circuit_breaker_halts_from_any_state_and_halted_stays() -> None:
    assert step(TradingState.ACTIVE, "90", day_start="90") is TradingState.HALTED
    assert step(TradingState.REDUCING, "89", since=DAY) is TradingState.HALTED
    assert step(TradingState.HALTED, "200") is None
