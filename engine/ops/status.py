"""`claire status`: one screen for the operator's check every four hours.

The active run (or the newest one): its state and uptime, market time and how
far it is behind the wall clock, the age of the last event of each symbol,
equity, the daily drawdown and the exposure against their limits, open
positions, the trading state, rows per table, the alerts of the last hour, the
health of every process the run has, the newest backup and the last operator
commands. Then one verdict: healthy, degraded (with every reason) or no run.

Figures are what the run has written (it writes about once a second), named as
in `engine.vocabulary`. Process health is liveness today: the run's
process (its lock and pid) and the database server. Separate services will
answer HTTP `/health`; `HealthProbe` is where a probe for them plugs in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import psutil

from engine.config import Settings
from engine.home.processes import process_alive, read_process, run_problems
from engine.kernel.progress import window_fraction
from engine.ops.attended import run_attended
from engine.ops.backups.location import backup_folder
from engine.ops.control import ControlChannel, ops_queries
from engine.ops.service_health import service_health
from engine.plain import plain_dict
from engine.report.figures import count_figures, marks_of, snapshot_figures
from engine.store import RunRecord, RunStatus, Store

HEALTHY: Final = "healthy"
DEGRADED: Final = "degraded"
NO_RUN: Final = "no_run"
EXIT_CODES: Final = {HEALTHY: 0, DEGRADED: 1, NO_RUN: 2}
NEAR_LIMIT: Final = Decimal("0.9")  # a figure at 90 % of its limit degrades the status
ALERT_WINDOW: Final = timedelta(hours=1)
MAX_LIVE_LAG_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class ProcessHealth:
    name: str
    alive: bool
    pid: int | None = None
    uptime_s: float | None = None
    detail: str = ""


# A probe of one more process; HTTP /health of separate services (httpx) plugs in here.
HealthProbe = Callable[[], ProcessHealth]


@dataclass(frozen=True, slots=True)
class SymbolFreshness:
    symbol: str
    last_event_ts: datetime
    age_s: float  # behind the run's clock: wall time live, market time in a replay
    stale: bool


@dataclass(frozen=True)
class OperatorStatus:
    health: str
    reasons: list[str]
    checked_at: datetime
    data_dir: str
    run_id: str | None = None
    status: str | None = None
    end_reason: str | None = None
    data_source: str | None = None
    live: bool = False
    started_at: datetime | None = None
    uptime_s: float | None = None  # of the process running the run now
    market_time: datetime | None = None
    market_lag_s: float | None = None  # wall time minus market time
    progress_frac: Decimal | None = None
    symbols: list[SymbolFreshness] = field(default_factory=list)
    quote_currency: str = ""
    initial_capital: Decimal | None = None
    equity: Decimal | None = None
    total_pnl: Decimal | None = None
    daily_drawdown_frac: Decimal | None = None
    daily_drawdown_limit_frac: Decimal | None = None
    exposure_frac: Decimal | None = None
    exposure_limit_frac: Decimal | None = None
    open_positions: list[dict[str, Any]] = field(default_factory=list)
    max_open_positions: int | None = None
    trading_state: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    alerts_firing: list[dict[str, Any]] = field(default_factory=list)
    processes: list[ProcessHealth] = field(default_factory=list)
    # A run as services: each service's process, /health, restarts and consumer lag.
    services: list[dict[str, Any]] = field(default_factory=list)
    backup: dict[str, Any] = field(default_factory=dict)
    commands: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.health]

    def as_json(self) -> dict[str, Any]:
        return plain_dict(asdict(self))


def choose_run(store: Store, data_dir: Path, run_id: str | None) -> tuple[RunRecord | None, bool]:
    """The run to show (given, else the newest active, else the newest) and whether a
    process runs it now."""
    if run_id is not None:
        record = store.get_run(run_id)
        return record, record is not None and run_attended(store, data_dir, run_id)
    runs = store.list_runs()
    active = [
        r for r in runs if r.status is RunStatus.RUNNING and run_attended(store, data_dir, r.run_id)
    ]
    chosen = max(active or runs, key=lambda r: (r.started_at, r.run_id), default=None)
    if chosen is None:
        return None, False
    return store.get_run(chosen.run_id), bool(active)


def operator_status(
    store: Store,
    data_dir: Path,
    settings: Settings,
    *,
    now: datetime,
    run_id: str | None = None,
    external_db: bool = False,
    probes: Sequence[HealthProbe] = (),
) -> OperatorStatus:
    record, alive = choose_run(store, data_dir, run_id)
    backups = _backups(settings, data_dir, now)
    if record is None:
        return OperatorStatus(
            NO_RUN, ["no run in this data folder yet"], now, str(data_dir), backup=backups
        )
    view = _run_view(store, data_dir, record, alive, now)
    processes = _processes(data_dir, record, alive, external_db, now) + [p() for p in probes]
    services = service_health(store, record.run_id, settings, now, alive)
    view = replace(view, processes=processes, services=services, backup=backups)
    reasons = _degraded_reasons(view, record, alive, settings)
    return replace(view, health=DEGRADED if reasons else HEALTHY, reasons=reasons)


def _run_view(
    store: Store, data_dir: Path, record: RunRecord, alive: bool, now: datetime
) -> OperatorStatus:
    """What the run has written, as a healthy status: the verdict is decided after."""
    config = record.config
    run_settings = config.get("settings") or {}
    live = bool(config.get("live"))
    status = record.status.value
    if record.status is RunStatus.RUNNING and not alive:
        status = "interrupted"
    capital = Decimal(str(run_settings.get("initial_capital", "0")))
    figures = snapshot_figures(store, record.run_id, capital) or {}
    market_time = record.last_event_ts
    reference = now if live else market_time
    stale_s = float(run_settings.get("stale_data_seconds", 30))
    own = read_process(data_dir, record.run_id)
    return OperatorStatus(
        health=HEALTHY,
        reasons=[],
        checked_at=now,
        data_dir=str(data_dir),
        run_id=record.run_id,
        status=status,
        end_reason=record.end_reason,
        data_source=record.data_source,
        live=live,
        started_at=record.started_at,
        uptime_s=(now - own.started_at).total_seconds() if own is not None and alive else None,
        market_time=market_time,
        market_lag_s=(now - market_time).total_seconds() if market_time else None,
        progress_frac=_progress(config, market_time),
        symbols=_freshness(store, record.run_id, reference, stale_s, alive),
        quote_currency=str(config.get("quote_currency", "")),
        initial_capital=capital,
        equity=figures.get("equity"),
        total_pnl=figures.get("total_pnl"),
        daily_drawdown_frac=figures.get("daily_drawdown_frac"),
        daily_drawdown_limit_frac=_decimal(run_settings.get("max_daily_drawdown_pct")),
        exposure_frac=figures.get("exposure_frac"),
        exposure_limit_frac=_decimal(run_settings.get("max_total_exposure_pct")),
        open_positions=_open_positions(store, record.run_id, figures),
        max_open_positions=int(run_settings.get("max_open_positions", 0)) or None,
        trading_state=count_figures(store, record.run_id)["trading_state"],
        rows=store.count_rows(record.run_id),
        alerts_firing=_recent_alerts(store, record.run_id, (reference or now) - ALERT_WINDOW),
        commands=[c.as_json() for c in ControlChannel(store).recent(record.run_id, 5)],
    )


def _freshness(
    store: Store, run_id: str, reference: datetime | None, stale_s: float, alive: bool
) -> list[SymbolFreshness]:
    """The age of each symbol's last event; stale past `stale_s` while a process runs."""
    symbols = []
    rows = store.db.fetch_all(ops_queries("status.sql")["symbol_cursors"], {"run_id": run_id})
    for row in rows:
        # Never negative: a symbol written after the run's own time was read is not "ahead".
        age = max(0.0, (reference - row["last_event_ts"]).total_seconds()) if reference else 0.0
        stale = alive and age > stale_s
        symbols.append(SymbolFreshness(row["symbol"], row["last_event_ts"], age, stale))
    return symbols


