"""Perpetuals through the whole pipeline: shorts, leverage, funding and liquidation."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from engine.config import load_settings
from engine.contracts import ContractTerms
from engine.events import (
    Alert,
    Candle,
    Event,
    FundingPayment,
    FundingSettlement,
    Liquidation,
    MarkPrice,
    Order,
    OrderResult,
    RiskEvent,
    Severity,
    Side,
)
from engine.kernel.pipeline import Pipeline
from engine.markets import SymbolSpec
from engine.perp.margin import liquidation_price, position_margin
from engine.signal.base import Intent, Strategy, StrategyContext

D = Decimal
T0 = datetime(2021, 11, 17, tzinfo=UTC)
TERMS = ContractTerms(
    settle="USDT",
    contract_size=D(1),
    maintenance_margin_rate=D("0.005"),
    initial_margin_rate=D("0.01"),
    max_leverage=D(100),
)
SPEC = SymbolSpec(
    "XRPUSDT", "XRP", "USDT", D("0.0001"), D(1), D(0), D("0.0002"), D(1), contract=TERMS
)


def bar(n: int, o: str, h: str, lo: str, c: str, v: str = "1000000") -> Candle:
    start = T0 + timedelta(hours=n)
    return Candle(
        f"XRP-{n}", start + timedelta(hours=1), None, "XRPUSDT", start, 3600,
        D(o), D(h), D(lo), D(c), D(v),
    )  # fmt: skip


class Script(Strategy):
    name = "script"

    def __init__(self, script: dict[int, str]) -> None:
        self.script = script

    def on_candle(self, candle: Candle, context: StrategyContext) -> Iterable[Intent]:
        n = int(candle.event_id.split("-")[1])
        side = self.script.get(n)
        return (Intent("XRPUSDT", side, 1, f"bar {n}"),) if side else ()


def run(script: dict[int, str], events: list[Event], **settings: str) -> list[Event]:
    seen: list[Event] = []
    defaults = {
        "initial_capital": "1000",
        "position_size_pct": "0.1",
        "stale_data_seconds": "7200",
        "min_liquidation_distance_pct": "0.01",
    }
    config = load_settings(**(defaults | settings))
    pipeline = Pipeline(config, {"XRPUSDT": SPEC}, Script(script), observers=[seen.append])
    for event in events:
        pipeline.process(event)  # type: ignore[arg-type]
    seen.append(pipeline.portfolio.snapshot(pipeline.clock.now(), "final"))
    return seen


def of(seen: list[Event], kind: type) -> list:
    return [e for e in seen if isinstance(e, kind)]


def test_a_short_opens_on_a_sell_and_profits_when_the_price_falls() -> None:
    seen = run(
        {0: "sell", 2: "buy"},
        [bar(0, "1", "1.01", "0.99", "1"), bar(1, "1", "1", "0.9", "0.9"),
         bar(2, "0.9", "0.9", "0.8", "0.8"), bar(3, "0.8", "0.8", "0.8", "0.8")],
        leverage="5",
    )  # fmt: skip
    orders = of(seen, Order)
    assert [(o.side, o.intent.value) for o in orders] == [
        (Side.SELL, "entry"),
        (Side.BUY, "exit"),
    ]
    fills = [r for r in of(seen, OrderResult) if r.status.is_fill]
    assert sum(f.side.sign * f.qty for f in fills) == 0
    final = seen[-1]
    assert final.realized_pnl > 0 and final.positions == ()
    assert final.equity == D(1000) + final.realized_pnl - final.fees


def test_leverage_reserves_margin_not_notional() -> None:
    seen = run({0: "buy"}, [bar(0, "1", "1", "1", "1"), bar(1, "1", "1", "1", "1")], leverage="5")
    [order] = of(seen, Order)
    assert order.qty * order.decision_price == pytest.approx(D(100), rel=D("0.01"))
    snapshot = seen[-1]
    [view] = snapshot.positions
    assert view.perpetual and view.margin == abs(view.cost_basis) / 5
    assert snapshot.margin_used == view.margin
    # Only the fee left the wallet: a perpetual's cash does not pay the notional.
    assert snapshot.cash == D(1000) - snapshot.fees
    expected = liquidation_price(
        Side.BUY, view.avg_entry, view.qty, view.margin, TERMS.maintenance_margin_rate
    )
    assert view.liquidation_price == expected


def test_funding_is_paid_by_longs_at_a_positive_rate_at_the_fair_price() -> None:
    settle = T0 + timedelta(hours=8)
    events: list[Event] = [bar(0, "1", "1", "1", "1")]
    events += [bar(n, "1", "1", "1", "1") for n in range(1, 8)]
    events += [MarkPrice("m-8", settle, None, "XRPUSDT", D("1.05"))]
    events += [FundingSettlement("f-8", settle, None, "XRPUSDT", D("0.0001"))]
    events += [bar(8, "1", "1", "1", "1")]
    seen = run({0: "buy"}, events, leverage="2")
    [payment] = of(seen, FundingPayment)
    held = payment.qty
    assert held > 0 and payment.fair_price == D("1.05")
    assert payment.amount == held * D("1.05") * D("0.0001")
    final = seen[-1]
    assert final.funding == -payment.amount
    assert final.equity == (
        D(1000) + final.realized_pnl + final.unrealized_pnl - final.fees + final.funding
    )


def test_the_contract_bounds_the_funding_rate() -> None:
    settle = T0 + timedelta(hours=8)
    events: list[Event] = [bar(n, "1", "1", "1", "1") for n in range(8)]
    events += [FundingSettlement("f-8", settle, None, "XRPUSDT", D("-0.5"))]
    seen = run({0: "sell"}, events)
    [payment] = of(seen, FundingPayment)
    assert payment.rate == TERMS.min_funding_rate  # a short pays when the rate is negative
    assert payment.qty < 0 and payment.amount > 0


def test_a_crossed_liquidation_price_closes_at_that_price_and_loses_the_margin() -> None:
    events: list[Event] = [bar(0, "1", "1", "1", "1"), bar(1, "1", "1", "1", "1")]
    # The mark falls through the liquidation price of a 20x long (about 0.955).
    events += [MarkPrice("m-1", T0 + timedelta(hours=2, minutes=30), None, "XRPUSDT", D("0.97"))]
    events += [MarkPrice("m-2", T0 + timedelta(hours=2, minutes=40), None, "XRPUSDT", D("0.90"))]
    events += [bar(2, "1", "1", "0.9", "0.9"), bar(3, "0.9", "0.9", "0.9", "0.9")]
    seen = run({0: "buy"}, events, leverage="20", max_leverage="20")
    [liq] = of(seen, Liquidation)
    [entry] = [r for r in of(seen, OrderResult) if r.status.is_fill and r.side is Side.BUY]
    margin = position_margin(entry.qty * entry.price, D(20))
    level = liquidation_price(Side.BUY, entry.price, entry.qty, margin, D("0.005"))
    # Stamped when the mark's line from 0.97 to 0.90 first reached the level, not at 0.90.
    then = T0 + timedelta(hours=2, minutes=30)
    share = (level - D("0.97")) / (D("0.90") - D("0.97"))
    assert liq.ts == then + timedelta(minutes=10) * float(share)
    assert then < liq.ts < T0 + timedelta(hours=2, minutes=40)
    assert liq.margin_lost == margin
    assert liq.liquidation_price == SPEC.adverse_price(level, Side.SELL)
    [close] = [r for r in of(seen, OrderResult) if r.order_id == liq.order_id]
    assert close.price == liq.liquidation_price and close.qty == entry.qty
    final = seen[-1]
    assert final.positions == ()
    # Nothing of the margin comes back: the wallet lost it and the fees, nothing more.
    assert final.cash == D(1000) - margin - entry.fee
    [risk] = [e for e in of(seen, RiskEvent) if e.kind == "liquidation"]
    assert risk.symbol == "XRPUSDT" and D(risk.detail["margin_lost"]) == margin
    assert [a.severity for a in of(seen, Alert) if a.rule == "liquidation"] == [Severity.CRITICAL]


def test_an_entry_too_close_to_its_liquidation_price_is_refused() -> None:
    seen = run(
        {0: "buy"},
        [bar(0, "1", "1", "1", "1"), bar(1, "1", "1", "1", "1")],
        leverage="50",
        max_leverage="50",
        min_liquidation_distance_pct="0.05",
    )
    assert not of(seen, Order)
    [refusal] = of(seen, RiskEvent)
    assert refusal.reason == "liquidation_too_close"


def test_margin_usage_is_limited() -> None:
    seen = run(
        {0: "buy"},
        [bar(0, "1", "1", "1", "1"), bar(1, "1", "1", "1", "1")],
        leverage="1",
        position_size_pct="0.5",
        max_position_pct="0.6",
        max_total_exposure_pct="0.6",
        max_margin_usage_pct="0.2",
    )
    [order] = of(seen, Order)
    assert order.qty * order.decision_price <= D(200)
    [resize] = [e for e in of(seen, RiskEvent) if e.kind == "resize"]
    assert resize.reason == "max_margin_usage"


class RateSource:
    """A feed that answers funding rates, as MEXC's REST does; the second call fails."""

    def __init__(self) -> None:
        self.calls = 0

    async def funding_rate(self, symbol: str) -> object:
        from engine.errors import ExchangeError
        from engine.feeds.exchange.markets import FundingRate

        self.calls += 1
        if self.calls > 1:
            raise ExchangeError("the exchange did not answer")
        return FundingRate(symbol, D("0.00025"), None, 8)


async def test_a_live_run_settles_funding_when_market_time_passes_a_settle_time() -> None:
    from engine.kernel.live import _FundingClock

    config = load_settings(initial_capital="1000")
    pipeline = Pipeline(config, {"XRPUSDT": SPEC}, Script({}))
    clock = _FundingClock(RateSource(), pipeline)  # type: ignore[arg-type]
    assert await clock.due(T0 + timedelta(hours=7)) == []  # nothing processed yet
    pipeline.clock.advance(T0 + timedelta(hours=7, minutes=59))
    [settle] = await clock.due(T0 + timedelta(hours=8, seconds=1))
    assert settle.ts == T0 + timedelta(hours=8) and settle.rate == D("0.00025")
    pipeline.clock.advance(T0 + timedelta(hours=8, seconds=1))
    assert await clock.due(T0 + timedelta(hours=15)) == []
    pipeline.clock.advance(T0 + timedelta(hours=15))
    [later] = await clock.due(T0 + timedelta(hours=16))
    assert later.rate == D("0.00025")  # the exchange failed: the last known rate
