"""The portfolio service: applies fills, marks positions, publishes snapshots.

Marks move with every market event, but the account is valued only at watermarks,
when every market event of one time has been applied: so equity, peak, drawdown
and exposure never mix a fresh price of one symbol with a stale one of another. A
snapshot goes out at the watermark after any fill and at the first watermark of
every new minute of event time. Drawdown is measured from the peak equity of the
run and from the equity at the start of the UTC day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from engine.events import (
    ZERO,
    Candle,
    Event,
    FundingPayment,
    Liquidation,
    MarkPrice,
    OrderResult,
    PortfolioSnapshot,
    PositionView,
    Side,
    Trade,
    Watermark,
    derive_id,
)
from engine.markets import SymbolSpec
from engine.maths.accounting import Position, apply_fill, drawdown
from engine.perp.margin import liquidation_price, position_margin

_DAY = timedelta(days=1)
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A position from flat back to flat: net PnL includes its fees."""

    symbol: str
    opened_at: datetime
    closed_at: datetime
    realized_pnl: Decimal
    fees: Decimal
    funding: Decimal = ZERO  # perpetuals: funding received (negative: paid) while open

    @property
    def net_pnl(self) -> Decimal:
        return self.realized_pnl - self.fees + self.funding


@dataclass(slots=True)
class _Open:
    opened_at: datetime
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO


