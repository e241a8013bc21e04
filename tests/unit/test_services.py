"""Risk, execution and portfolio services on a real in-process bus with an event clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from engine.bus import InProcessBus
from engine.clock import EventClock
from engine.config import Settings, load_settings
from engine.events import (
    Candle,
    Event,
    Intent,
    Order,
    OrderResult,
    OrderStatus,
    OrderType,
    RiskEvent,
    Side,
    Signal,
    TradingState,
)
from engine.kernel.pipeline import Pipeline
from engine.markets import SymbolSpec
from engine.signal.base import Strategy

D = Decimal
T0 = datetime(2018, 1, 10, tzinfo=UTC)
SPECS = {
    s: SymbolSpec(s, s[:3], "BTC", D("0.00000001"), D("0.001"), D(0), D("0.0005"))
    for s in ("ETHBTC", "LTCBTC", "ADABTC", "DASHBTC")
}


def candle(
    symbol: str,
    n: int,
    o: str = "1",
    h: str = "1.1",
    lo: str = "0.9",
    c: str = "1",
    v: str = "1000",
) -> Candle:
    open_time = T0 + timedelta(minutes=5 * n)
    return Candle(
        f"{symbol}-{n}",
        open_time + timedelta(minutes=5),
        None,
        symbol,
        open_time,
        300,
        D(o),
        D(h),
        D(lo),
        D(c),
        D(v),
    )


class Scripted(Strategy):
    """Emits the intents a test scripts for given (symbol, bar) pairs."""

    name = "scripted"

    def __init__(self) -> None:
        self.script: dict[str, list[tuple[str, Side]]] = {}

    def on_candle(self, candle: Candle, context: object):  # type: ignore[override]
        from engine.signal.base import Intent as SignalIntent

        return [
            SignalIntent(s, side, D(1), "scripted")
            for s, side in self.script.pop(candle.event_id, [])
        ]


@pytest.fixture
def settings() -> Settings:
    return load_settings(initial_capital="10", position_size_pct="0.05", stale_data_seconds=600)


def make(settings: Settings) -> tuple[Pipeline, Scripted, list[Event]]:
    seen: list[Event] = []
    strategy = Scripted()
    pipeline = Pipeline(
        settings,
        SPECS,
        strategy=strategy,
        bus=InProcessBus(),
        clock=EventClock(),
        observers=[seen.append],
    )
    return pipeline, strategy, seen


def of(seen: list[Event], kind: type) -> list:
    return [e for e in seen if isinstance(e, kind)]


def test_market_order_fills_at_the_market_on_arrival_plus_slippage(settings: Settings) -> None:
    pipeline, strategy, seen = make(settings)
    strategy.script["ETHBTC-0"] = [("ETHBTC", Side.BUY)]
    pipeline.process(candle("ETHBTC", 0))
    [order] = of(seen, Order)
    assert order.qty * order.decision_price <= D("0.5")  # 5 % of 10 BTC
    assert of(seen, OrderResult) == []
    pipeline.process(candle("ETHBTC", 1, o="1.02", h="1.1", lo="1.0", c="1.05"))
    [fill] = of(seen, OrderResult)
    assert fill.status is OrderStatus.FILLED
    # A bar that closes up goes to its low first, reached a third of the bar (100 s) in:
    # 200 ms after the open the market has moved 0.2 % of the way from 1.02 to 1.0.
    assert fill.requested_price == D("1.02") - D("0.02") * D("0.2") / D(100)
    assert fill.requested_price < fill.price <= D("1.1")
    assert fill.market_event_id == "ETHBTC-1"
    assert fill.fee == fill.qty * fill.price * D("0.0005")
    assert fill.ts == order.ts + timedelta(milliseconds=settings.order_latency_ms)


def test_large_order_fills_partially_then_expires(settings: Settings) -> None:
    s = settings.model_copy(update={"order_ttl_seconds": 700})
    pipeline, strategy, seen = make(s)
    strategy.script["ETHBTC-0"] = [("ETHBTC", Side.BUY)]
    pipeline.process(candle("ETHBTC", 0))
    [order] = of(seen, Order)
    for n in (1, 2, 3, 4):
        pipeline.process(candle("ETHBTC", n, v="1"))  # 10 % of 1 = 0.1 per whole bar
    results = of(seen, OrderResult)
    assert [r.status for r in results] == [OrderStatus.PARTIALLY_FILLED] * 3 + [OrderStatus.EXPIRED]
    # Only the volume traded while the order worked counts: bar 1 from 200 ms in, bar 2
    # whole, bar 3 up to the time to live (100 of its 300 s); in whole lots of 0.001.
    assert [r.qty for r in results[:3]] == [D("0.099"), D("0.1"), D("0.033")]
    assert results[-1].qty == 0 and results[-1].price is None
    assert results[-1].ts == order.ts + timedelta(seconds=700)


def test_entries_above_the_position_limit_are_cut_to_it(settings: Settings) -> None:
    s = settings.model_copy(update={"position_size_pct": D("0.5"), "max_position_pct": D("0.1")})
    pipeline, strategy, seen = make(s)
    strategy.script["ETHBTC-0"] = [("ETHBTC", Side.BUY)]
    pipeline.process(candle("ETHBTC", 0))
    [order] = of(seen, Order)
    assert order.notional <= D("1.0")
    [resize] = [e for e in of(seen, RiskEvent) if e.kind == "resize"]
    assert resize.reason == "max_position"


def test_too_many_positions_are_refused(settings: Settings) -> None:
    s = settings.model_copy(update={"max_open_positions": 2})
    pipeline, strategy, seen = make(s)
    strategy.script["ADABTC-0"] = [("ETHBTC", Side.BUY), ("LTCBTC", Side.BUY), ("ADABTC", Side.BUY)]
    for symbol in ("ETHBTC", "LTCBTC", "ADABTC"):
        pipeline.process(candle(symbol, 0))
    assert len(of(seen, Order)) == 2
    [refusal] = of(seen, RiskEvent)
    assert refusal.reason == "max_open_positions" and refusal.symbol == "ADABTC"


def test_stale_symbol_is_refused(settings: Settings) -> None:
    s = settings.model_copy(update={"stale_data_seconds": 30})
    pipeline, strategy, seen = make(s)
    pipeline.process(candle("LTCBTC", 0))
    strategy.script["ETHBTC-3"] = [("LTCBTC", Side.BUY)]
    pipeline.process(candle("ETHBTC", 3))
    [refusal] = of(seen, RiskEvent)
    assert refusal.reason == "stale_data"
    assert of(seen, Order) == []


def test_order_rate_limit(settings: Settings) -> None:
    s = settings.model_copy(update={"max_orders_per_minute": 1, "max_open_positions": 4})
    pipeline, strategy, seen = make(s)
    strategy.script["ETHBTC-0"] = [("ETHBTC", Side.BUY), ("LTCBTC", Side.BUY)]
    pipeline.process(candle("LTCBTC", 0))
    pipeline.process(candle("ETHBTC", 0))
    assert len(of(seen, Order)) == 1
    assert [e.reason for e in of(seen, RiskEvent)] == ["order_rate_limit"]


def test_sell_without_position_is_refused(settings: Settings) -> None:
    pipeline, strategy, seen = make(settings)
    strategy.script["ETHBTC-0"] = [("ETHBTC", Side.SELL)]
    pipeline.process(candle("ETHBTC", 0))
    assert [e.reason for e in of(seen, RiskEvent)] == ["no_position"]


def test_circuit_breaker_halts_and_only_an_operator_resumes(settings: Settings) -> None:
    s = settings.model_copy(
        update={
            "position_size_pct": D("0.5"),
            "max_position_pct": D("0.5"),
            "max_total_exposure_pct": D("0.5"),
            "circuit_breaker_threshold_pct": D("0.05"),
        }
    )
    pipeline, strategy, seen = make(s)
    strategy.script["ETHBTC-0"] = [("ETHBTC", Side.BUY)]
    pipeline.process(candle("ETHBTC", 0))
    pipeline.process(candle("ETHBTC", 1))  # fills near 1
    pipeline.process(candle("ETHBTC", 2, o="1", h="1", lo="0.7", c="0.7"))  # -30 % on half
    assert pipeline.risk.state is TradingState.HALTED
    strategy.script["ETHBTC-3"] = [("ETHBTC", Side.SELL)]
    pipeline.process(candle("ETHBTC", 3, o="0.7", h="0.8", lo="0.7", c="0.8"))
    assert of(seen, RiskEvent)[-1].reason == "halted"
    pipeline.resume_trading("checked the feed")
    assert pipeline.risk.state is TradingState.ACTIVE
    strategy.script["ETHBTC-4"] = [("ETHBTC", Side.SELL)]
    pipeline.process(candle("ETHBTC", 4, o="0.8", h="0.8", lo="0.8", c="0.8"))
    assert of(seen, Order)[-1].side is Side.SELL


def test_redelivered_order_is_not_filled_twice(settings: Settings) -> None:
    pipeline, _, seen = make(settings)
    order = Order(
        "o-1",
        T0,
        None,
        "o-1",
        "ETHBTC",
        Side.BUY,
        OrderType.MARKET,
        D("1"),
        None,
        D("1"),
        Intent.ENTRY,
        900,
    )
    pipeline.exchange.on_order(order)
    pipeline.exchange.on_order(order)
    pipeline.process(candle("ETHBTC", 1))
    assert len(of(seen, OrderResult)) == 1


def test_spot_sell_of_nothing_held_is_rejected_by_the_exchange(settings: Settings) -> None:
    pipeline, _, seen = make(settings)
    order = Order(
        "o-2",
        T0,
        None,
        "o-2",
        "ETHBTC",
        Side.SELL,
        OrderType.MARKET,
        D("1"),
        None,
        D("1"),
        Intent.EXIT,
        900,
    )
    pipeline.exchange.on_order(order)
    pipeline.process(candle("ETHBTC", 1))
    [result] = of(seen, OrderResult)
    assert result.status is OrderStatus.REJECTED and "insufficient_position" in result.reason


def test_limit_buy_rests_until_the_market_trades_through(settings: Settings) -> None:
    pipeline, _, seen = make(settings)
    order = Order(
        "o-3",
        T0,
        None,
        "o-3",
        "ETHBTC",
        Side.BUY,
        OrderType.LIMIT,
        D("1"),
        D("0.95"),
        D("1"),
        Intent.ENTRY,
        3600,
    )
    pipeline.exchange.on_order(order)
    pipeline.process(candle("ETHBTC", 1, lo="0.95"))  # touches, does not trade through
    assert of(seen, OrderResult) == []
    pipeline.process(candle("ETHBTC", 2, lo="0.94"))
    [fill] = of(seen, OrderResult)
    assert fill.price == D("0.95") and fill.liquidity.value == "maker" and fill.fee == 0


def test_bad_json_on_the_bus_is_recorded_and_the_pipeline_keeps_running(settings: Settings) -> None:
    pipeline, strategy, seen = make(settings)
    for bad in ('{"type":"candle","open":"NaN"}', "garbage", '{"type":"trade","symbol":"1; DROP"}'):
        pipeline.bus.publish_raw("market_data", bad)
    strategy.script["ETHBTC-0"] = [("ETHBTC", Side.BUY)]
    pipeline.process(candle("ETHBTC", 0))
    assert len(pipeline.bus.dead_letters()) == 3
    assert len(of(seen, Order)) == 1


def test_unknown_signal_symbol_is_refused(settings: Settings) -> None:
    pipeline, _, seen = make(settings)
    pipeline.risk.on_signal(Signal("s", T0, None, "XRPBTC", Side.BUY, D(1), "x", "t"))
    assert [e.reason for e in of(seen, RiskEvent)] == ["unknown_symbol"]


def test_a_fresh_quote_sets_the_spread_a_taker_pays(settings: Settings) -> None:
    from engine.events import Quote

    pipeline, strategy, seen = make(settings)
    strategy.script["ETHBTC-0"] = [("ETHBTC", Side.BUY)]
    pipeline.process(candle("ETHBTC", 0))
    quote = Quote(
        "q-1", T0 + timedelta(minutes=5), None, "ETHBTC", D("0.99"), D("1.01"), D(5), D(5)
    )
    pipeline.process(quote)  # type: ignore[arg-type]
    pipeline.process(candle("ETHBTC", 1))
    [fill] = of(seen, OrderResult)
    assert fill.spread_bps == D(100)  # half of 2 % of the middle
    assert fill.price >= fill.requested_price * D("1.01")


def test_a_stale_quote_is_not_used_for_the_spread(settings: Settings) -> None:
    from engine.events import Quote

    s = settings.model_copy(update={"stale_data_seconds": 60, "spread_bps": D(4)})
    pipeline, strategy, seen = make(s)
    old = Quote("q-0", T0 - timedelta(minutes=10), None, "ETHBTC", D("0.9"), D("1.1"), D(5), D(5))
    pipeline.process(old)  # type: ignore[arg-type]
    strategy.script["ETHBTC-0"] = [("ETHBTC", Side.BUY)]
    pipeline.process(candle("ETHBTC", 0))
    pipeline.process(candle("ETHBTC", 1))
    [fill] = of(seen, OrderResult)
    assert fill.spread_bps == D(2)  # half of SPREAD_BPS, not of the old quote


def test_heartbeats_and_quotes_keep_a_symbol_fresh_for_risk(settings: Settings) -> None:
    from engine.events import Heartbeat

    s = settings.model_copy(update={"stale_data_seconds": 30})
    pipeline, _, seen = make(s)
    pipeline.process(candle("ETHBTC", 0))
    beat = Heartbeat("hb-1", T0 + timedelta(minutes=9, seconds=50), None, "ETHBTC")
    pipeline.process(beat)  # type: ignore[arg-type]
    pipeline.clock.advance(T0 + timedelta(minutes=10))
    pipeline.risk.on_signal(
        Signal("s-1", T0 + timedelta(minutes=10), None, "ETHBTC", Side.BUY, D(1), "x", "t")
    )
    assert not [e for e in of(seen, RiskEvent) if e.reason == "stale_data"]
    assert of(seen, Order)
