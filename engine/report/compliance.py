"""How a run kept to its risk limits: each limit's worst value in a window and whether it held."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from engine.report import stats
from engine.store import Store

ZERO: Final = Decimal(0)

# Design section 3: the limit, the setting it reads, and the refusal reasons that enforce it.
LIMITS: Final = (
    ("MAX_POSITION_PCT", "max_position_pct", ("max_position",)),
    ("MAX_TOTAL_EXPOSURE_PCT", "max_total_exposure_pct", ("max_total_exposure",)),
    ("MAX_DAILY_DRAWDOWN_PCT", "max_daily_drawdown_pct", ("reducing_only_exits",)),
    ("CIRCUIT_BREAKER_THRESHOLD_PCT", "circuit_breaker_threshold_pct", ("halted",)),
    ("MAX_OPEN_POSITIONS", "max_open_positions", ("max_open_positions",)),
    ("STALE_DATA_SECONDS", "stale_data_seconds", ("stale_data",)),
    ("MAX_ORDERS_PER_MINUTE", "max_orders_per_minute", ("order_rate_limit",)),
)


def risk_compliance(
    store: Store,
    params: dict[str, Any],
    settings: dict[str, Any],
    window: list[dict[str, Any]],
    refusals: dict[str, int],
    state_changes: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Each risk limit with its worst value in the window and whether it held.

    `held`: the worst value stayed within the limit. Limits that act when crossed
    have `status` `enforced` when they acted: the drawdown limits when trading went
    reducing or halted, the stale-data limit (a silent symbol's signals are refused).
    """
    worst = _worst_values(store, params, window)
    reacted = {
        "MAX_DAILY_DRAWDOWN_PCT": any(c["to"] != "active" for c in state_changes),
        "CIRCUIT_BREAKER_THRESHOLD_PCT": any(c["to"] == "halted" for c in state_changes),
        # Silence is the market's; the limit acts on it by refusing the symbol's signals.
        "STALE_DATA_SECONDS": True,
    }
    out = []
    for name, key, reasons in LIMITS:
        if key not in settings:
            continue
        limit = Decimal(str(settings[key]))
        value = worst[name]
        held = value <= limit
        status = "held" if held else ("enforced" if reacted.get(name) else "breached")
        out.append(
            {
                "limit": name,
                "setting": limit,
                "worst": value,
                "held": held,
                "status": status,
                "refusals": sum(refusals.get(r, 0) for r in reasons),
            }
        )
    margin = _margin_compliance(settings, window, refusals)
    if margin is not None:
        out.append(margin)
    return out


def _worst_values(
    store: Store, params: dict[str, Any], window: list[dict[str, Any]]
) -> dict[str, Decimal]:
    """The worst value in the window of each limit in `LIMITS`."""
    q = store.queries
    position = store.db.fetch_one(q["report_max_position_share"], params) or {}
    orders = [r["ts"] for r in store.db.fetch_all(q["report_order_times"], params)]
    by_symbol: dict[str, list[datetime]] = defaultdict(list)
    cadence: dict[str, int] = {}
    for r in store.db.fetch_all(q["report_candle_times"], params):
        by_symbol[r["symbol"]].append(r["ts"])
        cadence[r["symbol"]] = int(r["interval_s"])
    return {
        "MAX_POSITION_PCT": Decimal(position.get("worst") or 0),
        "MAX_TOTAL_EXPOSURE_PCT": max((s["exposure_pct"] for s in window), default=ZERO),
        "MAX_DAILY_DRAWDOWN_PCT": max((s["daily_drawdown_pct"] for s in window), default=ZERO),
        "CIRCUIT_BREAKER_THRESHOLD_PCT": max((s["drawdown_pct"] for s in window), default=ZERO),
        "MAX_OPEN_POSITIONS": Decimal(max((s["open_positions"] for s in window), default=0)),
        "STALE_DATA_SECONDS": Decimal(
            max(
                (stats.longest_silence(t, cadence[s]) for s, t in by_symbol.items()),
                default=0,
            )
        ),
        "MAX_ORDERS_PER_MINUTE": Decimal(stats.max_in_window(orders, 60)),
    }


def _margin_compliance(
    settings: dict[str, Any], window: list[dict[str, Any]], refusals: dict[str, int]
) -> dict[str, Any] | None:
    """The margin-usage limit, for a run that used margin; None otherwise."""
    margin = [s["margin_used"] / s["equity"] for s in window if s["equity"] > 0]
    if "max_margin_usage_pct" not in settings or not any(m > 0 for m in margin):
        return None
    limit = Decimal(str(settings["max_margin_usage_pct"]))
    value = max(margin)
    return {
        "limit": "MAX_MARGIN_USAGE_PCT",
        "setting": limit,
        "worst": value,
        "held": value <= limit,
        "status": "held" if value <= limit else "breached",
        "refusals": refusals.get("max_margin_usage", 0),
    }
