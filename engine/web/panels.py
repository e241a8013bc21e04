"""The dashboard's nine panels, from the same SQL as the Grafana dashboard.

`panels.sql` holds each panel's query in Grafana's dialect, word for word as in
`compose/grafana/dashboards/claire-paper-trading.json` (a test keeps the two
equal). Here that dialect is expanded the way Grafana expands it: `$run` becomes a
bound parameter and `$__timeFilter(ts)` a range, the whole run unless a start is
given (the web view then fetches only the equity points it does not have yet).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Final

from engine.plain import plain_dict
from engine.store import Store
from engine.store.queries import parse_queries

_PANEL_LINE: Final = re.compile(
    r"^--\s*name:\s*([a-z_]+)\s*\n--\s*panel:\s*(.+?)\s*$", re.MULTILINE
)
_TIME_FILTER: Final = re.compile(r"\$__timeFilter\(([^)]+)\)")
PANELS: Final = (
    "equity_curve",
    "daily_drawdown",
    "exposure",
    "open_positions",
    "total_pnl",
    "trades_per_day",
    "win_rate",
    "recent_trades",
    "daily_pnl",
)


def panels_text() -> str:
    return resources.files("engine.web").joinpath("panels.sql").read_text(encoding="utf-8")


@cache
def grafana_sql() -> MappingProxyType[str, str]:
    """Panel name -> its query as the dashboard holds it."""
    return MappingProxyType(parse_queries(panels_text()))


@cache
def panel_titles() -> MappingProxyType[str, str]:
    """Panel name -> the dashboard panel's title."""
    return MappingProxyType(dict(_PANEL_LINE.findall(panels_text())))


def expand(sql: str) -> str:
    """Grafana's dialect as a psycopg query with `run_id`, `time_from` and `time_to`."""
    sql = _TIME_FILTER.sub(
        r"\1 BETWEEN %(time_from)s::timestamptz AND %(time_to)s::timestamptz", sql
    )
    return sql.replace("'${run}'", "%(run_id)s").replace("'$run'", "%(run_id)s")


@cache
def panel_queries() -> MappingProxyType[str, str]:
    return MappingProxyType({name: expand(sql) for name, sql in grafana_sql().items()})


def panel_rows(
    store: Store, run_id: str, name: str, since: datetime | None = None
) -> list[dict[str, Any]]:
    """One panel's rows (JSON-ready), over the whole run or from `since` on."""
    params = {
        "run_id": run_id,
        "time_from": since.isoformat() if since is not None else "-infinity",
        "time_to": "infinity",
    }
    return [plain_dict(row) for row in store.db.fetch_all(panel_queries()[name], params)]


def panel_values(store: Store, run_id: str, since: datetime | None = None) -> dict[str, Any]:
    """Every panel: series as lists of rows, single figures as their one value (None
    before the first snapshot)."""
    out: dict[str, Any] = {}
    for name in PANELS:
        rows = panel_rows(store, run_id, name, since if name == "equity_curve" else None)
        if name in ("daily_drawdown", "exposure", "open_positions", "total_pnl", "win_rate"):
            out[name] = next(iter(rows[0].values())) if rows else None
        else:
            out[name] = rows
    return out


__all__ = ["PANELS", "expand", "grafana_sql", "panel_queries", "panel_titles", "panel_values"]
