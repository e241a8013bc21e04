"""What risk publishes about a liquidation and about a perpetual entry it cannot take:
pure functions of the event or the numbers, no state."""

from __future__ import annotations

from decimal import Decimal

from engine.contracts import ContractTerms
from engine.events import Alert, Liquidation, RiskEvent, Severity, Side, TradingState, derive_id
from engine.perp.margin import liquidation_price, position_margin


def liquidation_notices(event: Liquidation, state: TradingState) -> tuple[RiskEvent, Alert]:
    """The risk event and the critical alert that record a liquidation."""
    detail = {
        "qty": str(event.qty),
        "entry_price": str(event.entry_price),
        "liquidation_price": str(event.liquidation_price),
        "mark_price": str(event.mark_price),
        "margin_lost": str(event.margin_lost),
        "fee": str(event.fee),
        "leverage": str(event.leverage),
    }
    side = "long" if event.qty > 0 else "short"
    message = (
        f"{event.symbol} {side} liquidated at {event.liquidation_price}: "
        f"margin {event.margin_lost} lost"
    )
    risk_id = derive_id("risk", event.event_id, "liquidation")
    risk = RiskEvent(
        event_id=risk_id,
        ts=event.ts,
        cause_id=event.event_id,
        kind="liquidation",
        reason="liquidation",
        symbol=event.symbol,
        state=state,
        message=message,
        detail=detail,
    )
    alert = Alert(
        event_id=derive_id("alert", risk_id),
        ts=event.ts,
        cause_id=risk_id,
        severity=Severity.CRITICAL,
        rule="liquidation",
        message=message,
        detail=detail,
    )
    return risk, alert


def perp_entry_refusal(
    symbol: str,
    terms: ContractTerms,
    lev: Decimal,
    held: Decimal,
    cost: Decimal,
    side: Side,
    qty: Decimal,
    price: Decimal,
    mark: Decimal,
    min_distance: Decimal,
    numbers: dict[str, str],
) -> tuple[str, str, dict[str, str]] | None:
    """Why the position after a perpetual entry is not allowed (the leverage tier, or the
    liquidation distance), as (reason, message, numbers); None when it is."""
    new_qty = held + side.sign * qty
    new_cost = cost + side.sign * qty * price
    cap = terms.leverage_cap(new_qty)
    numbers = {**numbers, "leverage": str(lev), "tier_max_leverage": str(cap)}
    if lev > cap:
        message = f"{symbol} at {lev}x: a position of {new_qty} allows at most {cap}x"
        return "leverage_tier", message, numbers
    level = liquidation_price(
        side,
        new_cost / new_qty,
        new_qty,
        position_margin(new_cost, lev),
        terms.tier(new_qty).maintenance_margin_rate,
    )
    distance = abs(mark - level) / mark
    if distance < min_distance:
        numbers |= {"liquidation_price": str(level), "distance": str(distance)}
        message = f"{symbol} would be liquidated at {level}, {distance:.2%} from {mark}"
        return "liquidation_too_close", message, {**numbers, "limit": str(min_distance)}
    return None


__all__ = ["liquidation_notices", "perp_entry_refusal"]
