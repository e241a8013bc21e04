"""Builds the pipeline from settings and a bus, and drives a run through it.

In one process every service reads its streams through its own consumer group
on the in-process bus, and `Pipeline.process` delivers each market event and
everything it causes before the next one: fills, then the portfolio, then the
strategy's signals, then risk's decisions. Decisions depend on event time only,
so the same data and settings always give the same orders and fills.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.alerts.service import AlertService
from engine.bus import InProcessBus
from engine.clock import EventClock
from engine.config import Settings
from engine.events import (
    Alert,
    AlertStatus,
    Candle,
    Event,
    FundingPayment,
    Liquidation,
    MarketData,
    OrderResult,
    OrderStatus,
    RiskEvent,
    TradingState,
    Watermark,
    derive_id,
)
from engine.execution.service import PaperExchange
from engine.feeds.replay import PerpetualFiles, ReplayPlan, log_rejected, paced, plan_replay
from engine.kernel.progress import ProgressFeed, ProgressSink
from engine.kernel.run_checks import entry_fraction, replay_warnings
from engine.markets import SymbolSpec
from engine.maths.accounting import drawdown
from engine.maths.round_trips import Fill, SymbolBook, pnl_by_symbol
from engine.plain import iso_utc, plain
from engine.portfolio.service import Portfolio
from engine.risk.service import RiskService
from engine.signal.base import Strategy
from engine.signal.loader import StrategyChoice, json_values, load_strategy
from engine.signal.service import SignalService
from engine.stopping import StopSignals
from engine.vocabulary import fraction, risk_settings

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
    funding_payments: int = 0
    liquidations: int = 0
    books: dict[str, SymbolBook] = field(default_factory=dict)

    def on_result(self, result: OrderResult | FundingPayment | Liquidation) -> None:
        if isinstance(result, FundingPayment):
            self.funding_payments += 1
            return
        if isinstance(result, Liquidation):
            self.liquidations += 1
            return
        self.results_by_status[result.status.value] += 1
        if result.status.is_fill and result.price is not None:
            self.fills += 1
            self.fills_by_symbol[result.symbol] += 1
            book = self.books.get(result.symbol)
            if book is None:
                book = self.books[result.symbol] = SymbolBook()
            book.add(
                Fill(result.symbol, result.side, result.qty, result.price, result.fee, result.ts)
            )

    def on_risk_event(self, event: RiskEvent) -> None:
        if event.kind == "refusal":
            self.refusals_by_reason[event.reason] += 1
        elif event.kind == "resize":
            self.resizes_by_reason[event.reason] += 1
        elif event.kind == "state_change":
            self.state_changes.append(event)

    def on_alert(self, alert: Alert) -> None:
        if alert.status is AlertStatus.RESOLVED:
            log.info(alert.message, extra={"event": "alert_resolved", "rule": alert.rule})
            return
        self.alerts += 1
        log.warning(
            alert.message,
            extra={"event": "alert", "rule": alert.rule, "severity": alert.severity.value},
        )


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
        self.portfolio = Portfolio(
            settings.initial_capital, publish, specs, self.exchange.perps.leverage
        )
        self.risk = RiskService(settings, specs, self.clock, publish)
        self.signals = SignalService(self.strategy, publish)
        self.alerts = AlertService(settings, publish)
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
            # Alerts come last: they read what the others did and decide nothing for them.
            ("portfolio_snapshots", "alerts", self.alerts.on_snapshot),
            ("signals", "alerts", self.alerts.on_signal),
            ("risk_events", "alerts", self.alerts.on_risk_event),
            ("market_data", "alerts", self.alerts.on_market),
            ("alerts", "alerts", self.alerts.on_alert),
            ("alerts", "stats", self.stats.on_alert),
        ]
        self._dispatcher = self.bus.dispatcher(routes)
        self._pump = self._dispatcher.drain
        self._events_since_compact = 0

    def publish(self, event: Event) -> None:
        self.bus.publish(event)
        for observer in self._observers:
            observer(event)

    def process(self, event: MarketData) -> None:
        """Deliver one market event and everything it causes."""
        self.process_group((event,))

    def process_group(self, events: Sequence[MarketData]) -> None:
        """Deliver market events that share one time, then a watermark, and what they cause.

        Every service sees all of the group's events before the watermark, so the
        portfolio values and risk judges the account on marks of one time, and the
        strategy's signals are decided on them.
        """
        if not events:
            return
        ts = events[-1].ts
        self.clock.advance(ts)
        self.stats.market_events += len(events)
        publish = self.publish
        for event in events:
            publish(event)
        publish(Watermark(event_id=derive_id("wm", events[-1].event_id), ts=ts, cause_id=None))
        self._pump()
        self._events_since_compact += len(events)
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
            self.signals.warm_up(candle)
            self.risk.warm_up(candle)
            count += 1
        return count

    def resume_trading(self, note: str = "") -> bool:
        """An operator's resume after a halt; False when trading was not halted."""
        resumed = self.risk.resume(self.clock.now(), note)
        self._pump()
        return resumed

    def halt_trading(self, note: str = "") -> bool:
        """An operator's halt, with the circuit breaker's action; False when halted already."""
        halted = self.risk.halt(self.clock.now(), note)
        self._pump()
        return halted

    def close_out(self, note: str = "") -> bool:
        """A planned stop's first step: no new entries, every position closed at market.

        Halts trading with the `flatten` action whatever CIRCUIT_BREAKER_ACTION says,
        for the rest of this run: working orders are cancelled and positions sold (or
        bought back) at market, again at each later time while anything is left. A
        run already halted with `freeze` starts closing at the next market time.
        Returns whether trading was halted by this call.
        """
        risk = self.risk
        if risk.settings.circuit_breaker_action != "flatten":
            risk.settings = risk.settings.model_copy(update={"circuit_breaker_action": "flatten"})
        return self.halt_trading(note)

    def is_flat(self) -> bool:
        """No position held and no order working: what a planned stop waits for."""
        holding = any(p.qty for p in self.portfolio.positions.values())
        return not holding and not self.exchange.working


