"""Paper fills re-derived from the shipped data: latency, time to live, spread, limits, breaker."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from engine.events import (
    Candle,
    Intent,
    Liquidity,
    Order,
    OrderResult,
    OrderType,
    RiskEvent,
    Side,
    Signal,
    TradingState,
)
from engine.execution.fills import cost_bps
from engine.maths.path import bar_path
from engine.signal.base import Intent as StrategyIntent
from engine.signal.base import Strategy, StrategyContext
from tests.conftest import MARKET
from tests.replay.test_full_replay import Run, replay

D = Decimal
FUTURES_1H = MARKET / "futures" / "XRP_USDT-1h.csv"


@pytest.fixture(scope="module")
def default_run(four_symbols: list[Path]) -> Run:
    return replay(four_symbols)


def candles_by_id(run: Run) -> dict[str, Candle]:
    return {c.event_id: c for c in run.of(Candle)}


def taker_fills(run: Run) -> list[OrderResult]:
    return [f for f in run.fills if f.liquidity is Liquidity.TAKER]


# --- latency -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_run(four_symbols: list[Path]) -> Run:
    return replay(four_symbols, order_latency_ms="240000")


def test_latency_changes_the_fills(default_run: Run, slow_run: Run) -> None:
    def prices(run: Run) -> dict[str, D]:
        return {f.event_id: f.price for f in run.fills}

    fast, slow = prices(default_run), prices(slow_run)
    assert fast and slow and fast != slow
    same_ids = set(fast) & set(slow)
    assert any(fast[i] != slow[i] for i in same_ids)


@pytest.mark.parametrize("run_name", ["default_run", "slow_run"])
def test_no_fill_is_priced_before_its_order_arrived(
    run_name: str, request: pytest.FixtureRequest
) -> None:
    """The market an order meets is the intra-bar path at its arrival, or a later open."""
    run: Run = request.getfixturevalue(run_name)
    latency = timedelta(milliseconds=run.pipeline.settings.order_latency_ms)
    orders = {o.order_id: o for o in run.of(Order)}
    bars = candles_by_id(run)
    first_chance: dict[str, bool] = {}
    checked = 0
    for fill in taker_fills(run):
        order = orders[fill.order_id]
        bar = bars[fill.market_event_id]  # type: ignore[index]
        arrival = order.ts + latency
        met_at = max(arrival, bar.open_time)
        assert fill.ts == met_at >= arrival
        assert bar.open_time <= fill.ts <= bar.ts
        if order.order_type is OrderType.MARKET:
            assert fill.requested_price == bar_path(bar).price_at(met_at)
            if first_chance.setdefault(order.order_id, arrival > bar.open_time):
                checked += 1
    assert checked > 20  # fills priced inside their bar, not at its open


# --- time to live ----------------------------------------------------------------------


class EveryNBars(Strategy):
    """Buys one bar, sells the next ones: enough orders to see what a time to live allows."""

    name = "every-n-bars"

    def __init__(self, every: int = 6) -> None:
        self.every = every
        self.count: dict[str, int] = defaultdict(int)

    def on_candle(self, candle: Candle, context: StrategyContext) -> Iterable[StrategyIntent]:
        self.count[candle.symbol] += 1
        n = self.count[candle.symbol]
        if n % self.every == 0:
            held = context.position(candle.symbol)
            side = "sell" if held is not None and held.qty > 0 else "buy"
            return (StrategyIntent(candle.symbol, side, 1, f"bar {n}"),)
        return ()


def test_a_time_to_live_of_one_bar_fills_orders_on_five_minute_data(
    four_symbols: list[Path],
) -> None:
    run = replay(four_symbols, order_ttl_seconds="300")
    assert run.fills
    expired = [r for r in run.of(OrderResult) if r.status.value == "expired"]
    orders = {o.order_id: o for o in run.of(Order)}
    for result in expired:
        assert result.ts == orders[result.order_id].ts + timedelta(seconds=300)


def test_the_default_time_to_live_fills_orders_on_hourly_futures_candles() -> None:
    from engine.config import load_settings
    from engine.events import Event
    from engine.kernel.pipeline import run_replay

    seen: list[Event] = []
    settings = load_settings()
    assert settings.order_ttl_seconds == 900 < 3600
    summary, _ = run_replay(settings, [FUTURES_1H], strategy=EveryNBars(), observers=[seen.append])
    fills = [e for e in seen if isinstance(e, OrderResult) and e.status.is_fill]
    assert summary.fills == len(fills) > 5
    orders = {o.order_id: o for o in seen if isinstance(o, Order)}
    for fill in fills:  # only the volume of the first 900 s of the bar was there to take
        assert fill.ts <= orders[fill.order_id].ts + timedelta(seconds=900)


# --- spread ------------------------------------------------------------------------------


def test_the_trader_pays_on_average_against_the_decision_price(default_run: Run) -> None:
    orders = {o.order_id: o for o in default_run.of(Order)}
    fills = taker_fills(default_run)
    costs = [cost_bps(f.side, orders[f.order_id].decision_price, f.price) for f in fills]
    assert len(costs) > 100
    assert sum(costs) / len(costs) > 0
    assert all(f.spread_bps >= 0 for f in default_run.fills)
    bars = candles_by_id(default_run)
    for f in fills:  # a fill pays the spread unless the bar's range leaves no room for it
        bar = bars[f.market_event_id]  # type: ignore[index]
        assert f.spread_bps > 0 or f.price == (bar.high if f.side is Side.BUY else bar.low)


def test_a_fixed_spread_setting_is_paid_by_every_taker_fill(four_symbols: list[Path]) -> None:
    run = replay(four_symbols, spread_bps="20")
    fills = taker_fills(run)
    assert fills
    bars = candles_by_id(run)
    for f in fills:
        bar = bars[f.market_event_id]  # type: ignore[index]
        clamped = f.price in (bar.low, bar.high)
        assert f.spread_bps == D(10) or (clamped and f.spread_bps < D(10))


# --- limit orders ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limit_run(four_symbols: list[Path]) -> Run:
    return replay(four_symbols, strategy="engine.signal.pullback:PullbackLimitStrategy")


def test_a_limit_strategy_trades_with_resting_maker_fills_at_exactly_the_limit(
    limit_run: Run,
) -> None:
    orders = {o.order_id: o for o in limit_run.of(Order)}
    limits = [o for o in orders.values() if o.order_type is OrderType.LIMIT]
    assert limits and all(o.limit_price is not None and o.post_only for o in limits)
    maker = [f for f in limit_run.fills if f.liquidity is Liquidity.MAKER]
    assert len(maker) > 5
    assert {f.side for f in maker} == {Side.BUY, Side.SELL}
    bars = candles_by_id(limit_run)
    for fill in maker:
        order = orders[fill.order_id]
        assert fill.price == order.limit_price
        bar = bars[fill.market_event_id]  # type: ignore[index]
        # It filled because the market traded through the limit after the order arrived.
        low, high = bar_path(bar).range_from(fill.ts)
        assert low < fill.price if fill.side is Side.BUY else high > fill.price
        assert fill.fee == 0 and fill.spread_bps == 0
    for fill in limit_run.fills:
        limit = orders[fill.order_id].limit_price
        if limit is not None:  # never a better price than the limit, even on a gap
            assert fill.price >= limit if fill.side is Side.SELL else fill.price <= limit
    s = limit_run.summary
    assert s.equity == s.initial_capital + s.realized_pnl + s.unrealized_pnl - s.fees


def test_a_post_only_order_that_would_take_liquidity_is_rejected() -> None:
    from engine.config import load_settings
    from engine.events import Event
    from engine.kernel.pipeline import Pipeline
    from engine.markets import SymbolSpec
    from tests.unit.test_services import T0, candle

    class CrossingBid(Strategy):
        def on_candle(self, c: Candle, context: StrategyContext) -> Iterable[StrategyIntent]:
            if c.event_id == "ETHBTC-0":
                return (StrategyIntent("ETHBTC", "buy", 1, "x", limit_price=2, post_only=True),)
            return ()

    spec = SymbolSpec("ETHBTC", "ETH", "BTC", D("0.00000001"), D("0.001"), D(0), D("0.0005"))
    seen: list[Event] = []
    settings = load_settings(initial_capital="10", stale_data_seconds=600)
    pipeline = Pipeline(settings, {"ETHBTC": spec}, CrossingBid(), observers=[seen.append])
    pipeline.process(candle("ETHBTC", 0))
    pipeline.process(candle("ETHBTC", 1))
    [result] = [e for e in seen if isinstance(e, OrderResult)]
    assert result.status.value == "rejected" and result.reason.startswith("post_only")
    assert result.ts == T0 + timedelta(minutes=5, milliseconds=200)


# --- circuit breaker -----------------------------------------------------------------------

# Tight limits that trip the breaker with one, and with three positions open.
BREAKERS = [
    {"circuit_breaker_threshold_pct": "0.03"},
    {"circuit_breaker_threshold_pct": "0.02", "position_size_pct": "0.1"},
]


def halted_at(run: Run) -> datetime:
    [halt] = [
        e for e in run.of(RiskEvent) if e.kind == "state_change" and e.state is TradingState.HALTED
    ]
    return halt.ts


@pytest.mark.parametrize("limits", BREAKERS)
def test_the_breaker_flattens_then_approves_nothing_until_resumed(
    four_symbols: list[Path], limits: dict[str, str]
) -> None:
    run = replay(four_symbols, **limits)
    at = halted_at(run)
    after = [o for o in run.of(Order) if o.ts >= at]
    assert after, "positions were open when the breaker tripped"
    assert all(o.side is Side.SELL and o.intent is Intent.EXIT for o in after)
    assert all(o.order_type is OrderType.MARKET for o in after)
    signals = {s.event_id for s in run.of(Signal)}
    assert not [o for o in after if o.cause_id in signals], "a signal was approved while halted"
    assert run.summary.open_positions == []
    assert run.pipeline.portfolio.positions == {}
    assert run.summary.trading_state == "halted"
    assert run.summary.risk_refusals.get("halted", 0) > 0
    # The operator resumes, with a note, and trading is possible again.
    assert run.pipeline.resume_trading("drawdown reviewed; limits unchanged")
    change = [e for e in run.of(RiskEvent) if e.kind == "state_change"][-1]
    assert change.state is TradingState.ACTIVE and change.reason == "operator_resume"
    assert change.detail["note"] == "drawdown reviewed; limits unchanged"
    assert not run.pipeline.resume_trading("again")  # nothing to resume


@pytest.mark.parametrize("limits", BREAKERS)
def test_freeze_keeps_the_positions_and_refuses_every_order(
    four_symbols: list[Path], limits: dict[str, str]
) -> None:
    run = replay(four_symbols, circuit_breaker_action="freeze", **limits)
    at = halted_at(run)
    assert not [o for o in run.of(Order) if o.ts >= at]
    assert run.summary.open_positions, "positions were open when the breaker tripped"
    held_at_halt: dict[str, D] = defaultdict(D)
    for fill in run.fills:
        if fill.ts <= at:
            held_at_halt[fill.symbol] += fill.side.sign * fill.qty
    held = {p["symbol"]: D(p["qty"]) for p in run.summary.open_positions}
    assert held == {s: q for s, q in held_at_halt.items() if q}
    assert run.summary.risk_refusals.get("halted", 0) > 0


# --- consistent marks ----------------------------------------------------------------------


def test_state_changes_happen_when_equity_on_consistent_marks_crosses_a_limit(
    four_symbols: list[Path],
) -> None:
    """Recompute equity at the end of each timestamp from candles and fills alone."""
    limits = {"max_daily_drawdown_pct": "0.01", "circuit_breaker_threshold_pct": "0.03"}
    run = replay(four_symbols, position_size_pct="0.1", **limits)
    settings = run.pipeline.settings
    fills_by_bar: dict[str, list[OrderResult]] = defaultdict(list)
    for fill in run.fills:
        fills_by_bar[fill.market_event_id].append(fill)  # type: ignore[index]
    groups: dict[datetime, list[Candle]] = defaultdict(list)
    for c in run.of(Candle):
        groups[c.ts].append(c)

    cash, held, marks = settings.initial_capital, defaultdict(D), {}
    peak = day_start = last = settings.initial_capital
    day = None
    state, reducing_day = TradingState.ACTIVE, None
    expected: list[tuple[datetime, TradingState]] = []
    for ts in sorted(groups):
        for c in groups[ts]:
            marks[c.symbol] = c.close
            for f in fills_by_bar[c.event_id]:
                held[f.symbol] += f.side.sign * f.qty
                cash -= f.side.sign * f.qty * f.price + f.fee
        equity = cash + sum(q * marks[s] for s, q in held.items())
        if day is not None and ts.date() != day:
            midnight = ts.hour == ts.minute == ts.second == 0
            day_start = equity if midnight else last
        day, last = ts.date(), equity
        peak = max(peak, equity)
        if state is TradingState.HALTED:
            continue
        if equity <= peak * (1 - settings.circuit_breaker_threshold_pct):
            state = TradingState.HALTED
        elif state is TradingState.REDUCING:
            limit = day_start * (1 - settings.max_daily_drawdown_pct)
            if ts.date() > reducing_day and equity > limit:
                state = TradingState.ACTIVE
            else:
                continue
        elif equity <= day_start * (1 - settings.max_daily_drawdown_pct):
            state, reducing_day = TradingState.REDUCING, ts.date()
        else:
            continue
        expected.append((ts, state))

    recorded = [(e.ts, e.state) for e in run.of(RiskEvent) if e.kind == "state_change"]
    assert len(expected) >= 2
    assert recorded == expected
    assert run.summary.max_drawdown_frac > 0