class Portfolio:
    """Spot positions are valued at their market value (cash paid for them left the
    account); perpetual positions at their unrealized PnL on the fair price (only
    margin is committed, and the wallet moves by realized PnL, fees and funding)."""

    def __init__(
        self,
        initial_capital: Decimal,
        publish: Callable[[PortfolioSnapshot], object],
        specs: dict[str, SymbolSpec] | None = None,
        leverage: dict[str, Decimal] | None = None,
    ) -> None:
        self.initial_capital = initial_capital
        self._publish = publish
        self._perpetual = {s for s, spec in (specs or {}).items() if spec.perpetual}
        self._specs = specs or {}
        self._leverage = leverage or {}
        self._mark_fed: set[str] = set()
        self.cash = initial_capital
        self.funding = ZERO  # net funding received
        self.liquidations = 0
        self.fees = ZERO
        self.realized = ZERO
        self.positions: dict[str, Position] = {}
        self.marks: dict[str, Decimal] = {}
        self.peak_equity = initial_capital
        self.day_start_equity = initial_capital
        self.max_drawdown_pct = ZERO
        self.max_exposure_pct = ZERO
        self.max_margin_frac = ZERO  # perpetuals: position margins over equity, deepest
        self.round_trips: list[RoundTrip] = []
        self.fills = 0
        self._open: dict[str, _Open] = {}
        self._next_day: datetime | None = None
        self._next_minute: datetime | None = None
        self._dirty = False  # a fill since the last snapshot
        self._last_equity = initial_capital  # at the last watermark

    # --- valuation ----------------------------------------------------------

    def _value(self, symbol: str, position: Position) -> Decimal:
        """What a position adds to equity at its mark."""
        if symbol in self._perpetual:
            return position.unrealized(self.marks[symbol])
        return position.qty * self.marks[symbol]

    def equity(self) -> Decimal:
        total = self.cash
        for symbol, position in self.positions.items():
            total += self._value(symbol, position)
        return total

    def unrealized(self) -> Decimal:
        return sum((p.unrealized(self.marks[s]) for s, p in self.positions.items()), ZERO)

    # --- inputs -------------------------------------------------------------

    def on_market(self, event: Event) -> None:
        if isinstance(event, Candle):
            if event.symbol not in self._mark_fed:
                self.marks[event.symbol] = event.close
        elif isinstance(event, Trade):
            if event.symbol not in self._mark_fed:
                self.marks[event.symbol] = event.price
        elif isinstance(event, MarkPrice):
            self._mark_fed.add(event.symbol)
            self.marks[event.symbol] = event.price
        elif isinstance(event, Watermark):
            self._at_watermark(event)

    def _at_watermark(self, mark: Watermark) -> None:
        ts = mark.ts
        equity = self.equity()
        if self._next_day is None or ts >= self._next_day:
            if self._next_day is not None:
                # The day's start is the account at midnight: this watermark's if it is
                # exactly then, else the last one before midnight.
                at_midnight = ts == datetime.combine(ts.date(), time(), UTC)
                self.day_start_equity = equity if at_midnight else self._last_equity
            self._next_day = datetime.combine(ts.date(), time(), UTC) + _DAY
        self._last_equity = equity
        new_minute = self._next_minute is None or ts >= self._next_minute
        if new_minute:
            self._next_minute = ts.replace(second=0, microsecond=0) + _MINUTE
        if new_minute or self._dirty:
            self.snapshot(ts, mark.event_id)
        else:
            self._track(equity, self._exposure())

    def on_result(self, result: OrderResult | FundingPayment | Liquidation) -> None:
        if isinstance(result, FundingPayment):
            self._on_funding(result)
            return
        if isinstance(result, Liquidation):
            self.liquidations += 1
            return
        if not result.status.is_fill or result.price is None:
            return
        symbol = result.symbol
        before = self.positions.get(symbol, Position())
        effect = apply_fill(before, result.side, result.qty, result.price)
        if symbol in self._perpetual:
            self.cash += effect.realized - result.fee
        else:
            self.cash += effect.cash_delta - result.fee
        self.fees += result.fee
        self.realized += effect.realized
        self.fills += 1
        self.marks.setdefault(symbol, result.price)
        trip = self._open.get(symbol)
        if trip is None:
            trip = self._open[symbol] = _Open(result.ts)
        trip.realized += effect.realized
        trip.fees += result.fee
        if effect.position.qty == 0:
            self.positions.pop(symbol, None)
            del self._open[symbol]
            self.round_trips.append(
                RoundTrip(symbol, trip.opened_at, result.ts, trip.realized, trip.fees, trip.funding)
            )
        else:
            self.positions[symbol] = effect.position
        self._dirty = True  # the snapshot follows at this time's watermark

    def _on_funding(self, payment: FundingPayment) -> None:
        self.cash -= payment.amount
        self.funding -= payment.amount
        trip = self._open.get(payment.symbol)
        if trip is not None:
            trip.funding -= payment.amount
        self._dirty = True

    def _exposure(self) -> Decimal:
        return sum((abs(p.qty * self.marks[s]) for s, p in self.positions.items()), ZERO)

    def _perp_view(self, symbol: str, position: Position) -> tuple[Decimal, Decimal | None]:
        """Position margin and liquidation price of a perpetual position."""
        spec = self._specs[symbol]
        assert spec.contract is not None
        margin = position_margin(position.cost, self._leverage[symbol])
        side = Side.BUY if position.qty > 0 else Side.SELL
        mmr = spec.contract.tier(position.qty).maintenance_margin_rate
        return margin, liquidation_price(side, position.avg_entry, position.qty, margin, mmr)

    def _track(self, equity: Decimal, exposure: Decimal) -> tuple[Decimal, Decimal]:
        """Peak, maximum drawdown and maximum exposure on consistent marks."""
        if equity > self.peak_equity:
            self.peak_equity = equity
        exposure_pct = exposure / equity if equity > 0 else ZERO
        dd = drawdown(self.peak_equity, equity)
        if dd > self.max_drawdown_pct:
            self.max_drawdown_pct = dd
        if exposure_pct > self.max_exposure_pct:
            self.max_exposure_pct = exposure_pct
        return exposure_pct, dd

    # --- output -------------------------------------------------------------

    def snapshot(self, ts: datetime, cause_id: str) -> PortfolioSnapshot:
        equity = self.cash
        exposure = unrealized = margin_used = ZERO
        views = []
        for s, p in sorted(self.positions.items()):
            mark = self.marks[s]
            value = p.qty * mark
            exposure += abs(value)
            unrealized += value - p.cost
            if s in self._perpetual:
                equity += value - p.cost
                margin, liquidation = self._perp_view(s, p)
                margin_used += margin
                views.append(
                    PositionView(
                        s, p.qty, p.avg_entry, mark, p.cost, p.realized, margin, liquidation, True
                    )
                )
            else:
                equity += value
                views.append(PositionView(s, p.qty, p.avg_entry, mark, p.cost, p.realized))
        exposure_pct, dd = self._track(equity, exposure)
        if margin_used and equity > 0 and margin_used / equity > self.max_margin_frac:
            self.max_margin_frac = margin_used / equity
        self._dirty = False
        snap = PortfolioSnapshot(
            event_id=derive_id("snap", cause_id),
            ts=ts,
            cause_id=cause_id,
            cash=self.cash,
            equity=equity,
            realized_pnl=self.realized,
            unrealized_pnl=unrealized,
            fees=self.fees,
            exposure=exposure,
            exposure_pct=exposure_pct,
            peak_equity=self.peak_equity,
            drawdown_pct=dd,
            day_start_equity=self.day_start_equity,
            daily_drawdown_pct=drawdown(self.day_start_equity, equity),
            positions=tuple(views),
            funding=self.funding,
            margin_used=margin_used,
        )
        self._publish(snap)
        return snap
