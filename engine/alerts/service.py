"""The alerts service: the runbook's alarm rules over snapshots, signals and market data.

It reads the pipeline's streams like any service and publishes on `alerts`:
market-derived rules (daily drawdown, exposure, open positions, no signals, data
stop) are judged at every watermark in event time, so a replay raises the same
alerts at the same market times; nothing reads alerts back into a decision, so
they never change a fill. Alerts of the wall-clock rules (memory, service health)
come from `HealthMonitor` through `outbox` and are published at the next
watermark.

It also closes episodes that other services open with a one-off alert: a
trading-state alert from risk resolves when trading is active again, and a
feed's `data_stop` when the symbol's data is back.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.alerts.book import AlertBook
from engine.alerts.rules import DATA_STOP, Reading, rules, silence_readings, snapshot_readings
from engine.config import Settings
from engine.events import (
    Alert,
    AlertStatus,
    Candle,
    Event,
    Heartbeat,
    PortfolioSnapshot,
    Quote,
    RiskEvent,
    Severity,
    Signal,
    Trade,
    TradingState,
    Watermark,
    derive_id,
)


class AlertService:
    def __init__(self, settings: Settings, publish: Callable[[Event], object]) -> None:
        self.table = rules(settings)
        self.book = AlertBook(self.table, settings.alert_clear_seconds)
        self._publish = publish
        self.outbox: queue.SimpleQueue[Alert] = queue.SimpleQueue()
        self.started_at: datetime | None = None
        self.now: datetime | None = None
        self.last_signal_at: datetime | None = None
        self.last_seen: dict[str, datetime] = {}
        self.cadence_s: dict[str, int] = {}
        self._snapshot: list[Reading] = []
        # Risk's trading-state alerts still open: (episode id, rule, severity, message).
        self.state_alerts: list[tuple[str, str, str, str]] = []
        self._state_causes: set[str] = set()

    # --- inputs ---------------------------------------------------------------------

    def on_snapshot(self, snapshot: PortfolioSnapshot) -> None:
        self._snapshot = snapshot_readings(snapshot, self.table, self.book.follows)

    def on_signal(self, signal: Signal) -> None:
        self.last_signal_at = signal.ts

    def on_market(self, event: Event) -> None:
        if isinstance(event, Watermark):
            self._evaluate(event.ts, event.event_id)
        elif isinstance(event, Candle):
            self.last_seen[event.symbol] = event.ts
            self.cadence_s[event.symbol] = event.interval_s
        elif isinstance(event, Trade | Quote | Heartbeat):
            self.last_seen[event.symbol] = event.ts

    def on_risk_event(self, event: RiskEvent) -> None:
        if event.kind != "state_change":
            return
        if event.state is not TradingState.ACTIVE:
            self._state_causes.add(event.event_id)
            return
        for episode_id, rule, severity, message in self.state_alerts:
            self._publish(
                Alert(
                    event_id=derive_id("alert-resolved", episode_id),
                    ts=event.ts,
                    cause_id=event.event_id,
                    severity=Severity(severity),
                    rule=rule,
                    message=f"resolved: trading active again ({event.reason}); was: {message}",
                    detail={"state": event.state.value, "reason": event.reason},
                    status=AlertStatus.RESOLVED,
                    episode_id=episode_id,
                )
            )
        self.state_alerts = []

    def on_alert(self, alert: Alert) -> None:
        if alert.episode_id is not None or alert.status is not AlertStatus.FIRING:
            return  # an episode of a rule: already followed
        if alert.cause_id in self._state_causes:
            self._state_causes.discard(alert.cause_id)
            self.state_alerts.append(
                (alert.event_id, alert.rule, alert.severity.value, alert.message)
            )
        elif alert.rule == DATA_STOP and alert.detail.get("symbol") and self.now is not None:
            self.book.adopt(DATA_STOP, alert.detail["symbol"], alert.event_id, self.now)

    # --- rules ----------------------------------------------------------------------

    def _evaluate(self, now: datetime, cause_id: str) -> None:
        self.now = now
        while True:
            try:
                self._publish(self.outbox.get_nowait())
            except queue.Empty:
                break
        if self.started_at is None:
            self.started_at = now
        readings = [
            *self._snapshot,
            *silence_readings(
                now,
                self.started_at,
                self.last_signal_at,
                self.last_seen,
                self.cadence_s,
                self.table,
                self.book.follows,
            ),
        ]
        for alert in self.book.observe(readings, now, cause_id):
            self._publish(alert)

    # --- checkpoint -----------------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        def t(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "episodes": self.book.export_state(),
            "started_at": t(self.started_at),
            "now": t(self.now),
            "last_signal_at": t(self.last_signal_at),
            "last_seen": {s: ts.isoformat() for s, ts in self.last_seen.items()},
            "cadence_s": dict(self.cadence_s),
            "snapshot": [
                [r.rule, r.key, r.active, str(r.value), str(r.threshold), r.message, r.clear]
                for r in self._snapshot
            ],
            "state_alerts": [list(a) for a in self.state_alerts],
            "state_causes": sorted(self._state_causes),
        }

    def import_state(self, body: dict[str, Any]) -> None:
        def t(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        self.book.import_state(body.get("episodes", {}))
        self.started_at = t(body.get("started_at"))
        self.now = t(body.get("now"))
        self.last_signal_at = t(body.get("last_signal_at"))
        self.last_seen = {s: datetime.fromisoformat(ts) for s, ts in body["last_seen"].items()}
        self.cadence_s = {s: int(v) for s, v in body["cadence_s"].items()}
        self._snapshot = [
            Reading(
                rule,
                key,
                bool(active),
                Decimal(value),
                Decimal(threshold),
                message,
                bool(clear[0]) if clear and clear[0] is not None else None,
            )
            for rule, key, active, value, threshold, message, *clear in body.get("snapshot", [])
        ]
        self.state_alerts = [
            (str(a[0]), str(a[1]), str(a[2]), str(a[3])) for a in body.get("state_alerts", [])
        ]
        self._state_causes = set(body.get("state_causes", []))
