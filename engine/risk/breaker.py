"""What the circuit breaker sends at the halt: pure functions of the orders in flight
and the positions held.

- freeze: every working entry is cancelled, so nothing grows a position after the
  halt; exits keep working (they can only make a position smaller).
- flatten: everything working is cancelled but market exits already on their way out,
  and every position is closed at market.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from engine.events import Intent, Order, OrderCancel, OrderType, Side, TradingState, derive_id


def freeze_cancels(
    working: Iterable[Order], now: datetime, cause_id: str | None
) -> list[OrderCancel]:
    return [
        _cancel(order, now, cause_id, "freeze")
        for order in working
        if order.intent is not Intent.EXIT
    ]


def flatten_cancels(
    working: Iterable[Order], now: datetime, cause_id: str | None
) -> list[OrderCancel]:
    return [
        _cancel(order, now, cause_id, "flatten")
        for order in working
        if not (order.intent is Intent.EXIT and order.order_type is OrderType.MARKET)
    ]


def flatten_orders(
    positions: Mapping[str, Decimal],
    leaving: Mapping[str, Decimal],
    last_price: Mapping[str, Decimal],
    now: datetime,
    cause_id: str | None,
    ttl_s: int,
) -> list[Order]:
    """A market exit of what is held beyond what market exits already take (`leaving`)."""
    orders = []
    for symbol, held in sorted(positions.items()):
        qty = abs(held) - leaving.get(symbol, Decimal(0))
        if qty <= 0 or symbol not in last_price:
            continue
        order_id = derive_id("ord", "flatten", cause_id, symbol)
        orders.append(
            Order(
                event_id=order_id,
                ts=now,
                cause_id=cause_id,
                order_id=order_id,
                symbol=symbol,
                side=Side.SELL if held > 0 else Side.BUY,
                order_type=OrderType.MARKET,
                qty=qty,
                limit_price=None,
                decision_price=last_price[symbol],
                intent=Intent.EXIT,
                ttl_s=ttl_s,
            )
        )
    return orders


def state_alert_message(state: TradingState, reason: str, flattening: bool) -> str:
    """The alert that goes with REDUCING or HALTED."""
    if state is TradingState.REDUCING:
        return "daily drawdown limit reached: only exits until the next UTC day"
    action = (
        "positions closed at market"
        if flattening
        else "positions kept, working entries cancelled, every order refused"
    )
    cause = "halted by an operator" if reason == "operator_halt" else "circuit breaker tripped"
    return f"{cause}: {action}; trading halted until an operator resumes"


def _cancel(order: Order, now: datetime, cause_id: str | None, action: str) -> OrderCancel:
    return OrderCancel(
        event_id=derive_id("cxl", order.order_id, action),
        ts=now,
        cause_id=cause_id,
        order_id=order.order_id,
        symbol=order.symbol,
        reason=f"circuit_breaker_{action}",
    )


__all__ = ["flatten_cancels", "flatten_orders", "freeze_cancels", "state_alert_message"]