def by_time(events: Iterable[MarketData]) -> Iterator[list[MarketData]]:
    """Group consecutive market events that share one time."""
    group: list[MarketData] = []
    for event in events:
        if group and event.ts != group[0].ts:
            yield group
            group = []
        group.append(event)
    if group:
        yield group


@dataclass(frozen=True)
class RunSummary:
    """A run's figures, named and measured as in `engine.vocabulary`."""

    quote_currency: str
    market_start: datetime | None
    market_end: datetime | None
    market_events: int
    strategy: str
    strategy_params: dict[str, Any]
    risk_settings: dict[str, Any]
    initial_capital: Decimal
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    fills: int
    pnl_by_symbol: dict[str, dict[str, Any]]
    orders_by_status: dict[str, int]
    round_trips: int
    wins: int
    max_drawdown_frac: Decimal
    drawdown_frac: Decimal
    daily_drawdown_frac: Decimal
    max_exposure_frac: Decimal
    exposure_frac: Decimal
    risk_refusals: dict[str, int]
    risk_resizes: dict[str, int]
    trading_state: str
    state_changes: list[dict[str, str]]
    alerts: int
    rejected_input: int
    open_positions: list[dict[str, Any]]
    # Perpetual futures (zero for spot): net funding received, its payments, liquidations,
    # the deepest margin usage and the leverage of each perpetual.
    funding: Decimal = Decimal(0)
    funding_payments: int = 0
    liquidations: int = 0
    max_margin_frac: Decimal = Decimal(0)
    leverage: dict[str, Decimal] = field(default_factory=dict)

    @property
    def total_pnl(self) -> Decimal:
        return self.equity - self.initial_capital

    @property
    def win_rate_frac(self) -> Decimal:
        return fraction(Decimal(self.wins), Decimal(self.round_trips))

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = plain(dict(self.__dict__))
        out["total_pnl"] = plain(self.total_pnl)
        out["win_rate_frac"] = plain(self.win_rate_frac)
        return out


def _orders_by_final_status(pipeline: Pipeline) -> dict[str, int]:
    """Each order once: ended ones by how they ended, working ones as open or partly filled."""
    counts = Counter(
        {
            status: n
            for status, n in pipeline.stats.results_by_status.items()
            if status != OrderStatus.PARTIALLY_FILLED.value
        }
    )
    for working in pipeline.exchange.working.values():
        partly = working.remaining < working.order.qty
        counts[OrderStatus.PARTIALLY_FILLED.value if partly else "open"] += 1
    return dict(sorted((k, v) for k, v in counts.items() if v))


def strategy_label(strategy: Strategy) -> str:
    cls = type(strategy)
    return f"{cls.__module__}:{cls.__qualname__}"