def _recent_alerts(store: Store, run_id: str, since: datetime) -> list[dict[str, Any]]:
    query = ops_queries("status.sql")["recent_alerts"]
    return [dict(r) for r in store.db.fetch_all(query, {"run_id": run_id, "since": since})]


def _open_positions(store: Store, run_id: str, figures: dict[str, Any]) -> list[dict[str, Any]]:
    positions = (
        marks_of(store, run_id, figures["snapshot_id"]) if figures.get("snapshot_id") else []
    )
    return [
        {
            "symbol": p["symbol"],
            "qty": p["qty"],
            "avg_entry": p["avg_entry"],
            "mark_price": p["mark_price"],
        }
        for p in positions
    ]


def _degraded_reasons(
    view: OperatorStatus, record: RunRecord, alive: bool, settings: Settings
) -> list[str]:
    """Every reason the run is not healthy: failed backups and reports, then the run's state."""
    reasons: list[str] = run_problems(Path(view.data_dir), record.run_id)
    if view.status == "interrupted":
        services = " --services" if view.services else ""  # it resumes as it ran
        reasons.append(
            f"run {record.run_id} is interrupted: no process runs it; continue it with "
            f"`claire papertest start{services} --resume --run {record.run_id}`"
        )
    elif view.status == "failed":
        reasons.append(f"run {record.run_id} failed: {record.end_reason or 'no reason kept'}")
    reasons += [
        f"no market data for {s.symbol} for {s.age_s:,.0f} s" for s in view.symbols if s.stale
    ]
    if record.status is RunStatus.RUNNING or view.status == "interrupted":
        reasons += _trading_reasons(view, alive)
        reasons += _system_reasons(view, alive, settings)
    return reasons


