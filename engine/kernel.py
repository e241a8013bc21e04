"""Builds the pipeline from settings and a bus, and drives a run through it.

In one process every service reads its streams through its own consumer group
on the in-process bus, and `Pipeline.process` delivers each market event and
everything it causes before the next one: fills, then the portfolio, then the
strategy's signals, then risk's decisions. Decisions depend on event time only,
so the same data and settings always give the same orders and fills.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.bus import InProcessBus
from engine.clock import EventClock
from engine.config import Settings
from engine.events import (
    Alert,
    Candle,
    Event,
    MarketEvent,
    OrderResult,
    RiskEvent,
    Severity,
    TradingState,
)
from engine.execution.service import PaperExchange
from engine.feeds.replay import ReplayPlan, log_rejected, paced, plan_replay
from engine.markets import SymbolSpec
from engine.plain import iso_utc, plain
from engine.portfolio.service import Portfolio
from engine.risk.service import RiskService
from engine.signal.base import Strategy, load_strategy
from engine.signal.service import SignalService

log = logging.getLogger("claire.kernel")

Handler = Callable[[Any], None]


@dataclass
class RunStats:
    """Counters a run keeps for its summary, fed from the streams like any service."""

    fills: int = 0
    fills_by_symbol: Counter[str] = field(default_factory=Counter)
    orders: int = 0
    results_by_status: Counter[str] = field(default_factory=Counter)
    refusals_by_reason: Counter[str] = field(default_factory=Counter)
    resizes_by_reason: Counter[str] = field(default_factory=Counter)
    state_changes: list[RiskEvent] = field(default_factory=list)
    alerts: int = 0
    market_events: int = 0

    def on_result(self, result: OrderResult) -> None:
        self.results_by_status[result.status.value] += 1
        if result.status.is_fill:
            self.fills += 1
            self.fills_by_symbol[result.symbol] += 1

    def on_risk_event(self, event: RiskEvent) -> None:
        if event.kind == "refusal":
            self.refusals_by_reason[event.reason] += 1
        elif event.kind == "resize":
            self.resizes_by_reason[event.reason] += 1
        else:
            self.state_changes.append(event)

    def on_alert(self, alert: Alert) -> None:
        self.alerts += 1
        level = logging.CRITICAL if alert.severity is Severity.CRITICAL else logging.WARNING
        log.log(level, alert.message, extra={"event": "alert", "rule": alert.rule})


class Pipeline:
    """Signal, risk, execution and portfolio on one bus, in one process."""

    def __init__(
        self,
        settings: Settings,
        specs: dict[str, SymbolSpec],
        strategy: Strategy | None = None,
        bus: InProcessBus | None = None,
        clock: EventClock | None = None,
        observers: Iterable[Callable[[Event], None]] = (),
    ) -> None:
        self.settings = settings
        self.specs = specs
        self.bus = bus or InProcessBus()
        self.clock = clock or EventClock()
        self._observers = tuple(observers)
        publish = self.publish
        self.strategy = strategy or load_strategy(settings.strategy)
        self.exchange = PaperExchange(settings, specs, publish)
        self.portfolio = Portfolio(settings.initial_capital, publish)
        self.risk = RiskService(settings, specs, self.clock, publish)
        self.signals = SignalService(self.strategy, publish)
        self.stats = RunStats()
        # Priority order: a route runs only when every route above it is idle, so a
        # fill reaches the portfolio and risk before the strategy's next signal.
        routes: list[tuple[str, str, Handler]] = [
            ("market_data", "execution", self.exchange.on_market),
            ("order_results", "portfolio", self.portfolio.on_result),
            ("order_results", "risk", self.risk.on_result),
            ("order_results", "stats", self.stats.on_result),
            ("market_data", "portfolio", self.portfolio.on_market),
            ("portfolio_snapshots", "risk", self.risk.on_snapshot),
            ("portfolio_snapshots", "signal", self.signals.on_snapshot),
            ("market_data", "risk", self.risk.on_market),
            ("market_data", "signal", self.signals.on_market),
            ("signals", "risk", self.risk.on_signal),
            ("orders", "execution", self.exchange.on_order),
            ("risk_events", "stats", self.stats.on_risk_event),
            ("alerts", "stats", self.stats.on_alert),
        ]
        self._dispatcher = self.bus.dispatcher(routes)
        self._pump = self._dispatcher.drain
        self._events_since_compact = 0

    def publish(self, event: Event) -> None:
        self.bus.publish(event)
        for observer in self._observers:
            observer(event)

    def process(self, event: MarketEvent) -> None:
        """Deliver one market event and everything it causes."""
        self.clock.advance(event.ts)
        self.stats.market_events += 1
        self.publish(event)
        self._pump()
        self._events_since_compact += 1
        if self._events_since_compact >= 4096:
            self._events_since_compact = 0
            self.bus.compact()

    def warm_up(self, candles: Iterable[Candle]) -> int:
        """Show history to the strategy and to risk's volatility, without trading on it.

        A live run starts with the recent candles the exchange still serves, so
        indicators are ready from the first live event. Nothing is published, and
        the stale-data clock only starts with live data.
        """
        count = 0
        for candle in candles:
            list(self.strategy.on_candle(candle, self.signals))
            self.risk.warm_up(candle)
            count += 1
        return count

    def resume_trading(self, note: str = "") -> None:
        self.risk.resume(self.clock.now(), note)
        self._pump()


@dataclass(frozen=True)
class RunSummary:
    quote_currency: str
    start: datetime | None
    end: datetime | None
    market_events: int
    initial_capital: Decimal
    final_equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    fills: int
    fills_by_symbol: dict[str, int]
    orders_by_status: dict[str, int]
    round_trips: int
    wins: int
    max_drawdown_pct: Decimal
    max_exposure_pct: Decimal
    risk_refusals: dict[str, int]
    risk_resizes: dict[str, int]
    trading_state: str
    state_changes: list[dict[str, str]]
    alerts: int
    rejected_input: int
    open_positions: list[dict[str, str]]

    @property
    def total_pnl(self) -> Decimal:
        return self.final_equity - self.initial_capital

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = plain(dict(self.__dict__))
        out["total_pnl"] = plain(self.total_pnl)
        out["win_rate"] = plain(Decimal(self.wins) / self.round_trips) if self.round_trips else "0"
        return out


def summarize(pipeline: Pipeline, plan: ReplayPlan | None, quote: str) -> RunSummary:
    p = pipeline.portfolio
    stats = pipeline.stats
    return RunSummary(
        quote_currency=quote,
        start=plan.start if plan else None,
        end=pipeline.clock.now() if stats.market_events else None,
        market_events=stats.market_events,
        initial_capital=p.initial_capital,
        final_equity=p.equity(),
        realized_pnl=p.realized,
        unrealized_pnl=p.unrealized(),
        fees=p.fees,
        fills=stats.fills,
        fills_by_symbol=dict(sorted(stats.fills_by_symbol.items())),
        orders_by_status=dict(sorted(stats.results_by_status.items())),
        round_trips=len(p.round_trips),
        wins=sum(1 for t in p.round_trips if t.net_pnl > 0),
        max_drawdown_pct=p.max_drawdown_pct,
        max_exposure_pct=p.max_exposure_pct,
        risk_refusals=dict(sorted(stats.refusals_by_reason.items())),
        risk_resizes=dict(sorted(stats.resizes_by_reason.items())),
        trading_state=pipeline.risk.state.value,
        state_changes=[
            {
                "ts": iso_utc(e.ts),
                "from": e.detail.get("from", ""),
                "to": e.state.value,
                "reason": e.reason,
            }
            for e in stats.state_changes
        ],
        alerts=stats.alerts,
        rejected_input=(plan.rejected_count if plan else 0) + len(pipeline.bus.dead_letters()),
        open_positions=[
            {
                "symbol": s,
                "qty": str(pos.qty),
                "avg_entry": str(pos.avg_entry),
                "mark_price": str(p.marks[s]),
            }
            for s, pos in sorted(p.positions.items())
        ],
    )


def build_replay_pipeline(
    settings: Settings,
    plan: ReplayPlan,
    strategy: Strategy | None = None,
    observers: Iterable[Callable[[Event], None]] = (),
) -> Pipeline:
    specs = plan.symbol_specs(settings.maker_fee_rate, settings.taker_fee_rate, settings.lot_size)
    return Pipeline(settings, specs, strategy=strategy, observers=observers)


def run_replay(
    settings: Settings,
    files: Iterable[Path | str],
    days: float | None = None,
    speed: float | None = None,
    strategy: Strategy | None = None,
    observers: Iterable[Callable[[Event], None]] = (),
    progress: Callable[[datetime], None] | None = None,
) -> tuple[RunSummary, Pipeline]:
    """Replay recorded files through the whole pipeline and summarise the run."""
    strategy = strategy or load_strategy(settings.strategy)  # fail fast, before reading data
    plan = plan_replay(files, days)
    log_rejected(plan)
    pipeline = build_replay_pipeline(settings, plan, strategy, observers)
    process = pipeline.process
    for event in paced(plan.events(), speed):
        process(event)
        if progress is not None:
            progress(event.ts)
    return summarize(pipeline, plan, plan.quote), pipeline


__all__ = [
    "Pipeline",
    "RunStats",
    "RunSummary",
    "TradingState",
    "build_replay_pipeline",
    "run_replay",
    "summarize",
]
