"""The figures `papertest status` and `report` share, read from a run's stored events.

Names and units are those of `engine.vocabulary`, the same as the start
summary's, so the three agree on a finished run figure for figure.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.events import Side
from engine.maths.round_trips import Fill, SymbolBook, replay_fills
from engine.signal.loader import DEFAULT_STRATEGY
from engine.store import RunRecord, Store
from engine.vocabulary import risk_settings

ACTIVE = "active"


def run_header(run: RunRecord, status: str) -> dict[str, Any]:
    """What the run record and its stored configuration say."""
    config = run.config
    settings = config.get("settings") or {}
    chosen = config.get("strategy") or {}
    window = config.get("window") or {}
    start = window.get("start")
    return {
        "run_id": run.run_id,
        "status": status,
        "end_reason": run.end_reason,
        "data_source": run.data_source,
        "strategy": chosen.get("spec") or settings.get("strategy") or DEFAULT_STRATEGY,
        "strategy_params": {str(k): v for k, v in chosen.get("params") or ()},
        "risk_settings": risk_settings(settings),
        "quote_currency": str(config.get("quote_currency", "")),
        "initial_capital": Decimal(str(settings.get("initial_capital", "0"))),
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "market_start": datetime.fromisoformat(start) if start else None,
        "market_end": run.last_event_ts,
    }


def snapshot_figures(store: Store, run_id: str, capital: Decimal) -> dict[str, Any] | None:
    """Equity, PnL, drawdown and exposure now, and their extremes; None before any snapshot."""
    q, params = store.queries, {"run_id": run_id}
    snap = store.db.fetch_one(q["final_snapshot"], params)
    if snap is None:
        return None
    extremes = store.db.fetch_one(q["run_extremes"], params) or {}
    return {
        "snapshot_id": snap["event_id"],
        "equity": snap["equity"],
        "total_pnl": snap["equity"] - capital,
        "realized_pnl": snap["realized_pnl"],
        "unrealized_pnl": snap["unrealized_pnl"],
        "fees": snap["fees"],
        "max_drawdown_frac": extremes.get("max_drawdown_pct", Decimal(0)),
        "drawdown_frac": snap["drawdown_pct"],
        "daily_drawdown_frac": snap["daily_drawdown_pct"],
        "max_exposure_frac": extremes.get("max_exposure_pct", Decimal(0)),
        "exposure_frac": snap["exposure_pct"],
    }


def count_figures(store: Store, run_id: str) -> dict[str, Any]:
    """Fills, orders by final status, risk refusals, alerts and the trading state."""
    q, params = store.queries, {"run_id": run_id}
    counts = store.db.fetch_one(q["run_counts"], params) or {}
    state = store.db.fetch_one(q["last_trading_state"], params)
    return {
        "fills": int(counts.get("fills", 0)),
        "orders_by_status": {
            r["status"]: int(r["n"]) for r in store.db.fetch_all(q["orders_by_status"], params)
        },
        "risk_refusals": {
            r["reason"]: int(r["n"]) for r in store.db.fetch_all(q["refusals_by_reason"], params)
        },
        "alerts": int(counts.get("alerts", 0)),
        "trading_state": state["state"] if state else ACTIVE,
    }


def stored_fills(store: Store, run_id: str) -> list[dict[str, Any]]:
    return store.db.fetch_all(store.queries["fills_in_order"], {"run_id": run_id})


def fills_of(rows: list[dict[str, Any]]) -> list[Fill]:
    return [
        Fill(r["symbol"], Side(r["side"]), r["qty"], r["price"], r["fee"], r["ts"]) for r in rows
    ]


def books_of(rows: list[dict[str, Any]]) -> dict[str, SymbolBook]:
    return replay_fills(fills_of(rows))[0]


def marks_of(store: Store, run_id: str, snapshot_id: str) -> list[dict[str, Any]]:
    """The open positions of a snapshot, with their marks."""
    return store.db.fetch_all(
        store.queries["snapshot_positions"], {"run_id": run_id, "snapshot_id": snapshot_id}
    )
