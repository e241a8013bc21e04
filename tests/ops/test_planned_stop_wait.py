"""How long a planned stop waits to be flat: while closing fills keep coming."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from engine.config import load_settings
from engine.feeds.replay import plan_replay
from engine.kernel.pipeline import build_replay_pipeline, by_time
from engine.ops.control import Command, CommandKind, CommandStatus
from engine.run.steward import (
    STOP_WAIT_MARKET,
    STOP_WAIT_MARKET_TOTAL,
    STOP_WAIT_WALL_S,
    PlannedStop,
)
from engine.signal.loader import StrategyChoice

T0 = datetime(2018, 1, 12, 17, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
STOP = Command(1, "run-1", CommandKind.STOP, "end of the test", "ops@host", T0, CommandStatus.TAKEN)


def waiting(held: str = "6") -> PlannedStop:
    stop = PlannedStop(STOP, T0, 0.0)
    assert not stop.waited_too_long(Decimal(held), T0, 0.0)
    return stop


def test_a_close_that_keeps_filling_is_waited_for_past_an_hour() -> None:
    stop = waiting("6")
    for n, held in enumerate(["5", "4", "3", "2", "1"], start=1):
        at = T0 + n * 50 * MINUTE  # a closing fill every 50 minutes
        assert not stop.waited_too_long(Decimal(held), at, float(n))


def test_an_hour_without_a_closing_fill_ends_the_wait() -> None:
    stop = waiting("6")
    assert not stop.waited_too_long(Decimal("5"), T0 + 30 * MINUTE, 1.0)
    assert not stop.waited_too_long(Decimal("5"), T0 + 89 * MINUTE, 2.0)
    assert stop.waited_too_long(Decimal("5"), T0 + 30 * MINUTE + STOP_WAIT_MARKET, 3.0)


@given(st.integers(min_value=1, max_value=10_000))
def test_a_day_of_market_time_or_two_minutes_of_wall_time_end_any_wait(fills: int) -> None:
    stop = waiting(str(fills + 1))
    step = STOP_WAIT_MARKET_TOTAL / (fills + 1)
    for n in range(1, fills + 1):  # a fill each step, never an hour apart
        assert not stop.waited_too_long(Decimal(fills + 1 - n), T0 + n * step, 0.0)
    assert stop.waited_too_long(Decimal(0), T0 + STOP_WAIT_MARKET_TOTAL, 0.0)
    assert waiting().waited_too_long(Decimal("6"), T0 + MINUTE, STOP_WAIT_WALL_S)
    assert not waiting().waited_too_long(Decimal("6"), T0 + MINUTE, STOP_WAIT_WALL_S - 1)


def test_a_thin_market_takes_over_an_hour_to_leave_filling_all_along(
    four_symbols: list[Path],
) -> None:
    """DASH/BTC on 12 January 2018: a close at market of what the run holds there takes
    10 % of each bar's volume, 1 h 5 min in all, with a fill every few bars."""
    settings = load_settings(initial_capital="10")
    plan = plan_replay(four_symbols, 7)
    strategy = StrategyChoice(settings.strategy).build()
    pipeline = build_replay_pipeline(settings, plan, strategy, [])
    stop: PlannedStop | None = None
    held: list[tuple[datetime, Decimal]] = []
    for group in by_time(plan.events()):
        pipeline.process_group(group)
        at = group[0].ts
        if stop is None and at >= T0:
            assert pipeline.portfolio.positions["DASHBTC"].qty > 0
            pipeline.close_out("planned stop")
            stop = PlannedStop(STOP, at, 0.0)
        if stop is not None:
            left = sum((abs(p.qty) for p in pipeline.portfolio.positions.values()), Decimal(0))
            held.append((at, left))
            if pipeline.is_flat():
                break
            assert not stop.waited_too_long(left, at, 0.0)
    assert stop is not None and pipeline.is_flat()
    assert held[-1][0] - T0 > STOP_WAIT_MARKET  # the old rule gave up with DASHBTC held
