"""`/health`, `/status` and `/metrics` of a single-process run, on one port (8000).

The run's events pass through `observe` on the pipeline's own thread; the HTTP
thread only reads the Prometheus registry and a copy of the figures, never the
pipeline itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge

from engine.events import (
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


class RunMetrics:
    def __init__(self, run_id: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("claire_market_events", "Market events handled", registry=r)
        self.signals = Counter("claire_signals", "Signals from the strategy", registry=r)
        self.fills = Counter("claire_fills", "Fills", ["symbol"], registry=r)
        self.refusals = Counter("claire_risk_refusals", "Risk refusals", ["reason"], registry=r)
        self.equity = Gauge("claire_equity", "Equity in the quote currency", registry=r)
        self.daily_drawdown = Gauge(
            "claire_daily_drawdown_frac", "Drawdown from the UTC day's start", registry=r
        )
        self.drawdown = Gauge("claire_drawdown_frac", "Drawdown from the peak", registry=r)
        self.exposure = Gauge("claire_exposure_frac", "Open notional over equity", registry=r)
        self.positions = Gauge("claire_open_positions", "Open positions", registry=r)
        self.state = Gauge("claire_trading_state", "0 active, 1 reducing, 2 halted", registry=r)
        self.figures: dict[str, Any] = {"service": "papertest", "run_id": run_id}

    def observe(self, event: Event) -> None:
        if isinstance(event, Candle | Trade):
            self.events.inc()
            self.figures["last_event_ts"] = event.ts.isoformat()
        elif isinstance(event, Signal):
            self.signals.inc()
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
    metrics: RunMetrics, checks: dict[str, Callable[[], str | None]]
) -> Iterator[HealthServer | None]:
    """Serve the run's endpoints on `CLAIRE_HTTP_PORT` (default 8000; `off` for none)."""
    wanted = os.environ.get("CLAIRE_HTTP_PORT", str(DEFAULT_PORT)).strip().lower()
    if wanted in ("off", "none", ""):
        yield None
        return
    port = int(wanted) if wanted.isdigit() else DEFAULT_PORT
    server = HealthServer(
        "papertest", port, metrics.registry, checks, lambda: dict(metrics.figures)
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