def summarize(
    pipeline: Pipeline,
    plan: ReplayPlan | None,
    quote: str,
    *,
    strategy: str | None = None,
    strategy_params: dict[str, Any] | None = None,
    market_start: datetime | None = None,
) -> RunSummary:
    p = pipeline.portfolio
    stats = pipeline.stats
    equity = p.equity()
    exposure = sum((abs(pos.qty * p.marks[s]) for s, pos in p.positions.items()), Decimal(0))
    return RunSummary(
        quote_currency=quote,
        market_start=plan.start if plan else market_start,
        market_end=pipeline.clock.now() if stats.market_events else None,
        market_events=stats.market_events,
        strategy=strategy or strategy_label(pipeline.strategy),
        strategy_params=dict(strategy_params or {}),
        risk_settings=risk_settings(pipeline.settings.redacted()),
        initial_capital=p.initial_capital,
        equity=equity,
        realized_pnl=p.realized,
        unrealized_pnl=p.unrealized(),
        fees=p.fees,
        fills=stats.fills,
        pnl_by_symbol=pnl_by_symbol(stats.books, p.marks),
        orders_by_status=_orders_by_final_status(pipeline),
        round_trips=len(p.round_trips),
        wins=sum(1 for t in p.round_trips if t.net_pnl > 0),
        max_drawdown_frac=p.max_drawdown_pct,
        drawdown_frac=drawdown(max(p.peak_equity, equity), equity),
        daily_drawdown_frac=drawdown(p.day_start_equity, equity),
        max_exposure_frac=p.max_exposure_pct,
        exposure_frac=fraction(exposure, equity) if equity > 0 else Decimal(0),
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
                "qty": pos.qty,
                "avg_entry": pos.avg_entry,
                "mark_price": p.marks[s],
            }
            for s, pos in sorted(p.positions.items())
        ],
        funding=p.funding,
        funding_payments=stats.funding_payments,
        liquidations=stats.liquidations,
        max_margin_frac=p.max_margin_frac,
        leverage={
            s: lev
            for s, lev in pipeline.exchange.perps.leverage.items()
            if pipeline.specs[s].perpetual
        },
    )


def build_replay_pipeline(
    settings: Settings,
    plan: ReplayPlan,
    strategy: Strategy | None = None,
    observers: Iterable[Callable[[Event], None]] = (),
) -> Pipeline:
    if plan.perpetual is not None:
        specs = plan.perpetual_specs(settings)
    else:
        specs = plan.symbol_specs(
            settings.maker_fee_rate, settings.taker_fee_rate, settings.lot_size
        )
    return Pipeline(settings, specs, strategy=strategy, observers=observers)


def run_replay(
    settings: Settings,
    files: Iterable[Path | str],
    days: float | None = None,
    speed: float | None = None,
    strategy: Strategy | None = None,
    observers: Iterable[Callable[[Event], None]] = (),
    progress: ProgressSink | None = None,
    *,
    choice: StrategyChoice | None = None,
    stop: StopSignals | None = None,
    on_warning: Callable[[str], None] | None = None,
    perpetual: PerpetualFiles | None = None,
) -> tuple[RunSummary, Pipeline]:
    """Replay recorded files through the whole pipeline and summarise the run.

    With `stop`, a requested stop ends the replay before the next market event
    and the summary covers what ran.
    """
    choice = choice or StrategyChoice(settings.strategy)
    explicit = strategy is not None
    strategy = strategy or choice.build()  # fail fast, before reading data
    plan = plan_replay(files, days, perpetual=perpetual)
    log_rejected(plan)
    if on_warning is not None:
        entry = entry_fraction(settings.position_size_pct, settings.max_position_pct)
        given = "initial_capital" in settings.model_fields_set
        for warning in replay_warnings(
            settings.initial_capital, given, entry, plan, type(strategy)
        ):
            on_warning(warning)
    pipeline = build_replay_pipeline(settings, plan, strategy, observers)
    process = pipeline.process_group
    feed = None
    if progress is not None:
        feed = ProgressFeed(
            pipeline, progress, start=plan.start, end=replay_end(plan), quote=plan.quote
        )
    sleep = stop.sleep if stop is not None else time.sleep
    for group in by_time(paced(plan.events(), speed, sleep=sleep)):
        if stop is not None and stop.requested:
            break
        process(group)
        if feed is not None:
            feed(group[-1].ts)
    if feed is not None:
        feed.finish()
    if explicit:
        spec, params = strategy_label(strategy), {}
    else:
        spec, params = choice.spec, json_values(choice.parameters())
    return summarize(pipeline, plan, plan.quote, strategy=spec, strategy_params=params), pipeline


def replay_end(plan: ReplayPlan) -> datetime | None:
    """Where the replay's market time ends: the window's end, else the data's last event."""
    return plan.end if plan.end is not None else plan.last_time


__all__ = [
    "Pipeline",
    "RunStats",
    "RunSummary",
    "TradingState",
    "build_replay_pipeline",
    "by_time",
    "replay_end",
    "run_replay",
    "strategy_label",
    "summarize",
]
