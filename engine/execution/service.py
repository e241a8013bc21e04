"""The paper exchange: keeps working orders and fills them against market events.

It also keeps the account the way an exchange does (cash and holdings from its
own fills), so a buy can never spend cash that is not there and a spot sell can
never sell more than is held, whatever risk approved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from engine.config import Settings
from engine.events import (
    ZERO,
    Candle,
    MarketEvent,
    Order,
    OrderResult,
    OrderStatus,
    OrderType,
    Side,
    derive_id,
)
from engine.execution.fills import FillQuote, fee, fillable_qty, limit_fill, market_fill
from engine.markets import SymbolSpec


@dataclass(slots=True)
class WorkingOrder:
    order: Order
    active_at: datetime  # order time plus latency: the first moment it can trade
    expires_at: datetime
    remaining: Decimal
    bars_seen: int = 0
    fills: int = 0


@dataclass(slots=True)
class PaperAccount:
    cash: Decimal
    holdings: dict[str, Decimal] = field(default_factory=dict)


class PaperExchange:
    def __init__(
        self,
        settings: Settings,
        specs: dict[str, SymbolSpec],
        publish: Callable[[OrderResult], object],
    ) -> None:
        self.settings = settings
        self.specs = specs
        self._publish = publish
        self.account = PaperAccount(settings.initial_capital)
        self.working: dict[str, WorkingOrder] = {}
        self._latency = timedelta(milliseconds=settings.order_latency_ms)
        self._used_volume: tuple[str, Decimal] = ("", ZERO)

    def on_order(self, order: Order) -> None:
        if order.order_id in self.working:
            return  # re-delivered
        if order.symbol not in self.specs:
            self._finish(order, order.ts, OrderStatus.REJECTED, order.qty, "unknown_symbol", None)
            return
        self.working[order.order_id] = WorkingOrder(
            order=order,
            active_at=order.ts + self._latency,
            expires_at=order.ts + timedelta(seconds=order.ttl_s),
            remaining=order.qty,
        )

    def cancel(self, order_id: str, ts: datetime, reason: str = "cancelled by operator") -> bool:
        working = self.working.pop(order_id, None)
        if working is None:
            return False
        self._finish(working.order, ts, OrderStatus.CANCELLED, working.remaining, reason, None)
        return True

    def on_market(self, event: MarketEvent) -> None:
        if not self.working:
            return
        for order_id in list(self.working):
            working = self.working[order_id]
            if event.ts >= working.expires_at:
                del self.working[order_id]
                self._finish(
                    working.order,
                    working.expires_at,
                    OrderStatus.EXPIRED,
                    working.remaining,
                    f"time to live of {working.order.ttl_s}s ran out",
                    None,
                )
            elif working.order.symbol == event.symbol and event.ts >= working.active_at:
                self._try_fill(working, event)

    def _try_fill(self, working: WorkingOrder, event: MarketEvent) -> None:
        order = working.order
        spec = self.specs[order.symbol]
        s = self.settings
        first_bar = working.bars_seen == 0
        working.bars_seen += 1
        used_id, used = self._used_volume
        if used_id != event.event_id:
            used = ZERO
        qty = fillable_qty(working.remaining, event.volume, s.participation_cap_pct, used, spec)
        qty = self._affordable(order, qty, event, spec)
        if qty <= 0:
            if order.side is Side.SELL and self.account.holdings.get(order.symbol, ZERO) <= 0:
                del self.working[order.order_id]
                self._finish(
                    order,
                    event.ts,
                    OrderStatus.REJECTED,
                    working.remaining,
                    "insufficient_position: spot cannot sell what is not held",
                    event,
                )
            return
        quote: FillQuote | None
        if order.order_type is OrderType.MARKET:
            quote = market_fill(
                order.side,
                event.reference_price,
                qty,
                event.volume,
                event.low,
                event.high,
                spec,
                s.slippage_base_bps,
                s.slippage_impact_bps,
            )
        else:
            assert order.limit_price is not None
            open_price = event.open if isinstance(event, Candle) else event.price
            quote = limit_fill(
                order.side,
                order.limit_price,
                open_price,
                event.low,
                event.high,
                first_bar,
                qty,
                event.volume,
                spec,
                s.slippage_base_bps,
                s.slippage_impact_bps,
            )
        if quote is None:
            return
        rate = spec.taker_fee if quote.liquidity.value == "taker" else spec.maker_fee
        # A buy may have been affordable at the reference but not after slippage.
        if order.side is Side.BUY:
            qty = min(qty, spec.floor_qty(self.account.cash / (quote.price * (1 + rate))))
            if qty <= 0:
                return
        paid = fee(qty, quote.price, rate)
        self._used_volume = (event.event_id, used + qty)
        working.remaining -= qty
        working.fills += 1
        if order.side is Side.BUY:
            self.account.cash -= qty * quote.price + paid
            self.account.holdings[order.symbol] = (
                self.account.holdings.get(order.symbol, ZERO) + qty
            )
        else:
            self.account.cash += qty * quote.price - paid
            self.account.holdings[order.symbol] -= qty
        done = working.remaining == 0
        if done:
            del self.working[order.order_id]
        fill_ts = max(working.active_at, event.open_time if isinstance(event, Candle) else event.ts)
        self._publish(
            OrderResult(
                event_id=derive_id("fill", order.order_id, working.fills),
                ts=fill_ts,
                cause_id=order.event_id,
                order_id=order.order_id,
                symbol=order.symbol,
                side=order.side,
                status=OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED,
                qty=qty,
                price=quote.price,
                requested_price=quote.reference,
                slippage_bps=quote.slippage_bps,
                fee=paid,
                liquidity=quote.liquidity,
                remaining_qty=working.remaining,
                reason="",
                market_event_id=event.event_id,
            )
        )

    def _affordable(
        self, order: Order, qty: Decimal, event: MarketEvent, spec: SymbolSpec
    ) -> Decimal:
        if order.side is Side.SELL:
            return min(qty, self.account.holdings.get(order.symbol, ZERO))
        # Highest possible price in this bar bounds what the cash can pay for.
        ceiling = event.high * (1 + spec.taker_fee)
        return min(qty, spec.floor_qty(self.account.cash / ceiling))

    def _finish(
        self,
        order: Order,
        ts: datetime,
        status: OrderStatus,
        remaining: Decimal,
        reason: str,
        event: MarketEvent | None,
    ) -> None:
        self._publish(
            OrderResult(
                event_id=derive_id("res", order.order_id, status.value),
                ts=max(ts, order.ts),
                cause_id=order.event_id,
                order_id=order.order_id,
                symbol=order.symbol,
                side=order.side,
                status=status,
                qty=ZERO,
                price=None,
                requested_price=order.limit_price,
                slippage_bps=ZERO,
                fee=ZERO,
                liquidity=None,
                remaining_qty=ZERO,
                reason=f"{reason}; {remaining} of {order.qty} unfilled",
                market_event_id=event.event_id if event is not None else None,
            )
        )
