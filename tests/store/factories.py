"""Valid events of every type, with keyword overrides, for the store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.events import (
    Alert,
    Candle,
    Event,
    Intent,
    Liquidity,
    Order,
    OrderResult,
    OrderStatus,
    OrderType,
    PortfolioSnapshot,
    PositionView,
    RiskEvent,
    Severity,
    Side,
    Signal,
    Trade,
    TradingState,
)

D = Decimal
RUN_ID = "run-test"
T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


def candle(n: int = 0, symbol: str = "BTCUSDT", **kw: Any) -> Candle:
    ts = T0 + timedelta(minutes=5 * (n + 1))
    fields: dict[str, Any] = {
        "event_id": f"{symbol}-c{n}",
        "ts": ts,
        "cause_id": None,
        "symbol": symbol,
        "open_time": ts - timedelta(minutes=5),
        "interval_s": 300,
        "open": D("42000.10"),
        "high": D("42100.5"),
        "low": D("41950"),
        "close": D("42050.00000001"),
        "volume": D("12.345678"),
    }
    return Candle(**{**fields, **kw})


def tick(n: int = 0, symbol: str = "BTCUSDT", **kw: Any) -> Trade:
    fields: dict[str, Any] = {
        "event_id": f"{symbol}-t{n}",
        "ts": T0 + timedelta(seconds=n),
        "cause_id": None,
        "symbol": symbol,
        "price": D("42000.5"),
        "qty": D("0.01"),
        "side": Side.SELL,
        "trade_id": f"x{n}",
    }
    return Trade(**{**fields, **kw})


def signal(n: int = 0, **kw: Any) -> Signal:
    fields: dict[str, Any] = {
        "event_id": f"sig{n}",
        "ts": T0 + timedelta(minutes=5),
        "cause_id": "BTCUSDT-c0",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "confidence": D("0.75"),
        "reason": "momentum up 3 bars",
        "strategy": "momentum",
    }
    return Signal(**{**fields, **kw})


def order(n: int = 0, **kw: Any) -> Order:
    fields: dict[str, Any] = {
        "event_id": f"ord-ev{n}",
        "ts": T0 + timedelta(minutes=5),
        "cause_id": f"sig{n}",
        "order_id": f"ord{n}",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "order_type": OrderType.MARKET,
        "qty": D("0.12345678"),
        "limit_price": None,
        "decision_price": D("42050.00000001"),
        "intent": Intent.ENTRY,
        "ttl_s": 900,
    }
    return Order(**{**fields, **kw})


def fill(n: int = 0, **kw: Any) -> OrderResult:
    fields: dict[str, Any] = {
        "event_id": f"fill{n}",
        "ts": T0 + timedelta(minutes=10),
        "cause_id": f"ord-ev{n}",
        "order_id": f"ord{n}",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "status": OrderStatus.FILLED,
        "qty": D("0.12345678"),
        "price": D("42060.123456789"),
        "requested_price": D("42050.00000001"),
        "slippage_bps": D("2.4"),
        "fee": D("2.5962"),
        "liquidity": Liquidity.TAKER,
        "remaining_qty": D("0"),
        "reason": "",
        "market_event_id": "BTCUSDT-c1",
    }
    return OrderResult(**{**fields, **kw})


def no_fill(n: int = 0, status: OrderStatus = OrderStatus.REJECTED, **kw: Any) -> OrderResult:
    fields: dict[str, Any] = {
        "event_id": f"{status.value}{n}",
        "ts": T0 + timedelta(minutes=10),
        "cause_id": f"ord-ev{n}",
        "order_id": f"ord{n}",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "status": status,
        "qty": D("0"),
        "price": None,
        "requested_price": None,
        "slippage_bps": D("0"),
        "fee": D("0"),
        "liquidity": None,
        "remaining_qty": D("0.12345678"),
        "reason": "max exposure",
        "market_event_id": None,
    }
    return OrderResult(**{**fields, **kw})


def snapshot(n: int = 0, **kw: Any) -> PortfolioSnapshot:
    fields: dict[str, Any] = {
        "event_id": f"snap{n}",
        "ts": T0 + timedelta(minutes=10 + n),
        "cause_id": "fill0",
        "cash": D("94807.4"),
        "equity": D("99999.99"),
        "realized_pnl": D("-12.5"),
        "unrealized_pnl": D("1.01"),
        "fees": D("2.5962"),
        "exposure": D("5192.6"),
        "exposure_pct": D("0.0519"),
        "peak_equity": D("100000"),
        "drawdown_pct": D("0.0000001"),
        "day_start_equity": D("100000"),
        "daily_drawdown_pct": D("0.0000001"),
        "positions": (
            PositionView("BTCUSDT", D("0.12345678"), D("42060.1"), D("42070"), D("5192.6"), D("0")),
            PositionView("ETHUSDT", D("0"), D("0"), D("2500"), D("0"), D("-12.5")),
        ),
    }
    return PortfolioSnapshot(**{**fields, **kw})


def risk_event(n: int = 0, **kw: Any) -> RiskEvent:
    fields: dict[str, Any] = {
        "event_id": f"risk{n}",
        "ts": T0 + timedelta(minutes=5),
        "cause_id": "sig0",
        "kind": "refusal",
        "reason": "max_open_positions",
        "symbol": "ETHUSDT",
        "state": TradingState.ACTIVE,
        "message": "3 positions open already",
        "detail": {"open": "3", "limit": "3"},
    }
    return RiskEvent(**{**fields, **kw})


def alert(n: int = 0, **kw: Any) -> Alert:
    fields: dict[str, Any] = {
        "event_id": f"alert{n}",
        "ts": T0 + timedelta(minutes=15),
        "cause_id": "snap0",
        "severity": Severity.WARNING,
        "rule": "exposure_high",
        "message": "exposure 29 % above 28 %",
        "detail": {"exposure_pct": "0.29"},
    }
    return Alert(**{**fields, **kw})


def one_of_each() -> list[Event]:
    return [
        candle(0),
        candle(1),
        tick(0, symbol="ETHUSDT"),
        signal(0),
        order(0),
        order(1, limit_price=D("41000.5"), order_type=OrderType.LIMIT),
        fill(0),
        no_fill(1),
        no_fill(2, status=OrderStatus.CANCELLED),
        no_fill(3, status=OrderStatus.EXPIRED),
        snapshot(0),
        risk_event(0),
        alert(0),
    ]
