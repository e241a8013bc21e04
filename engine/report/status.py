"""`claire papertest status`: where each run stands, from the database and run locks.

Field names and units are those of `engine.vocabulary`, shared with the
start summary and the final report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.home.lock import run_is_alive
from engine.kernel.progress import window_fraction
from engine.plain import plain
from engine.report.figures import count_figures, run_header, snapshot_figures
from engine.store import RunStatus, Store

INTERRUPTED = "interrupted"  # running in the database, but no process holds it


@dataclass(frozen=True)
class RunStatusView:
    run_id: str
    status: str  # as stored, or "interrupted" for a running run whose process is gone
    end_reason: str | None
    data_source: str
    strategy: str
    strategy_params: dict[str, Any]
    risk_settings: dict[str, Any]
    quote_currency: str
    started_at: datetime
    ended_at: datetime | None
    market_start: datetime | None
    market_end: datetime | None
    progress_frac: Decimal | None
    initial_capital: Decimal
    equity: Decimal | None
    total_pnl: Decimal | None
    realized_pnl: Decimal | None
    unrealized_pnl: Decimal | None
    fees: Decimal | None
    max_drawdown_frac: Decimal | None
    drawdown_frac: Decimal | None
    daily_drawdown_frac: Decimal | None
    max_exposure_frac: Decimal | None
    exposure_frac: Decimal | None
    fills: int
    orders_by_status: dict[str, int]
    risk_refusals: dict[str, int]
    alerts: int
    trading_state: str

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = plain(asdict(self))
        return out


_NO_FIGURES = dict.fromkeys(
    (
        "equity",
        "total_pnl",
        "realized_pnl",
        "unrealized_pnl",
        "fees",
        "max_drawdown_frac",
        "drawdown_frac",
        "daily_drawdown_frac",
        "max_exposure_frac",
        "exposure_frac",
    )
)


def _progress(config: dict[str, Any], market_time: datetime | None) -> Decimal | None:
    window = config.get("window") or {}
    if not window.get("start") or not window.get("end") or market_time is None:
        return None
    done = window_fraction(
        datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"]), market_time
    )
    return None if done is None else Decimal(repr(done)).quantize(Decimal("0.001"))


def run_statuses(store: Store, data_dir: Path, run_id: str | None = None) -> list[RunStatusView]:
    """Every run, newest first (or just `run_id`)."""
    runs = [r for r in store.list_runs() if run_id is None or r.run_id == run_id]
    views = []
    for listed in sorted(runs, key=lambda r: r.started_at, reverse=True):
        run = store.get_run(listed.run_id)
        assert run is not None
        status = run.status.value
        if run.status is RunStatus.RUNNING and not run_is_alive(data_dir, run.run_id):
            status = INTERRUPTED
        header = run_header(run, status)
        figures = snapshot_figures(store, run.run_id, header["initial_capital"]) or dict(
            _NO_FIGURES
        )
        figures.pop("snapshot_id", None)
        counts = count_figures(store, run.run_id)
        views.append(
            RunStatusView(
                **header,
                progress_frac=_progress(run.config, run.last_event_ts),
                **figures,
                **counts,
            )
        )
    return views
