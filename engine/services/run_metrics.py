"""`/health`, `/status` and `/metrics` of a single-process run, on one port (8000).

The run's events pass through `observe` on the pipeline's own thread; the HTTP
thread only reads the Prometheus registry and a copy of the figures, never the
pipeline itself. A service of a multi-process run keeps the figures of the streams
it publishes (`publishes`) in its own registry, so each figure has one source.

Every registry also carries the process's own metrics (`process_resident_memory_bytes`,
...) and `claire_memory_limit_bytes`, the memory the process may use: its
container's limit when it has one, else the machine's memory.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector

from engine.events import (
    STREAMS,
    Candle,
    Event,
    OrderResult,
    PortfolioSnapshot,
    RiskEvent,
    Signal,
    Trade,
    TradingState,
)
from engine.services.http import HealthServer

DEFAULT_PORT: Final = 8000
STATES: Final = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
# cgroup v2, then v1: the memory limit of the container the process runs in.
CGROUP_MEMORY_LIMITS: Final = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)


def memory_limit_bytes(limit_files: Collection[Path] = CGROUP_MEMORY_LIMITS) -> float:
    """The memory this process may use: its cgroup's limit, at most the machine's memory."""
    total = psutil.virtual_memory().total
    for path in limit_files:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" (v2) or a huge number (v1) means no limit
            return float(min(int(text), total))
    return float(total)


class RunMetrics:
    def __init__(
        self,
        run_id: str,
        registry: CollectorRegistry | None = None,
        publishes: Collection[str] | None = None,
    ) -> None:
        """`publishes`: the streams whose figures to export (default: every stream)."""
        self.registry = CollectorRegistry() if registry is None else registry
        r = self.registry
        kept = set(STREAMS if publishes is None else publishes)

        def of(stream: str) -> CollectorRegistry | None:
            return r if stream in kept else None  # unregistered metrics count but stay unseen

        self.events = Counter(
            "claire_market_events", "Market events handled", registry=of("market_data")
        )
        self.signals = Counter(
            "claire_signals", "Signals from the strategy", registry=of("signals")
        )
        self.fills = Counter("claire_fills", "Fills", ["symbol"], registry=of("order_results"))
        self.refusals = Counter(
            "claire_risk_refusals", "Risk refusals", ["reason"], registry=of("risk_events")
        )
        snapshots = of("portfolio_snapshots")
        self.equity = Gauge("claire_equity", "Equity in the quote currency", registry=snapshots)
        self.daily_drawdown = Gauge(
            "claire_daily_drawdown_frac", "Drawdown from the UTC day's start", registry=snapshots
        )
        self.drawdown = Gauge("claire_drawdown_frac", "Drawdown from the peak", registry=snapshots)
        self.exposure = Gauge(
            "claire_exposure_frac", "Open notional over equity", registry=snapshots
        )
        self.positions = Gauge("claire_open_positions", "Open positions", registry=snapshots)
        self.state = Gauge(
            "claire_trading_state", "0 active, 1 reducing, 2 halted", registry=of("risk_events")
        )
        # Market time, and the market time of the newest signal (of the first market time
        # before any): the difference is the silence the `no_signals` rule measures.
        self.market_time = Gauge(
            "claire_market_time_seconds",
            "Event time of the newest market time handled (Unix seconds)",
            registry=r if kept else None,
        )
        self.last_signal = Gauge(
            "claire_last_signal_timestamp_seconds",
            "Event time of the newest signal, or of the first market time before any (Unix s)",
            registry=of("signals"),
        )
        self._silence_from_set = False
        # Market time is read when scraped: a replay reaches a new one with every event.
        self._market_ts: datetime | None = None
        self.market_time.set_function(self._market_seconds)
        ProcessCollector(registry=r)
        Gauge("claire_memory_limit_bytes", "Memory this process may use", registry=r).set_function(
            memory_limit_bytes
        )
        self.figures: dict[str, Any] = {"service": "papertest", "run_id": run_id}

    def _market_seconds(self) -> float:
        return self._market_ts.timestamp() if self._market_ts is not None else 0.0

    def current_figures(self) -> dict[str, Any]:
        """The figures for `/status`, with the newest market event's time."""
        figures = dict(self.figures)
        if self._market_ts is not None:
            figures["last_event_ts"] = self._market_ts.isoformat()
        return figures

    def observe_time(self, ts: datetime) -> None:
        """The market time the pipeline (or this service) has reached."""
        if ts.timestamp() <= 0:
            return  # an event clock before its first event: no market time yet
        if not self._silence_from_set:
            self._silence_from_set = True
            self.last_signal.set(ts.timestamp())
        self._market_ts = ts

    def observe_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.observe(event)

    def observe(self, event: Event) -> None:
        kind = type(event)
        if kind is Candle or kind is Trade:  # most events: kept cheap
            self.events.inc()
            if self._silence_from_set:
                self._market_ts = event.ts
            else:
                self.observe_time(event.ts)
        elif isinstance(event, Signal):
            self.signals.inc()
            self._silence_from_set = True
            self.last_signal.set(event.ts.timestamp())
        elif isinstance(event, OrderResult) and event.status.is_fill:
            self.fills.labels(event.symbol).inc()
        elif isinstance(event, RiskEvent):
            if event.kind == "refusal":
                self.refusals.labels(event.reason).inc()
            elif event.kind == "state_change":
                self.state.set(STATES[event.state])
                self.figures["trading_state"] = event.state.value
        elif isinstance(event, PortfolioSnapshot):
            self.equity.set(float(event.equity))
            self.drawdown.set(float(event.drawdown_pct))
            self.daily_drawdown.set(float(event.daily_drawdown_pct))
            self.exposure.set(float(event.exposure_pct))
            self.positions.set(sum(1 for p in event.positions if p.qty))
            self.figures["equity"] = str(event.equity)


@contextmanager
def serving(
    metrics: RunMetrics,
    checks: dict[str, Callable[[], str | None]],
    host: str = "127.0.0.1",
    port: int | None = DEFAULT_PORT,
) -> Iterator[HealthServer | None]:
    """Serve the run's endpoints on `port` (CLAIRE_HTTP_PORT; None when it is `off`)."""
    if port is None:
        yield None
        return
    server = HealthServer(
        "papertest", port, metrics.registry, checks, metrics.current_figures, host
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
