"""The whole pipeline over seven days of the four shipped 5-minute symbols."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from engine.config import Settings, load_settings
from engine.events import (
    Candle,
    Event,
    Intent,
    Order,
    OrderResult,
    RiskEvent,
    Side,
    Signal,
    TradingState,
)
from engine.execution.fills import widened
from engine.kernel.pipeline import Pipeline, RunSummary, run_replay

D = Decimal


@dataclass
class Run:
    summary: RunSummary
    pipeline: Pipeline
    events: list[Event] = field(default_factory=list)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def fills(self) -> list[OrderResult]:
        return [r for r in self.of(OrderResult) if r.status.is_fill]


def replay(files: list[Path], **overrides: str) -> Run:
    settings = load_settings(initial_capital="10", **overrides)
    seen: list[Event] = []
    summary, pipeline = run_replay(settings, files, days=7, observers=[seen.append])
    return Run(summary, pipeline, seen)


@pytest.fixture(scope="module")
def default_run(four_symbols: list[Path]) -> Run:
    return replay(four_symbols)


TIGHT = {
    "max_daily_drawdown_pct": "0.005",
    "circuit_breaker_threshold_pct": "0.02",
    "position_size_pct": "0.1",
}


@pytest.fixture(scope="module")
def tight_run(four_symbols: list[Path]) -> Run:
    return replay(four_symbols, **TIGHT)


def test_the_default_strategy_trades_more_than_one_symbol(default_run: Run) -> None:
    s = default_run.summary
    assert s.market_events == 4 * 2016 - 40  # ADA and DASH have real gaps in the window
    assert len(s.pnl_by_symbol) >= 2
    assert s.fills > 0 and s.round_trips > 0


def test_same_data_and_config_give_identical_fills(
    four_symbols: list[Path], default_run: Run
) -> None:
    again = replay(four_symbols)

    def key(run: Run) -> list[tuple]:
        return [
            (f.event_id, f.order_id, f.ts, f.symbol, f.side, f.qty, f.price, f.fee)
            for f in run.fills
        ]

    assert key(again) == key(default_run)
    assert again.summary == default_run.summary


@pytest.mark.parametrize("run_name", ["default_run", "tight_run"])
def test_limits_hold_at_every_decision_and_fills_stay_inside_their_bar(
    run_name: str, request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(run_name)
    settings: Settings = run.pipeline.settings
    cash = settings.initial_capital
    marks: dict[str, D] = {}
    bars: dict[str, Candle] = {}
    held: dict[str, D] = {}
    in_flight: dict[str, tuple[Order, D]] = {}
    state = TradingState.ACTIVE
    signals: set[str] = set()
    checked = 0
    for event in run.events:
        if isinstance(event, Candle):
            marks[event.symbol] = event.close
            bars[event.event_id] = event
        elif isinstance(event, Signal):
            signals.add(event.event_id)
        elif isinstance(event, RiskEvent) and event.kind == "state_change":
            state = event.state
        elif isinstance(event, OrderResult):
            order, _ = in_flight[event.order_id]
            if event.status.is_fill:
                bar = bars[event.market_event_id]  # type: ignore[index]
                # Inside the bar widened by the half spread the fill paid, never further.
                spec, half = run.pipeline.specs[event.symbol], event.spread_bps
                low, high = (
                    widened(Side.SELL, bar.low, half, spec),
                    widened(Side.BUY, bar.high, half, spec),
                )
                assert low <= event.price <= high, event
                assert event.ts >= order.ts  # never before the decision
                sign = 1 if event.side is Side.BUY else -1
                held[event.symbol] = held.get(event.symbol, D(0)) + sign * event.qty
                cash -= sign * event.qty * event.price + event.fee  # type: ignore[operator]
                assert cash >= 0 and held[event.symbol] >= 0
            if event.remaining_qty == 0 or not event.status.is_fill:
                del in_flight[event.order_id]  # filled, or ended with what it left
            else:
                in_flight[event.order_id] = (order, event.remaining_qty)
        elif isinstance(event, Order):
            if event.intent is Intent.ENTRY:
                assert state is TradingState.ACTIVE, f"entry approved while {state}"
                equity = cash + sum(q * marks[s] for s, q in held.items())
                buys = [(o, r) for o, r in in_flight.values() if o.side is Side.BUY]
                symbol_open = held.get(event.symbol, D(0)) * marks[event.symbol] + sum(
                    r * marks[o.symbol] for o, r in buys if o.symbol == event.symbol
                )
                total_open = sum(q * marks[s] for s, q in held.items()) + sum(
                    r * marks[o.symbol] for o, r in buys
                )
                assert symbol_open + event.notional <= equity * settings.max_position_pct
                assert total_open + event.notional <= equity * settings.max_total_exposure_pct
                checked += 1
            else:
                # While halted the only exits are the breaker's own flattening.
                assert state is not TradingState.HALTED or event.cause_id not in signals
            in_flight[event.order_id] = (event, event.qty)
    assert checked > 10
    final = cash + sum(q * marks[s] for s, q in held.items())
    assert final == run.summary.equity


@pytest.mark.parametrize("run_name", ["default_run", "tight_run"])
def test_final_equity_is_capital_plus_pnl_minus_fees_exactly(
    run_name: str, request: pytest.FixtureRequest
) -> None:
    s: RunSummary = request.getfixturevalue(run_name).summary
    assert s.equity == s.initial_capital + s.realized_pnl + s.unrealized_pnl - s.fees
    assert s.fees > 0


def test_tight_limits_reduce_then_reactivate_next_utc_day_then_halt(tight_run: Run) -> None:
    changes = [
        (e.ts, e.detail["from"], e.state)
        for e in tight_run.of(RiskEvent)
        if e.kind == "state_change"
    ]
    states = [to for _, _, to in changes]
    assert states[0] is TradingState.REDUCING
    assert states[1] is TradingState.ACTIVE
    reduced_at, back_at = changes[0][0], changes[1][0]
    assert back_at.date() > reduced_at.date()
    assert (back_at.hour, back_at.minute) == (0, 0)
    assert states[-1] is TradingState.HALTED
    assert TradingState.HALTED not in states[:-1]  # nothing leaves HALTED by itself
    refusals = tight_run.summary.risk_refusals
    assert refusals.get("reducing_only_exits", 0) > 0 and refusals.get("halted", 0) > 0
    halted_at = changes[-1][0]
    # After the halt only the breaker's flattening trades: market exits no signal caused.
    signals = {s.event_id for s in tight_run.of(Signal)}
    after = [o for o in tight_run.of(Order) if o.ts >= halted_at]
    assert all(o.intent is Intent.EXIT and o.cause_id not in signals for o in after)
    assert tight_run.summary.open_positions == []
    assert tight_run.summary.trading_state == "halted"
    assert tight_run.summary.alerts >= 2
