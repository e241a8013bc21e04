"""`claire export`: a run's tables as CSV or JSON, columns stable for other tools."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Final, TextIO

from engine.errors import ConfigError
from engine.maths.round_trips import replay_fills
from engine.plain import plain
from engine.report.figures import fills_of, stored_fills
from engine.store import Store

# The columns each export promises, in order; the named query selects exactly these.
COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "signals": ("signal_id", "ts", "cause_id", "symbol", "side", "confidence", "reason",
                "strategy", "order_type", "limit_price"),
    "orders": ("order_id", "ts", "signal_id", "symbol", "side", "order_type", "qty", "price",
               "decision_price", "intent", "ttl_s", "time_in_force", "post_only"),
    "trades": ("trade_id", "order_id", "ts", "symbol", "side", "qty", "price", "fee",
               "spread_bps", "slippage_bps", "liquidity", "requested_price", "decision_price",
               "status", "remaining_qty", "market_event_id"),
    "positions": ("ts", "snapshot_id", "symbol", "qty", "avg_entry", "mark_price", "cost_basis",
                  "realized_pnl", "unrealized_pnl", "status", "margin", "liquidation_price"),
    "snapshots": ("snapshot_id", "ts", "cause_id", "cash", "equity", "realized_pnl",
                  "unrealized_pnl", "fees", "exposure", "exposure_frac", "peak_equity",
                  "drawdown_frac", "day_start_equity", "daily_drawdown_frac", "open_positions",
                  "funding", "margin_used"),
    "funding": ("payment_id", "ts", "symbol", "qty", "fair_price", "rate", "amount"),
    "liquidations": ("liquidation_id", "ts", "order_id", "symbol", "qty", "entry_price",
                     "liquidation_price", "mark_price", "margin_lost", "fee", "leverage",
                     "maintenance_margin_rate"),
    "risk_events": ("event_id", "ts", "cause_id", "kind", "reason", "symbol", "state", "message",
                    "detail"),
    "alerts": ("event_id", "ts", "cause_id", "severity", "rule", "message", "detail", "status",
               "episode_id", "value"),
    # Computed from the fills: one row per position from flat back to flat.
    "round_trips": ("symbol", "direction", "entry_at", "exit_at", "duration_s", "qty",
                    "entry_price", "exit_price", "realized_pnl", "fees", "net_pnl", "fills"),
    "rejected_rows": ("source", "line", "reason"),
}  # fmt: skip
KINDS: Final = tuple(COLUMNS)


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):  # jsonb detail: one cell of JSON text
        return json.dumps(value, sort_keys=True)
    return plain(value)


def fetch(store: Store, kind: str, run_id: str) -> tuple[list[str], list[dict[str, Any]]]:
    if kind not in KINDS:
        raise ConfigError(f"cannot export {kind!r}; choose one of {', '.join(KINDS)}.")
    if kind == "round_trips":
        return list(COLUMNS[kind]), round_trip_rows(store, run_id)
    rows = store.db.fetch_all(store.queries[f"export_{kind}"], {"run_id": run_id})
    return list(COLUMNS[kind]), rows


def round_trip_rows(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Entry, exit, size, PnL, fees and duration of every completed round trip."""
    _, trips = replay_fills(fills_of(stored_fills(store, run_id)))
    return [
        {
            "symbol": t.symbol,
            "direction": t.direction,
            "entry_at": t.entry_at,
            "exit_at": t.exit_at,
            "duration_s": t.duration_s,
            "qty": t.qty,
            "entry_price": t.entry_price,
            "exit_price": t.exit_price,
            "realized_pnl": t.realized_pnl,
            "fees": t.fees,
            "net_pnl": t.net_pnl,
            "fills": t.fills,
        }
        for t in trips
    ]


def write(columns: list[str], rows: list[dict[str, Any]], fmt: str, out: TextIO) -> int:
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row[c] is None else _cell(row[c]) for c in columns])
    elif fmt == "json":
        json.dump([{c: _cell(row[c]) for c in columns} for row in rows], out, indent=1)
        out.write("\n")
    else:
        raise ConfigError(f"format {fmt!r} is not csv or json.")
    return len(rows)


def export_text(store: Store, kind: str, run_id: str, fmt: str) -> str:
    columns, rows = fetch(store, kind, run_id)
    buffer = io.StringIO()
    write(columns, rows, fmt, buffer)
    return buffer.getvalue()