def _trading_reasons(view: OperatorStatus, alive: bool) -> list[str]:
    reasons = []
    if view.trading_state == "halted":
        reasons.append("trading is halted: check why, then `claire risk resume --note TEXT`")
    elif view.trading_state == "reducing":
        reasons.append("trading is reducing: the daily drawdown limit was reached")
    daily, dd_limit = view.daily_drawdown_frac, view.daily_drawdown_limit_frac
    if _near(daily, dd_limit):
        reasons.append(f"daily drawdown {_pct(daily)} is near its limit {_pct(dd_limit)}")
    exposure, exposure_limit = view.exposure_frac, view.exposure_limit_frac
    if _near(exposure, exposure_limit):
        reasons.append(f"exposure {_pct(exposure)} is near its limit {_pct(exposure_limit)}")
    lag = view.market_lag_s
    if view.live and alive and lag is not None and lag > MAX_LIVE_LAG_S:
        reasons.append(f"market time is {lag:,.0f} s behind the wall clock")
    return reasons


def _system_reasons(view: OperatorStatus, alive: bool, settings: Settings) -> list[str]:
    reasons = []
    for alert in view.alerts_firing:
        if alert["severity"] == "critical":
            reasons.append(f"critical alert {alert['rule']}: {alert['message']}")
    for process in view.processes:
        if not process.alive and alive:
            reasons.append(f"process {process.name} is down: {process.detail}")
    for service in view.services if alive else ():
        if service["health"] != "healthy":
            reasons.append(f"service {service['name']} is {service['health']}")
    newest_age = view.backup.get("newest_age_s")
    limit_s = settings.backup_max_age_hours * 3600
    # A live run backs up as it starts; a replay once it has run one BACKUP_INTERVAL.
    due = view.live or (view.uptime_s or 0) > settings.backup_interval_delta().total_seconds()
    if (
        alive
        and due
        and settings.backup_schedule != "off"
        and (newest_age is None or newest_age > limit_s)
    ):
        reasons.append("no backup in the last BACKUP_MAX_AGE_HOURS")
    return reasons


def _decimal(value: Any) -> Decimal | None:
    return Decimal(str(value)) if value not in (None, "") else None


def _near(value: Decimal | None, limit: Decimal | None) -> bool:
    return value is not None and limit is not None and limit > 0 and value >= limit * NEAR_LIMIT


def _pct(value: Decimal | None) -> str:
    return "-" if value is None else f"{value * 100:.2f} %"


def _progress(config: dict[str, Any], market_time: datetime | None) -> Decimal | None:
    window = config.get("window") or {}
    if not window.get("start") or not window.get("end") or market_time is None:
        return None
    done = window_fraction(
        datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"]), market_time
    )
    return None if done is None else Decimal(repr(done)).quantize(Decimal("0.001"))


def _uptime(pid: int, now: datetime) -> float | None:
    try:
        return max(0.0, now.timestamp() - psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


def _processes(
    data_dir: Path, record: RunRecord, alive: bool, external_db: bool, now: datetime
) -> list[ProcessHealth]:
    out = []
    own = read_process(data_dir, record.run_id)
    if alive or own is not None:
        pid = own.pid if own is not None else None
        up = alive and (pid is None or process_alive(pid))
        detail = "holds the run" if up else "gone (its lock is free)"
        if own is not None and own.detached:
            detail += f", detached, log {own.log}"
        if own is not None and own.http_port and up:
            detail += f", http://127.0.0.1:{own.http_port}/health"
        out.append(
            ProcessHealth(
                "run",
                up,
                pid,
                (now - own.started_at).total_seconds() if own is not None and up else None,
                detail,
            )
        )
    if external_db:
        out.append(ProcessHealth("postgres", True, None, None, "external server: answers queries"))
    else:
        from engine.runtime.pidfile import running_server

        server = running_server(Path(data_dir) / "postgres")
        if server is None:
            out.append(ProcessHealth("postgres", False, None, None, "not running"))
        else:
            out.append(
                ProcessHealth(
                    "postgres", True, server.pid, _uptime(server.pid, now), "embedded, ready"
                )
            )
    return out


def _backups(settings: Settings, data_dir: Path, now: datetime) -> dict[str, Any]:
    folder = backup_folder(settings, data_dir)
    newest = folder.newest()
    verified = folder.newest(verified=True)
    return {
        "folder": str(folder.path),
        "count": len(folder.backups()),
        "newest": newest.name if newest else None,
        "newest_age_s": (now - newest.manifest.created_at).total_seconds() if newest else None,
        "newest_verified": verified.name if verified else None,
        "newest_verified_age_s": (now - verified.manifest.created_at).total_seconds()
        if verified
        else None,
    }


__all__ = [
    "EXIT_CODES",
    "HealthProbe",
    "OperatorStatus",
    "ProcessHealth",
    "SymbolFreshness",
    "choose_run",
    "operator_status",
]
