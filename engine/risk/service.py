"""The risk service: sizes approved orders and refuses what breaks a limit.

It keeps its own view of the account from the portfolio's snapshots and the
order results, values positions at the latest market prices, and counts orders
still in flight against exposure. Every refusal is a `RiskEvent` with a
machine-readable reason and the numbers behind it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from engine.clock import Clock
from engine.config import Settings
from engine.events import (
    ZERO,
    Alert,
    Candle,
    Event,
    FundingPayment,
    Heartbeat,
    Intent,
    Liquidation,
    MarkPrice,
    Order,
    OrderCancel,
    OrderResult,
    OrderStatus,
    OrderType,
    PortfolioSnapshot,
    Quote,
    RiskEvent,
    Severity,
    Side,
    Signal,
    Trade,
    TradingState,
    Watermark,
    derive_id,
)
from engine.markets import SymbolSpec
from engine.perp.leverage import leverages
from engine.risk.breaker import (
    flatten_cancels,
    flatten_orders,
    freeze_cancels,
    state_alert_message,
)
from engine.risk.notices import liquidation_notices, perp_entry_refusal
from engine.risk.sizing import (
    daily_volatility,
    entry_headroom,
    fixed_fraction_notional,
    volatility_scaled_notional,
)
from engine.risk.state import next_state

_ONE_MINUTE = timedelta(minutes=1)


@dataclass(slots=True)
class InFlight:
    order: Order
    remaining: Decimal


class RiskService:
    def __init__(
        self,
        settings: Settings,
        specs: dict[str, SymbolSpec],
        clock: Clock,
        publish: Callable[[Event], object],
    ) -> None:
        self.settings = settings
        self.specs = specs
        self.clock = clock
        self._publish = publish
        self.state = TradingState.ACTIVE
        self.reducing_since: date | None = None
        self.cash = settings.initial_capital
        self.positions: dict[str, Decimal] = {}
        self.costs: dict[str, Decimal] = {}  # signed cost basis, for perpetuals' PnL
        self.margin_used = ZERO
        self.fair: dict[str, Decimal] = {}  # mark prices of perpetuals with a mark feed
        self._perpetual = {sym for sym, spec in specs.items() if spec.perpetual}
        self.leverage = leverages(settings, specs)
        self.day_start_equity = settings.initial_capital
        self.breaker_peak = settings.initial_capital
        self.last_price: dict[str, Decimal] = {}
        self.last_seen: dict[str, datetime] = {}
        self.in_flight: dict[str, InFlight] = {}
        self.recent_orders: deque[datetime] = deque()
        self._closes: dict[str, deque[float]] = {}
        self._bars_per_day: dict[str, float] = {}
        # The worst a buy may cost above the price it was sized at: fee plus slippage.
        self._cost_rate = settings.taker_fee_rate + (
            settings.slippage_base_bps + settings.slippage_impact_bps
        ) / Decimal(10000)

    # --- inputs -------------------------------------------------------------

    def on_market(self, event: Event) -> None:
        if isinstance(event, Watermark):
            # Every symbol is marked at this time now: judge the account on consistent marks.
            self._evaluate(event.ts, self.equity(), event.event_id)
            if self.state is TradingState.HALTED and self._flattening:
                self._flatten(event.ts, event.event_id)
            return
        if isinstance(event, Candle):
            symbol = event.symbol
            self.last_price[symbol] = event.close
            closes = self._closes.get(symbol)
            if closes is None:
                closes = self._closes[symbol] = deque(
                    maxlen=self.settings.volatility_lookback_bars + 1
                )
                self._bars_per_day[symbol] = 86400 / event.interval_s
            closes.append(float(event.close))
        elif isinstance(event, Trade):
            self.last_price[event.symbol] = event.price
        elif isinstance(event, MarkPrice):
            self.fair[event.symbol] = event.price  # perpetuals' PnL is measured at the mark
            return
        elif not isinstance(event, Quote | Heartbeat):
            return
        # Any message about a symbol shows its feed is alive.
        self.last_seen[event.symbol] = event.ts

    def warm_up(self, candle: Candle) -> None:
        """History for volatility sizing; it does not count as fresh market data."""
        seen = self.last_seen.get(candle.symbol)
        self.on_market(candle)
        if seen is None:
            del self.last_seen[candle.symbol]
        else:
            self.last_seen[candle.symbol] = seen

    def on_snapshot(self, snapshot: PortfolioSnapshot) -> None:
        self.cash = snapshot.cash
        self.positions = {p.symbol: p.qty for p in snapshot.positions if p.qty}
        self.costs = {p.symbol: p.cost_basis for p in snapshot.positions if p.qty}
        self.margin_used = snapshot.margin_used
        for p in snapshot.positions:
            self.last_price.setdefault(p.symbol, p.mark_price)
        self.day_start_equity = snapshot.day_start_equity
        self._evaluate(snapshot.ts, snapshot.equity, snapshot.event_id)

    def on_result(self, result: OrderResult | FundingPayment | Liquidation) -> None:
        if isinstance(result, Liquidation):
            self._liquidated(result)
            return
        if isinstance(result, FundingPayment):
            return  # the wallet reaches risk with the next snapshot
        flight = self.in_flight.get(result.order_id)
        if flight is None:
            return
        flight.remaining = result.remaining_qty
        if result.remaining_qty == 0 or result.status is not OrderStatus.PARTIALLY_FILLED:
            del self.in_flight[result.order_id]  # filled, or ended with what it left

    def resume(self, ts: datetime, operator_note: str = "") -> bool:
        """Leave HALTED by an operator's decision; the breaker re-arms from today's equity.

        Returns False (and changes nothing) when trading is not halted.
        """
        if self.state is not TradingState.HALTED:
            return False
        equity = self.equity()
        self.breaker_peak = equity
        self._change(ts, TradingState.ACTIVE, "operator_resume", None, equity, note=operator_note)
        return True

    def halt(self, ts: datetime, operator_note: str = "") -> bool:
        """Halt trading by an operator's decision, with the circuit breaker's action.

        Returns False (and changes nothing) when trading is halted already.
        """
        if self.state is TradingState.HALTED:
            return False
        self._change(ts, TradingState.HALTED, "operator_halt", None, self.equity(), operator_note)
        return True

    def _liquidated(self, event: Liquidation) -> None:
        for notice in liquidation_notices(event, self.state):
            self._publish(notice)

    @property
    def _flattening(self) -> bool:
        return self.settings.circuit_breaker_action == "flatten"

    def _freeze(self, now: datetime, cause_id: str | None) -> None:
        """Nothing may grow a position after the halt: working entries are cancelled."""
        working = [f.order for f in self.in_flight.values()]
        for cancel in freeze_cancels(working, now, cause_id):
            self._publish(cancel)

    def _flatten(self, now: datetime, cause_id: str | None) -> None:
        """Close every position at market: cancel what works, then sell what is held."""
        working = [f.order for f in self.in_flight.values()]
        for cancel in flatten_cancels(working, now, cause_id):
            self._publish(cancel)
        leaving = {s: self._in_flight_exits(s, market_only=True) for s in self.positions}
        ttl_s = self.settings.order_ttl_seconds
        for order in flatten_orders(self.positions, leaving, self.last_price, now, cause_id, ttl_s):
            self._send(order)

    # --- valuation ----------------------------------------------------------

    def equity(self) -> Decimal:
        """Cash plus spot positions at market and perpetual positions' unrealized PnL."""
        total = self.cash
        for symbol, qty in self.positions.items():
            if symbol in self._perpetual:
                mark = self.fair.get(symbol, self.last_price[symbol])
                total += qty * mark - self.costs.get(symbol, ZERO)
            else:
                total += qty * self.last_price[symbol]
        return total

    def _notional(self, symbol: str) -> Decimal:
        qty = self.positions.get(symbol, ZERO)
        return abs(qty) * self.last_price[symbol] if qty else ZERO

    def _in_flight_entries(self, symbol: str | None = None) -> Decimal:
        return sum(
            (
                f.remaining * self.last_price.get(f.order.symbol, f.order.decision_price)
                for f in self.in_flight.values()
                if f.order.intent is Intent.ENTRY and (symbol is None or f.order.symbol == symbol)
            ),
            ZERO,
        )

    def _in_flight_exits(self, symbol: str, market_only: bool = False) -> Decimal:
        return sum(
            (
                f.remaining
                for f in self.in_flight.values()
                if f.order.intent is Intent.EXIT
                and f.order.symbol == symbol
                and not (market_only and f.order.order_type is OrderType.LIMIT)
            ),
            ZERO,
        )

    # --- state --------------------------------------------------------------

    def _evaluate(self, ts: datetime, equity: Decimal, cause_id: str) -> None:
        if equity > self.breaker_peak:
            self.breaker_peak = equity
        transition = next_state(
            self.state,
            self.reducing_since,
            ts.date(),
            equity,
            self.day_start_equity,
            self.breaker_peak,
            self.settings.max_daily_drawdown_pct,
            self.settings.circuit_breaker_threshold_pct,
        )
        if transition is not None:
            self._change(ts, transition.state, transition.reason, cause_id, equity)

    def _change(
        self,
        ts: datetime,
        state: TradingState,
        reason: str,
        cause_id: str | None,
        equity: Decimal,
        note: str = "",
    ) -> None:
        previous, self.state = self.state, state
        self.reducing_since = ts.date() if state is TradingState.REDUCING else None
        detail = {
            "from": previous.value,
            "to": state.value,
            "equity": str(equity),
            "day_start_equity": str(self.day_start_equity),
            "peak_equity": str(self.breaker_peak),
        }
        if note:
            detail["note"] = note
        if state is TradingState.HALTED:
            detail["action"] = self.settings.circuit_breaker_action
        event_id = derive_id("risk", "state", cause_id, ts.isoformat(), state.value, reason)
        self._publish(
            RiskEvent(
                event_id=event_id,
                ts=ts,
                cause_id=cause_id,
                kind="state_change",
                reason=reason,
                symbol=None,
                state=state,
                message=f"trading state {previous.value} -> {state.value} ({reason})",
                detail=detail,
            )
        )
        if state is not TradingState.ACTIVE:
            severity = Severity.CRITICAL if state is TradingState.HALTED else Severity.WARNING
            self._publish(
                Alert(
                    event_id=derive_id("alert", event_id),
                    ts=ts,
                    cause_id=event_id,
                    severity=severity,
                    rule=reason,
                    message=state_alert_message(state, reason, self._flattening),
                    detail=detail,
                )
            )
        if state is TradingState.HALTED:
            if self._flattening:
                self._flatten(ts, event_id)
            else:
                self._freeze(ts, event_id)

    # --- decisions ----------------------------------------------------------

    def on_signal(self, signal: Signal) -> None:
        now = self.clock.now()
        symbol = signal.symbol
        if symbol not in self.specs:
            self._refuse(signal, "unknown_symbol", f"{symbol} is not a traded symbol", {})
            return
        last_seen = self.last_seen.get(symbol)
        if (
            last_seen is None
            or (now - last_seen).total_seconds() > self.settings.stale_data_seconds
        ):
            age = "never" if last_seen is None else f"{(now - last_seen).total_seconds():.0f}s"
            self._refuse(
                signal,
                "stale_data",
                f"no market data for {symbol} in {self.settings.stale_data_seconds}s",
                {"last_event_age": age, "limit_seconds": str(self.settings.stale_data_seconds)},
            )
            return
        self._evaluate(now, self.equity(), signal.event_id)
        if self.state is TradingState.HALTED:
            self._refuse(signal, "halted", "trading is halted until an operator resumes", {})
            return
        held = self.positions.get(signal.symbol, ZERO)
        if held and (held > 0) != (signal.side is Side.BUY):
            self._exit(signal, now)  # against the position: it reduces it
        elif signal.side is Side.BUY or signal.symbol in self._perpetual:
            self._entry(signal, now)  # a perpetual opens shorts too
        else:
            self._exit(signal, now)  # a spot sell with nothing held

    def _rate_limited(self, signal: Signal, now: datetime) -> bool:
        while self.recent_orders and now - self.recent_orders[0] >= _ONE_MINUTE:
            self.recent_orders.popleft()
        if len(self.recent_orders) >= self.settings.max_orders_per_minute:
            self._refuse(
                signal,
                "order_rate_limit",
                f"{len(self.recent_orders)} orders in the last minute",
                {"limit_per_minute": str(self.settings.max_orders_per_minute)},
            )
            return True
        return False

    def _entry(self, signal: Signal, now: datetime) -> None:
        if self._entry_blocked(signal, now):
            return
        symbol = signal.symbol
        price = self.last_price[symbol]
        if signal.limit_price is not None:
            price = signal.limit_price  # a limit buy never pays more than its limit
        spec = self.specs[symbol]
        target, notional, binding, room, numbers = self._entry_size(signal, price)
        qty = spec.floor_qty(notional / price)
        if qty <= 0 or qty < spec.min_qty or qty * price < max(spec.min_notional, ZERO):
            self._refuse(
                signal, binding, f"no room for {symbol}: {binding} leaves {room:.8g}", numbers
            )
            return
        if symbol in self._perpetual and self._perp_refused(signal, qty, price, numbers):
            return
        if notional < target:
            numbers["approved_notional"] = str(qty * price)
            self._publish(
                RiskEvent(
                    event_id=derive_id("risk", signal.event_id, "resize"),
                    ts=now,
                    cause_id=signal.event_id,
                    kind="resize",
                    reason=binding,
                    symbol=symbol,
                    state=self.state,
                    message=f"{symbol} entry cut to {qty} by {binding}",
                    detail=numbers,
                )
            )
        self._approve(signal, now, signal.side, qty, self.last_price[symbol], Intent.ENTRY)

    def _entry_blocked(self, signal: Signal, now: datetime) -> bool:
        """Refused before sizing: reducing, too many positions, or the order rate."""
        s = self.settings
        if self.state is TradingState.REDUCING:
            self._refuse(
                signal, "reducing_only_exits", "daily drawdown limit: only exits today", {}
            )
            return True
        open_symbols = {sym for sym, qty in self.positions.items() if qty}
        open_symbols |= {
            f.order.symbol for f in self.in_flight.values() if f.order.intent is Intent.ENTRY
        }
        if signal.symbol not in open_symbols and len(open_symbols) >= s.max_open_positions:
            self._refuse(
                signal,
                "max_open_positions",
                f"{len(open_symbols)} positions open or opening",
                {"limit": str(s.max_open_positions), "symbols": ",".join(sorted(open_symbols))},
            )
            return True
        return self._rate_limited(signal, now)

    def _entry_size(
        self, signal: Signal, price: Decimal
    ) -> tuple[Decimal, Decimal, str, Decimal, dict[str, str]]:
        """The entry's target notional, the notional the limits allow, the limit that
        binds, its room, and the numbers behind them."""
        s = self.settings
        symbol = signal.symbol
        equity = self.equity()
        if s.sizing_mode == "volatility":
            target = volatility_scaled_notional(
                equity,
                s.position_size_pct,
                s.target_volatility_pct,
                daily_volatility(
                    list(self._closes.get(symbol, ())), self._bars_per_day.get(symbol, 1.0)
                ),
            )
        else:
            target = fixed_fraction_notional(equity, s.position_size_pct)
        symbol_notional = self._notional(symbol) + self._in_flight_entries(symbol)
        total_notional = sum((self._notional(x) for x in self.positions), ZERO)
        total_notional += self._in_flight_entries()
        cost_rate = self._cost_rate if signal.limit_price is None else s.taker_fee_rate
        margin_room: Decimal | None = None
        if symbol in self._perpetual:
            # Only margin is committed: the free wallet carries leverage times its size.
            lev = self.leverage[symbol]
            committed = self.margin_used + self._in_flight_margin()
            free_cash = (self.cash - committed) * lev - self._in_flight_entries() * cost_rate
            cost_rate = cost_rate * lev
            margin_room = (equity * s.max_margin_usage_pct - committed) * lev
        else:
            free_cash = self.cash - self._in_flight_entries() * (1 + self._cost_rate)
        headroom = entry_headroom(
            equity, s.max_position_pct, s.max_total_exposure_pct, symbol_notional,
            total_notional, free_cash, cost_rate, margin_room,
        )  # fmt: skip
        binding, room = headroom.binding()
        numbers = {
            "equity": str(equity),
            "price": str(price),
            "target_notional": str(target),
            "symbol_notional": str(symbol_notional),
            "total_notional": str(total_notional),
            "max_position_notional": str(equity * s.max_position_pct),
            "max_total_notional": str(equity * s.max_total_exposure_pct),
            "free_cash": str(free_cash),
        }
        return target, min(target, room), binding, room, numbers

    def _in_flight_margin(self) -> Decimal:
        return sum(
            (
                f.remaining
                * self.last_price.get(f.order.symbol, f.order.decision_price)
                / self.leverage[f.order.symbol]
                for f in self.in_flight.values()
                if f.order.intent is Intent.ENTRY and f.order.symbol in self._perpetual
            ),
            ZERO,
        )

    def _perp_refused(
        self, signal: Signal, qty: Decimal, price: Decimal, numbers: dict[str, str]
    ) -> bool:
        """The leverage tier and the liquidation distance of the position after the entry."""
        symbol = signal.symbol
        terms = self.specs[symbol].contract
        assert terms is not None
        refusal = perp_entry_refusal(
            symbol, terms, self.leverage[symbol], self.positions.get(symbol, ZERO),
            self.costs.get(symbol, ZERO), signal.side, qty, price, self.last_price[symbol],
            self.settings.min_liquidation_distance_pct, numbers,
        )  # fmt: skip
        if refusal is None:
            return False
        self._refuse(signal, *refusal)
        return True

    def _exit(self, signal: Signal, now: datetime) -> None:
        symbol = signal.symbol
        held = abs(self.positions.get(symbol, ZERO))
        market = signal.order_type is OrderType.MARKET
        # A market exit takes over from resting limit exits: they are cancelled.
        qty = held - self._in_flight_exits(symbol, market_only=market)
        if qty <= 0:
            self._refuse(
                signal,
                "no_position",
                f"nothing to sell in {symbol}",
                {"held": str(held), "exiting": str(self._in_flight_exits(symbol))},
            )
            return
        if self._rate_limited(signal, now):
            return
        if market:
            self._cancel_limit_exits(symbol, now, signal.event_id)
        self._approve(signal, now, signal.side, qty, self.last_price[symbol], Intent.EXIT)

    def _cancel_limit_exits(self, symbol: str, now: datetime, cause_id: str) -> None:
        for flight in list(self.in_flight.values()):
            order = flight.order
            if (
                order.symbol == symbol
                and order.intent is Intent.EXIT
                and order.order_type is OrderType.LIMIT
            ):
                self._publish(
                    OrderCancel(
                        event_id=derive_id("cxl", order.order_id, cause_id),
                        ts=now,
                        cause_id=cause_id,
                        order_id=order.order_id,
                        symbol=symbol,
                        reason="a market exit replaces this resting exit",
                    )
                )

    def _approve(
        self,
        signal: Signal,
        now: datetime,
        side: Side,
        qty: Decimal,
        price: Decimal,
        intent: Intent,
    ) -> None:
        order_id = derive_id("ord", signal.event_id)
        limit = signal.limit_price
        if limit is not None:
            # Onto the tick grid, away from the market: a bid rounds down, an offer up.
            limit = self.specs[signal.symbol].adverse_price(limit, side.opposite)
        order = Order(
            event_id=order_id,
            ts=now,
            cause_id=signal.event_id,
            order_id=order_id,
            symbol=signal.symbol,
            side=side,
            order_type=signal.order_type,
            qty=qty,
            limit_price=limit,
            decision_price=price,
            intent=intent,
            ttl_s=signal.ttl_s or self.settings.order_ttl_seconds,
            time_in_force=signal.time_in_force,
            post_only=signal.post_only,
        )
        self.recent_orders.append(now)
        self._send(order)

    def _send(self, order: Order) -> None:
        self.in_flight[order.order_id] = InFlight(order, order.qty)
        self._publish(order)

    def _refuse(self, signal: Signal, reason: str, message: str, detail: dict[str, str]) -> None:
        detail = {"signal_side": signal.side.value, "state": self.state.value, **detail}
        self._publish(
            RiskEvent(
                event_id=derive_id("risk", signal.event_id, "refusal"),
                ts=self.clock.now(),
                cause_id=signal.event_id,
                kind="refusal",
                reason=reason,
                symbol=signal.symbol,
                state=self.state,
                message=message,
                detail=detail,
            )
        )
