"""`claire papertest status`: where each run stands, from the database and run locks."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.paperrun import run_is_alive
from engine.plain import plain
from engine.store import RunStatus, Store


@dataclass(frozen=True)
class RunStatusView:
    run_id: str
    status: str  # as stored, or "interrupted" for a running run whose process is gone
    data_source: str
    started_at: datetime
    ended_at: datetime | None
    market_time: datetime | None
    progress_pct: Decimal | None
    equity: Decimal | None
    drawdown_pct: Decimal | None
    exposure_pct: Decimal | None
    fills: int
    orders: int
    refusals: int
    alerts: int
    trading_state: str
    quote_currency: str

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = plain(asdict(self))
        return out


def _progress(config: dict[str, Any], market_time: datetime | None) -> Decimal | None:
    window = config.get("window") or {}
    if not window.get("end") or market_time is None:
        return None
    start = datetime.fromisoformat(window["start"])
    end = datetime.fromisoformat(window["end"])
    total = (end - start).total_seconds()
    done = min(max((market_time - start).total_seconds(), 0.0), total)
    return (Decimal(repr(done)) / Decimal(repr(total)) * 100).quantize(Decimal("0.1"))


def run_statuses(store: Store, data_dir: Path, run_id: str | None = None) -> list[RunStatusView]:
    """Every run, newest first (or just `run_id`)."""
    q = store.queries
    runs = [r for r in store.list_runs() if run_id is None or r.run_id == run_id]
    views = []
    for listed in sorted(runs, key=lambda r: r.started_at, reverse=True):
        run = store.get_run(listed.run_id)
        assert run is not None
        params = {"run_id": run.run_id}
        snap = store.db.fetch_one(q["final_snapshot"], params)
        counts = store.db.fetch_one(q["run_counts"], params) or {}
        state = store.db.fetch_one(q["last_trading_state"], params)
        status = run.status.value
        if run.status is RunStatus.RUNNING and not run_is_alive(data_dir, run.run_id):
            status = "interrupted"
        views.append(
            RunStatusView(
                run_id=run.run_id,
                status=status,
                data_source=run.data_source,
                started_at=run.started_at,
                ended_at=run.ended_at,
                market_time=run.last_event_ts,
                progress_pct=_progress(run.config, run.last_event_ts),
                equity=snap["equity"] if snap else None,
                drawdown_pct=snap["drawdown_pct"] if snap else None,
                exposure_pct=snap["exposure_pct"] if snap else None,
                fills=int(counts.get("fills", 0)),
                orders=int(counts.get("orders", 0)),
                refusals=int(counts.get("refusals", 0)),
                alerts=int(counts.get("alerts", 0)),
                trading_state=state["state"] if state else "active",
                quote_currency=str(run.config.get("quote_currency", "")),
            )
        )
    return views
