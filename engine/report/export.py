"""`claire export`: a run's tables as CSV or JSON, columns stable for other tools."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Final, TextIO

from engine.errors import ConfigError
from engine.plain import plain
from engine.store import Store

# The columns each export promises, in order; the named query selects exactly these.
COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "signals": ("signal_id", "ts", "cause_id", "symbol", "side", "confidence", "reason",
                "strategy"),
    "orders": ("order_id", "ts", "signal_id", "symbol", "side", "order_type", "qty", "price",
               "decision_price", "intent", "ttl_s"),
    "trades": ("trade_id", "order_id", "ts", "symbol", "side", "qty", "price", "fee",
               "slippage_bps", "liquidity", "requested_price", "status", "remaining_qty",
               "market_event_id"),
    "positions": ("ts", "snapshot_id", "symbol", "qty", "avg_entry", "mark_price", "cost_basis",
                  "realized_pnl", "unrealized_pnl", "status"),
    "snapshots": ("snapshot_id", "ts", "cause_id", "cash", "equity", "realized_pnl",
                  "unrealized_pnl", "fees", "exposure", "exposure_pct", "peak_equity",
                  "drawdown_pct", "day_start_equity", "daily_drawdown_pct", "open_positions"),
    "risk_events": ("event_id", "ts", "cause_id", "kind", "reason", "symbol", "state", "message",
                    "detail"),
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
    rows = store.db.fetch_all(store.queries[f"export_{kind}"], {"run_id": run_id})
    return list(COLUMNS[kind]), rows


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
