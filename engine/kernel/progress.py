"""What a run in the foreground shows while it goes: a few views a second, not one per event.

`ProgressFeed` is called with every market event's time and hands a
`ProgressView` to its sink at most every `every_s` seconds of wall time, plus
one at the end; the sink (the command line) renders it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from engine.portfolio.service import Portfolio
from engine.risk.service import RiskService


class Watched(Protocol):
    """What a progress view reads of a pipeline (engine.kernel.pipeline.Pipeline)."""

    portfolio: Portfolio
    risk: RiskService

    @property
    def stats(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class ProgressView:
    market_time: datetime
    done_frac: float | None  # share of the run's market-time window; None when open-ended
    equity: Decimal
    total_pnl: Decimal
    fills: int
    trading_state: str
    quote_currency: str
    # For the status view of a live run: each symbol's last market event, what is held,
    # exposure and the fall from the UTC day's start (fractions of equity).
    last_events: tuple[tuple[str, datetime], ...] = ()
    open_positions: int = 0
    exposure_frac: Decimal | None = None
    daily_drawdown_frac: Decimal | None = None


ProgressSink = Callable[[ProgressView], None]


def window_fraction(start: datetime | None, end: datetime | None, at: datetime) -> float | None:
    if start is None or end is None or end <= start:
        return None
    done = (at - start).total_seconds() / (end - start).total_seconds()
    return min(max(done, 0.0), 1.0)


class ProgressFeed:
    def __init__(
        self,
        pipeline: Watched,
        sink: ProgressSink,
        *,
        start: datetime | None,
        end: datetime | None,
        quote: str,
        every_s: float = 0.1,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipeline = pipeline
        self.sink = sink
        self.start, self.end, self.quote = start, end, quote
        self.every_s = every_s
        self._monotonic = monotonic
        self._next = 0.0
        self._last: datetime | None = None

    def __call__(self, ts: datetime) -> None:
        self._last = ts
        now = self._monotonic()
        if now < self._next:
            return
        self._next = now + self.every_s
        self.sink(self.view(ts))

    def finish(self) -> None:
        """One last view, so the display ends where the run ended."""
        if self._last is not None:
            self.sink(self.view(self._last))

    def view(self, ts: datetime) -> ProgressView:
        portfolio = self.pipeline.portfolio
        equity = portfolio.equity()
        held = {s: p for s, p in portfolio.positions.items() if p.qty}
        exposure = sum((abs(p.qty * portfolio.marks[s]) for s, p in held.items()), Decimal(0))
        day_start = portfolio.day_start_equity
        return ProgressView(
            market_time=ts,
            done_frac=window_fraction(self.start, self.end, ts),
            equity=equity,
            total_pnl=equity - portfolio.initial_capital,
            fills=self.pipeline.stats.fills,
            trading_state=self.pipeline.risk.state.value,
            quote_currency=self.quote,
            last_events=tuple(sorted(self.pipeline.risk.last_seen.items())),
            open_positions=len(held),
            exposure_frac=exposure / equity if equity > 0 else None,
            daily_drawdown_frac=max(Decimal(0), (day_start - equity) / day_start)
            if day_start > 0
            else None,
        )
