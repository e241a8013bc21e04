"""The paper exchange: keeps working orders and fills them against market events.

Each order can trade from its arrival (`order.ts + latency`) until its time to live
runs out (`order.ts + ttl`), both inclusive. On a candle the order meets the market
at the intra-bar path's price when it arrived (or at the open, on every later bar),
and can take only the bar's volume that traded while it was working; a resting limit
only the volume that traded beyond its limit. A taker fill's price is limited by the
part of the bar after the order arrived, never by a price reached before it. It also keeps
the account the way an exchange does (cash and holdings from its own fills), so a
buy can never spend cash that is not there and a spot sell can never sell more than
is held, whatever risk approved.
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
    Event,
    FundingPayment,
    FundingSettlement,
    Intent,
    Liquidation,
    Liquidity,
    MarkPrice,
    Order,
    OrderCancel,
    OrderResult,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
    Trade,
    derive_id,
)
from engine.execution.fills import (
    FillQuote,
    capped_at_limit,
    fee,
    fillable_qty,
    limit_is_marketable,
    resting_fill,
    taker_fill,
    traded_through,
    widened,
)
from engine.execution.spread import SpreadEstimate, half_spread_bps
from engine.markets import SymbolSpec
from engine.maths.path import PricePath, bar_path, first_reach, share_beyond, share_of_bar
from engine.perp.book import PerpBook
from engine.perp.leverage import leverages
from engine.perp.margin import clamp_rate, funding_fee, liquidation_crossed


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


@dataclass(frozen=True, slots=True)
class _Chance:
    """One moment an order can trade: when, at what market, with how much volume."""

    at: datetime
    reference: Decimal  # the market's middle at `at`
    low: Decimal  # the range the market covers from `at` on
    high: Decimal
    volume: Decimal  # what traded while the order was working
    bounds: tuple[Decimal, Decimal] | None  # on a candle the range from `at` on; None on a trade
    until: datetime  # the end of the order's part of the event


class PaperExchange:
    def __init__(
        self,
        settings: Settings,
        specs: dict[str, SymbolSpec],
        publish: Callable[[OrderResult | FundingPayment | Liquidation], object],
    ) -> None:
        self.settings = settings
        self.specs = specs
        self._publish = publish
        self.account = PaperAccount(settings.initial_capital)
        self.working: dict[str, WorkingOrder] = {}
        self._latency = timedelta(milliseconds=settings.order_latency_ms)
        self._used_volume: tuple[str, Decimal] = ("", ZERO)
        self.spreads: dict[str, SpreadEstimate] = {}
        self.quotes: dict[str, Quote] = {}
        self._quote_max_age = timedelta(seconds=settings.stale_data_seconds)
        self._fixed_spread = (
            settings.spread_bps / 10000 if settings.spread_bps is not None else None
        )
        self.perps = PerpBook(leverages(settings, specs))

    # --- orders ---------------------------------------------------------------

    def on_order(self, order: Order | OrderCancel) -> None:
        if isinstance(order, OrderCancel):
            self.cancel(order.order_id, order.ts, order.reason)
            return
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

    # --- market ---------------------------------------------------------------

    def on_market(self, event: Event) -> None:
        if isinstance(event, Candle | Trade):
            if event.symbol in self.perps.positions:
                self._check_liquidation(event)
            if self.working:
                self._match(event)
            self._learn_spread(event)
            if event.symbol not in self.perps.mark_fed:
                self.perps.fair[event.symbol] = (
                    event.close if isinstance(event, Candle) else event.price
                )
        elif isinstance(event, Quote):
            self.quotes[event.symbol] = event
        elif isinstance(event, MarkPrice):
            symbol = event.symbol
            before = self.perps.marked_at.get(symbol), self.perps.fair.get(symbol)
            self.perps.mark_fed.add(symbol)
            self.perps.fair[symbol] = event.price
            self.perps.marked_at[symbol] = event.ts
            if symbol in self.perps.positions:
                self._check_liquidation(event, before)
        elif isinstance(event, FundingSettlement):
            self._settle_funding(event)

    # --- perpetuals -------------------------------------------------------------

    def _check_liquidation(
        self,
        event: Candle | Trade | MarkPrice,
        before: tuple[datetime | None, Decimal | None] = (None, None),
    ) -> None:
        """Liquidate when the fair price reaches the position's liquidation price.

        The fair price is the mark-price feed where the symbol has one, else the
        traded price (on a candle: its intra-bar path from when the position opened).
        Mark prices are points of a path joined by straight lines: the liquidation
        happens when the line from the previous mark first reaches the level.
        """
        symbol = event.symbol
        if symbol in self.perps.mark_fed and not isinstance(event, MarkPrice):
            return
        spec = self.specs[symbol]
        level = self.perps.liquidation_price(spec)
        if level is None:
            return
        held = self.perps.qty(symbol)
        side = Side.BUY if held > 0 else Side.SELL
        if isinstance(event, Candle):
            path = bar_path(event)
            since = max(self.perps.opened_at[symbol], event.open_time)
            low, high = path.range_from(since)
            if not liquidation_crossed(side, level, low, high):
                return
            # When the path starts beyond the level (a gap), that is the moment.
            at = first_reach(path, since, level) or since
        elif liquidation_crossed(side, level, event.price, event.price):
            at = event.ts
            then, price = before
            if isinstance(event, MarkPrice) and then is not None and price is not None:
                since = max(then, self.perps.opened_at[symbol])
                if since < event.ts:
                    line = PricePath(((then, price), (event.ts, event.price)))
                    at = first_reach(line, since, level) or since
        else:
            return
        self._liquidate(spec, level, at, event)

    def _liquidate(self, spec: SymbolSpec, level: Decimal, at: datetime, event: Event) -> None:
        symbol = spec.symbol
        assert spec.contract is not None
        position = self.perps.positions[symbol]
        margin = self.perps.margin(symbol)
        closing = Side.SELL if position.qty > 0 else Side.BUY
        price = spec.adverse_price(level, closing)
        if price <= 0:
            price = spec.tick_size
        for working in [w for w in self.working.values() if w.order.symbol == symbol]:
            del self.working[working.order.order_id]
            self._finish(
                working.order, at, OrderStatus.CANCELLED, working.remaining, "liquidated", event
            )
        realized = self.perps.book(symbol, closing, abs(position.qty), price, at)
        # The trader loses the whole position margin: what the loss at the liquidation
        # price leaves of it is kept by the exchange as the liquidation fee.
        kept = max(margin + realized, ZERO)
        self.account.cash += realized - kept
        order_id = derive_id("liq", symbol, event.event_id)
        fair = self.perps.fair.get(symbol, price)
        self._publish(
            OrderResult(
                event_id=derive_id("fill", order_id, 1),
                ts=at,
                cause_id=event.event_id,
                order_id=order_id,
                symbol=symbol,
                side=closing,
                status=OrderStatus.FILLED,
                qty=abs(position.qty),
                price=price,
                requested_price=price,
                slippage_bps=ZERO,
                fee=kept,
                liquidity=Liquidity.TAKER,
                remaining_qty=ZERO,
                reason=f"liquidation at {price}: the fair price reached it",
                market_event_id=event.event_id,
            )
        )
        self._publish(
            Liquidation(
                event_id=derive_id("liquidation", order_id),
                ts=at,
                cause_id=event.event_id,
                order_id=order_id,
                symbol=symbol,
                qty=position.qty,
                entry_price=position.avg_entry,
                liquidation_price=price,
                mark_price=fair if fair > 0 else price,
                margin_lost=margin,
                fee=kept,
                leverage=self.perps.leverage[symbol],
                maintenance_margin_rate=spec.contract.tier(position.qty).maintenance_margin_rate,
            )
        )

    def _settle_funding(self, event: FundingSettlement) -> None:
        symbol = event.symbol
        held = self.perps.qty(symbol)
        spec = self.specs.get(symbol)
        if not held or spec is None or spec.contract is None:
            return
        terms = spec.contract
        rate = clamp_rate(event.rate, terms.min_funding_rate, terms.max_funding_rate)
        fair = self.perps.fair[symbol]
        amount = funding_fee(held, fair, rate)
        self.account.cash -= amount
        self._publish(
            FundingPayment(
                event_id=derive_id("funding", symbol, event.event_id),
                ts=event.ts,
                cause_id=event.event_id,
                symbol=symbol,
                qty=held,
                fair_price=fair,
                rate=rate,
                amount=amount,
            )
        )

    def _match(self, event: Candle | Trade) -> None:
        start = event.open_time if isinstance(event, Candle) else event.ts
        for order_id in list(self.working):
            working = self.working[order_id]
            if working.order.symbol != event.symbol:
                # Time has passed the order's last chance when another symbol's data
                # starts after it: every chance of its own symbol up to then was seen.
                if start > working.expires_at:
                    self._expire(working)
                continue
            if event.ts < working.active_at:
                continue
            at = max(working.active_at, start)
            if at > working.expires_at:
                self._expire(working)
                continue
            self._try_fill(working, event, at)
            if order_id not in self.working:
                continue
            tif = working.order.time_in_force
            if working.order.order_type is OrderType.LIMIT and tif is not TimeInForce.GTC:
                del self.working[order_id]
                self._finish(
                    working.order,
                    at,
                    OrderStatus.CANCELLED,
                    working.remaining,
                    f"{tif.value}: only its first chance to trade",
                    event,
                )
            elif event.ts > working.expires_at:
                self._expire(working)

    def _expire(self, working: WorkingOrder) -> None:
        del self.working[working.order.order_id]
        self._finish(
            working.order,
            working.expires_at,
            OrderStatus.EXPIRED,
            working.remaining,
            f"time to live of {working.order.ttl_s}s ran out",
            None,
        )

    def _chance(self, working: WorkingOrder, event: Candle | Trade, at: datetime) -> _Chance:
        if isinstance(event, Trade):
            half = half_spread_bps(self._relative_spread(event.symbol, at)) / 10000
            # A print at the ask (buyer-initiated) sits half a spread above the middle.
            mid = event.price / (1 + event.side.sign * half)
            return _Chance(at, mid, event.price, event.price, event.qty, None, at)
        path = bar_path(event)
        low, high = path.range_from(at)
        until = min(event.ts, working.expires_at)
        volume = event.volume * share_of_bar(event, at, until)
        return _Chance(at, path.price_at(at), low, high, volume, (low, high), until)

    def _volume_through(self, order: Order, event: Candle | Trade, chance: _Chance) -> Decimal:
        """What traded beyond a resting limit while it was working: all a maker fill can meet."""
        if isinstance(event, Trade):
            return chance.volume  # a print through the limit
        assert order.limit_price is not None
        below = order.side is Side.BUY
        share = share_beyond(bar_path(event), chance.at, chance.until, order.limit_price, below)
        return event.volume * share

    def _relative_spread(self, symbol: str, at: datetime) -> Decimal | None:
        """The book's spread while its quote is fresh, else the fixed or estimated one."""
        quote = self.quotes.get(symbol)
        if quote is not None and at - quote.ts <= self._quote_max_age:
            return (quote.ask - quote.bid) / quote.mid
        if self._fixed_spread is not None:
            return self._fixed_spread
        estimate = self.spreads.get(symbol)
        return estimate.relative() if estimate is not None else None

    def _learn_spread(self, event: Candle | Trade) -> None:
        estimate = self.spreads.get(event.symbol)
        if estimate is None:
            estimate = self.spreads[event.symbol] = SpreadEstimate(self.settings.spread_window)
        if isinstance(event, Candle):
            estimate.on_bar(event.high, event.low, event.close)
        else:
            estimate.on_print(event.side, event.price)

    def _price(
        self, working: WorkingOrder, chance: _Chance, qty: Decimal, spec: SymbolSpec
    ) -> FillQuote | str | None:
        """The fill's price, a reason to reject the order, or None when it does not trade."""
        order = working.order
        s = self.settings
        half = half_spread_bps(self._relative_spread(order.symbol, chance.at))

        def take() -> FillQuote:
            return taker_fill(
                order.side,
                chance.reference,
                half,
                qty,
                chance.volume,
                spec,
                s.slippage_base_bps,
                s.slippage_impact_bps,
                chance.bounds,
            )

        if order.order_type is OrderType.MARKET:
            return take()
        assert order.limit_price is not None
        limit = order.limit_price
        if working.bars_seen == 0:
            touch = chance.reference * (1 + order.side.sign * half / 10000)
            if limit_is_marketable(order.side, limit, touch):
                if order.post_only:
                    return "post_only: the order would have taken liquidity on arrival"
                return capped_at_limit(take(), order.side, limit)
        if traded_through(order.side, limit, chance.low, chance.high):
            return resting_fill(limit)
        return None

    def _try_fill(self, working: WorkingOrder, event: Candle | Trade, at: datetime) -> None:
        order = working.order
        spec = self.specs[order.symbol]
        chance = self._chance(working, event, at)
        used_id, used = self._used_volume
        if used_id != event.event_id:
            used = ZERO
        qty = fillable_qty(
            working.remaining, chance.volume, self.settings.participation_cap_pct, used, spec
        )
        qty = self._affordable(order, qty, chance, spec)
        if order.time_in_force is TimeInForce.FOK and qty < working.remaining:
            qty = ZERO  # all or nothing
        if qty <= 0:
            working.bars_seen += 1
            if spec.perpetual:
                if order.intent is Intent.EXIT and not self.perps.reduces(order.symbol, order.side):
                    self._reject(working, at, "reduce_only: there is no position to reduce")
            elif order.side is Side.SELL and self.account.holdings.get(order.symbol, ZERO) <= 0:
                reason = "insufficient_position: spot cannot sell what is not held"
                self._reject(working, at, reason)
            return
        quote = self._price(working, chance, qty, spec)
        working.bars_seen += 1
        if isinstance(quote, str):
            self._reject(working, at, quote)
            return
        if quote is None:
            return
        if quote.liquidity is Liquidity.MAKER:
            # A resting order meets only the volume that traded through its limit.
            through = self._volume_through(order, event, chance)
            cap = self.settings.participation_cap_pct
            qty = min(qty, fillable_qty(working.remaining, through, cap, used, spec))
            if qty <= 0 or (order.time_in_force is TimeInForce.FOK and qty < working.remaining):
                return
        rate = spec.taker_fee if quote.liquidity is Liquidity.TAKER else spec.maker_fee
        # An entry may have been affordable at the reference but not after spread and slippage.
        if spec.perpetual:
            if not self.perps.reduces(order.symbol, order.side):
                room = self.perps.entry_room(self.account.cash, order.symbol, quote.price, rate)
                qty = min(qty, spec.floor_qty(room))
        elif order.side is Side.BUY:
            qty = min(qty, spec.floor_qty(self.account.cash / (quote.price * (1 + rate))))
        if qty <= 0:
            return
        self._fill(working, event, at, qty, quote, fee(qty, quote.price, rate), used)

    def _fill(
        self,
        working: WorkingOrder,
        event: Candle | Trade,
        at: datetime,
        qty: Decimal,
        quote: FillQuote,
        paid: Decimal,
        used: Decimal,
    ) -> None:
        order = working.order
        self._used_volume = (event.event_id, used + qty)
        working.remaining -= qty
        working.fills += 1
        holdings = self.account.holdings
        if self.specs[order.symbol].perpetual:
            realized = self.perps.book(order.symbol, order.side, qty, quote.price, at)
            self.account.cash += realized - paid
        elif order.side is Side.BUY:
            self.account.cash -= qty * quote.price + paid
            holdings[order.symbol] = holdings.get(order.symbol, ZERO) + qty
        else:
            self.account.cash += qty * quote.price - paid
            holdings[order.symbol] -= qty
        done = working.remaining == 0
        if done:
            del self.working[order.order_id]
        self._publish(
            OrderResult(
                event_id=derive_id("fill", order.order_id, working.fills),
                ts=at,
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
                spread_bps=quote.spread_bps,
            )
        )

    def _reject(self, working: WorkingOrder, at: datetime, reason: str) -> None:
        del self.working[working.order.order_id]
        self._finish(working.order, at, OrderStatus.REJECTED, working.remaining, reason, None)

    def _affordable(self, order: Order, qty: Decimal, chance: _Chance, spec: SymbolSpec) -> Decimal:
        if spec.perpetual and self.perps.reduces(order.symbol, order.side):
            return min(qty, abs(self.perps.qty(order.symbol)))  # never flips the position
        if spec.perpetual and order.intent is Intent.EXIT:
            return ZERO  # reduce-only, and there is nothing to reduce
        if order.side is Side.SELL and not spec.perpetual:
            return min(qty, self.account.holdings.get(order.symbol, ZERO))
        # The highest price this chance can fill at bounds what the cash can pay for.
        half = half_spread_bps(self._relative_spread(order.symbol, chance.at))
        if chance.bounds is not None:
            ceiling = widened(Side.BUY, chance.bounds[1], half, spec)
        else:
            s = self.settings
            worst = half + s.slippage_base_bps + s.slippage_impact_bps
            ceiling = chance.reference * (1 + worst / 10000) + spec.tick_size
        if order.limit_price is not None:
            ceiling = min(ceiling, order.limit_price) if order.side is Side.BUY else ceiling
        if spec.perpetual:
            room = self.perps.entry_room(self.account.cash, order.symbol, ceiling, spec.taker_fee)
            return min(qty, spec.floor_qty(room))
        return min(qty, spec.floor_qty(self.account.cash / (ceiling * (1 + spec.taker_fee))))

    def _finish(
        self,
        order: Order,
        ts: datetime,
        status: OrderStatus,
        remaining: Decimal,
        reason: str,
        event: Event | None,
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
                remaining_qty=remaining,
                reason=f"{reason}; {remaining} of {order.qty} unfilled",
                market_event_id=event.event_id if event is not None else None,
            )
        )
