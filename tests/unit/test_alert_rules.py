"""Alert rules over the pipeline: thresholds, silence, adopted episodes and checkpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from engine.alerts.health import HealthMonitor, PipelineProbe
from engine.alerts.rules import (
    DAILY_DRAWDOWN,
    DATA_STOP,
    EXPOSURE,
    MEMORY,
    NO_SIGNALS,
    OPEN_POSITIONS,
    SERVICE_DOWN,
    ServiceHealth,
    health_readings,
    rules,
    silence_readings,
    snapshot_readings,
)
from engine.alerts.service import AlertService
from engine.config import load_settings
from engine.events import (
    Alert,
    AlertStatus,
    Candle,
    Event,
    PortfolioSnapshot,
    PositionView,
    RiskEvent,
    Severity,
    Signal,
    TradingState,
    Watermark,
)

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = load_settings(alert_for_seconds=0, alert_clear_seconds=0)


def _snapshot(
    ts: datetime, daily: str = "0", exposure: str = "0", open_: int = 0
) -> PortfolioSnapshot:
    positions = tuple(PositionView(f"S{i}X", D(1), D(1), D(1), D(1), D(0)) for i in range(open_))
    return PortfolioSnapshot(
        event_id=f"snap-{ts.isoformat()}",
        ts=ts,
        cause_id=None,
        cash=D(100),
        equity=D(100),
        realized_pnl=D(0),
        unrealized_pnl=D(0),
        fees=D(0),
        exposure=D(0),
        exposure_pct=D(exposure),
        peak_equity=D(100),
        drawdown_pct=D(0),
        day_start_equity=D(100),
        daily_drawdown_pct=D(daily),
        positions=positions,
    )


def _candle(symbol: str, ts: datetime) -> Candle:
    return Candle(
        event_id=f"c-{symbol}-{ts.isoformat()}",
        ts=ts,
        cause_id=None,
        symbol=symbol,
        open_time=ts - timedelta(minutes=5),
        interval_s=300,
        open=D(1),
        high=D(1),
        low=D(1),
        close=D(1),
        volume=D(1),
    )


def _mark(ts: datetime) -> Watermark:
    return Watermark(event_id=f"wm-{ts.isoformat()}", ts=ts, cause_id=None)


def test_thresholds_are_the_runbooks_and_come_from_the_settings() -> None:
    table = rules(load_settings())
    assert table[DAILY_DRAWDOWN].threshold == D("0.045")
    assert table[DAILY_DRAWDOWN].severity is Severity.CRITICAL
    assert table[EXPOSURE].threshold == D("0.28") and table[EXPOSURE].severity is Severity.WARNING
    assert table[OPEN_POSITIONS].threshold == 2
    assert table[NO_SIGNALS].threshold == 3600
    assert table[SERVICE_DOWN].for_s == 30 and table[SERVICE_DOWN].severity is Severity.CRITICAL
    assert table[MEMORY].threshold == D("0.90")
    assert table[DATA_STOP].threshold == 30 and table[DATA_STOP].severity is Severity.CRITICAL
    assert rules(load_settings(alert_exposure_pct="0.1"))[EXPOSURE].threshold == D("0.1")


def test_snapshot_readings_compare_against_the_thresholds() -> None:
    table = rules(SETTINGS)
    quiet = {r.rule: r.active for r in snapshot_readings(_snapshot(T0), table)}
    assert quiet == {DAILY_DRAWDOWN: False, EXPOSURE: False, OPEN_POSITIONS: False}
    loud = snapshot_readings(_snapshot(T0, "0.05", "0.29", 3), table)
    assert all(r.active for r in loud)
    assert "daily drawdown 5.00 %" in loud[0].message


def test_a_symbol_is_silent_only_beyond_its_bar_interval_and_the_stale_limit() -> None:
    table = rules(SETTINGS)
    seen = {"ETHBTC": T0}
    at = {
        s: r
        for r in silence_readings(T0 + timedelta(seconds=330), T0, T0, seen, {"ETHBTC": 300}, table)
        if (s := r.key) == "ETHBTC"
    }
    assert not at["ETHBTC"].active
    later = silence_readings(T0 + timedelta(seconds=331), T0, T0, seen, {"ETHBTC": 300}, table)
    assert [r.active for r in later if r.rule == DATA_STOP] == [True]


def test_idle_readings_are_made_only_for_an_episode_the_book_follows() -> None:
    table = rules(SETTINGS)
    seen = {"ETHBTC": T0}
    now = T0 + timedelta(seconds=331)

    def followed(rule: str, key: str) -> bool:
        return rule == EXPOSURE

    snap = snapshot_readings(_snapshot(T0, "0.05", "0.0", 0), table, followed)
    assert [(r.rule, r.active) for r in snap] == [(DAILY_DRAWDOWN, True), (EXPOSURE, False)]
    assert snap[1].message.startswith("exposure 0.00 %")  # idle, but its episode is open
    silent = silence_readings(now, T0, T0, seen, {"ETHBTC": 0}, table, followed)
    assert [(r.rule, r.key, r.active) for r in silent] == [(DATA_STOP, "ETHBTC", True)]
    assert silent[0].message == "no market data for ETHBTC for 331 s (alert after 30 s)"
    everything = silence_readings(now, T0, T0, seen, {"ETHBTC": 0}, table)
    assert [(r.rule, r.active) for r in everything] == [(NO_SIGNALS, False), (DATA_STOP, True)]
    assert everything[0].value == D(331) and everything[0].message.startswith("no signal for 331")


def test_health_readings_for_memory_and_services() -> None:
    table = rules(SETTINGS)
    readings = health_readings(D("0.95"), [ServiceHealth("engine", False, "stuck")], table)
    assert [(r.rule, r.key, r.active) for r in readings] == [
        (MEMORY, "", True),
        (SERVICE_DOWN, "engine", True),
    ]


class Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def alerts(self) -> list[tuple[str, str, str]]:
        return [
            (e.rule, e.status.value, e.detail.get("key", ""))
            for e in self.events
            if isinstance(e, Alert)
        ]


def test_the_service_fires_once_per_episode_and_resolves_when_clear() -> None:
    out = Collect()
    service = AlertService(load_settings(alert_for_seconds=600, alert_clear_seconds=600), out)
    t = T0
    for minute, exposure in enumerate(
        ["0.1", "0.3", "0.3", "0.3", "0.1", "0.3", "0.1", "0.1", "0.1", "0.1"]
    ):
        t = T0 + timedelta(minutes=5 * minute)
        service.on_snapshot(_snapshot(t, exposure=exposure))
        service.on_signal(
            Signal(
                event_id=f"s{minute}",
                ts=t,
                cause_id=None,
                symbol="ETHBTC",
                side="buy",
                confidence=D(1),
                reason="r",
                strategy="s",
            )
        )
        service.on_market(_mark(t))
    # Above from 5 to 15 min: fires at 15 (held 10 min); clear at 20, a blip above at 25,
    # clear again from 30: it resolves at 40, once clear for ten minutes.
    assert out.alerts() == [(EXPOSURE, "firing", ""), (EXPOSURE, "resolved", "")]
    fired, resolved = [e for e in out.events if isinstance(e, Alert)]
    assert fired.ts == T0 + timedelta(minutes=15) and resolved.ts == T0 + timedelta(minutes=40)
    assert resolved.episode_id == fired.event_id == fired.episode_id
    assert fired.value == D("0.3") and resolved.value == D("0.1")


def test_data_stop_fires_for_the_silent_symbol_and_resolves_when_it_is_back() -> None:
    out = Collect()
    service = AlertService(SETTINGS, out)
    for minutes in (0, 5, 10, 15):
        t = T0 + timedelta(minutes=minutes)
        service.on_market(_candle("ETHBTC", t))
        if minutes in (0, 15):
            service.on_market(_candle("LTCBTC", t))
        service.on_signal(
            Signal(
                event_id=f"s{minutes}",
                ts=t,
                cause_id=None,
                symbol="ETHBTC",
                side="buy",
                confidence=D(1),
                reason="r",
                strategy="s",
            )
        )
        service.on_market(_mark(t))
    assert out.alerts() == [(DATA_STOP, "firing", "LTCBTC"), (DATA_STOP, "resolved", "LTCBTC")]


def test_risks_trading_state_alert_resolves_when_trading_is_active_again() -> None:
    out = Collect()
    service = AlertService(SETTINGS, out)
    down = RiskEvent(
        event_id="risk-1",
        ts=T0,
        cause_id=None,
        kind="state_change",
        reason="daily_drawdown",
        symbol=None,
        state=TradingState.REDUCING,
        message="m",
        detail={"from": "active"},
    )
    service.on_risk_event(down)
    service.on_alert(
        Alert(
            event_id="alert-risk-1",
            ts=T0,
            cause_id="risk-1",
            severity=Severity.WARNING,
            rule="daily_drawdown",
            message="daily drawdown limit reached",
        )
    )
    up = RiskEvent(
        event_id="risk-2",
        ts=T0 + timedelta(days=1),
        cause_id=None,
        kind="state_change",
        reason="new_utc_day",
        symbol=None,
        state=TradingState.ACTIVE,
        message="m",
        detail={"from": "reducing"},
    )
    service.on_risk_event(up)
    [resolved] = [e for e in out.events if isinstance(e, Alert)]
    assert resolved.status is AlertStatus.RESOLVED and resolved.episode_id == "alert-risk-1"
    assert resolved.rule == "daily_drawdown" and "new_utc_day" in resolved.message


def test_the_service_state_survives_a_checkpoint() -> None:
    out = Collect()
    service = AlertService(load_settings(alert_for_seconds=600, alert_clear_seconds=0), out)
    service.on_snapshot(_snapshot(T0, exposure="0.5"))
    service.on_market(_candle("ETHBTC", T0))
    service.on_market(_mark(T0))
    copy = AlertService(load_settings(alert_for_seconds=600, alert_clear_seconds=0), out)
    copy.import_state(service.export_state())
    assert copy.export_state() == service.export_state()
    copy.on_market(_mark(T0 + timedelta(minutes=10)))  # still pending: fires after 10 min
    assert (EXPOSURE, "firing", "") in out.alerts()


def test_the_health_monitor_fires_on_a_stuck_engine_after_its_duration() -> None:
    emitted: list[Alert] = []
    now = [T0]

    class Clock:
        def now(self) -> datetime:
            return now[0]

    busy, done = [True], [5]
    probe = PipelineProbe(lambda: busy[0], lambda: done[0])
    monitor = HealthMonitor(
        load_settings(alert_service_down_seconds=30, alert_clear_seconds=0),
        emitted.append,
        [probe],
        memory=lambda: D("0.5"),
        clock=Clock(),
    )
    for seconds in (0, 10, 20, 30, 40):
        now[0] = T0 + timedelta(seconds=seconds)
        monitor.look()
    # Seen busy with no progress from 10 s on: the alert fires 30 s later, at 40 s.
    assert [(a.rule, a.status.value, a.ts) for a in emitted] == [
        (SERVICE_DOWN, "firing", T0 + timedelta(seconds=40))
    ]
    done[0] = 6
    now[0] = T0 + timedelta(seconds=50)
    monitor.look()
    assert emitted[-1].status is AlertStatus.RESOLVED
