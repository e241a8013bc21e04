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
    OrderResult,
    PortfolioSnapshot,
    PositionView,
    Trade,
    Watermark,
    derive_id,
)
from engine.portfolio.accounting import Position, apply_fill, drawdown

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

    @property
    def net_pnl(self) -> Decimal:
        return self.realized_pnl - self.fees


@dataclass(slots=True)
class _Open:
    opened_at: datetime
    realized: Decimal = ZERO
    fees: Decimal = ZERO


class Portfolio:
    def __init__(
        self, initial_capital: Decimal, publish: Callable[[PortfolioSnapshot], object]
    ) -> None:
        self.initial_capital = initial_capital
        self._publish = publish
        self.cash = initial_capital
        self.fees = ZERO
        self.realized = ZERO
        self.positions: dict[str, Position] = {}
        self.marks: dict[str, Decimal] = {}
        self.peak_equity = initial_capital
        self.day_start_equity = initial_capital
        self.max_drawdown_pct = ZERO
        self.max_exposure_pct = ZERO
        self.round_trips: list[RoundTrip] = []
        self.fills = 0
        self._open: dict[str, _Open] = {}
        self._next_day: datetime | None = None
        self._next_minute: datetime | None = None
        self._dirty = False  # a fill since the last snapshot
        self._last_equity = initial_capital  # at the last watermark

    # --- valuation ----------------------------------------------------------

    def equity(self) -> Decimal:
        total = self.cash
        for symbol, position in self.positions.items():
            total += position.qty * self.marks[symbol]
        return total

    def unrealized(self) -> Decimal:
        return sum((p.unrealized(self.marks[s]) for s, p in self.positions.items()), ZERO)

    # --- inputs -------------------------------------------------------------

    def on_market(self, event: Event) -> None:
        if isinstance(event, Candle):
            self.marks[event.symbol] = event.close
        elif isinstance(event, Trade):
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

    def on_result(self, result: OrderResult) -> None:
        if not result.status.is_fill or result.price is None:
            return
        symbol = result.symbol
        before = self.positions.get(symbol, Position())
        effect = apply_fill(before, result.side, result.qty, result.price)
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
                RoundTrip(symbol, trip.opened_at, result.ts, trip.realized, trip.fees)
            )
        else:
            self.positions[symbol] = effect.position
        self._dirty = True  # the snapshot follows at this time's watermark

    def _exposure(self) -> Decimal:
        return sum((abs(p.qty * self.marks[s]) for s, p in self.positions.items()), ZERO)

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
        exposure = unrealized = ZERO
        views = []
        for s, p in sorted(self.positions.items()):
            mark = self.marks[s]
            value = p.qty * mark
            equity += value
            exposure += abs(value)
            unrealized += value - p.cost
            views.append(PositionView(s, p.qty, p.avg_entry, mark, p.cost, p.realized))
        exposure_pct, dd = self._track(equity, exposure)
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
        )
        self._publish(snap)
        return snap
