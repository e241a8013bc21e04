"""What a daily or final report says, read from the run's tables alone.

`build_report(store, run_id)` is the final report (the whole run);
`build_report(store, run_id, day=N)` the run's N-th UTC day of market time (day 1
is the UTC day the run's market time starts in). Both have the same fields, named
as in `engine.report.vocabulary`; a day's money figures are that day's (its PnL
is the change of equity over the day), its statistics of returns run from the
run's start to the day's end. The statistics themselves are the pure functions
of `engine.report.stats`; this module only reads and arranges.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from engine.errors import ClaireError
from engine.events import Side
from engine.report import stats
from engine.report.audit import audit_fills, load_audit_input
from engine.report.figures import run_header
from engine.report.final import ReportError, _no_figures
from engine.report.round_trips import Fill, SymbolBook, replay_fills
from engine.store import RunRecord, Store

ZERO: Final = Decimal(0)
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
END_OF_TIME: Final = datetime(9999, 1, 1, tzinfo=UTC)
BPS: Final = Decimal(10000)

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


class NoSuchDay(ClaireError):
    pass


@dataclass(frozen=True)
class Series:
    """What the charts draw."""

    equity: list[tuple[datetime, Decimal]] = field(default_factory=list)
    drawdown: list[tuple[datetime, Decimal]] = field(default_factory=list)
    exposure: list[tuple[datetime, Decimal]] = field(default_factory=list)
    daily_pnl: list[tuple[date, Decimal]] = field(default_factory=list)
    pnl_by_symbol: dict[str, Decimal] = field(default_factory=dict)
    exposure_limit: Decimal | None = None


@dataclass(frozen=True)
class Report:
    body: dict[str, Any]  # the JSON form, before `plain`
    series: Series
    generated_at: datetime

    @property
    def kind(self) -> str:
        return str(self.body["kind"])


def market_start_of(run: RunRecord) -> datetime | None:
    start = (run.config.get("window") or {}).get("start")
    return datetime.fromisoformat(start) if start else None


def day_window(market_start: datetime, day: int) -> tuple[datetime, datetime]:
    """[start, end) of the run's `day`-th UTC day."""
    first = datetime.combine(market_start.astimezone(UTC).date(), time(0), tzinfo=UTC)
    start = first + timedelta(days=day - 1)
    return start, start + timedelta(days=1)


def day_of(market_start: datetime, ts: datetime) -> int:
    """Which of the run's UTC days `ts` falls in (1 for the first)."""
    return (ts.astimezone(UTC).date() - market_start.astimezone(UTC).date()).days + 1


def config_hash(config: dict[str, Any]) -> str:
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("claire-de-binare")
    except PackageNotFoundError:
        return "unknown"


def _paid(rows: Sequence[dict[str, Any]], column: str) -> Decimal:
    """What fills paid in quote currency for `spread_bps` or `slippage_bps`."""
    total = ZERO
    for r in rows:
        reference = r["requested_price"] or r["price"]
        total += r["qty"] * reference * r[column] / BPS
    return total


def _books(rows: Sequence[dict[str, Any]]) -> tuple[dict[str, SymbolBook], list[Any]]:
    return replay_fills(
        Fill(r["symbol"], Side(r["side"]), r["qty"], r["price"], r["fee"], r["ts"]) for r in rows
    )


def _symbol_pnl(
    start_books: dict[str, SymbolBook],
    end_books: dict[str, SymbolBook],
    start_marks: dict[str, Decimal],
    end_marks: dict[str, Decimal],
    trips: Sequence[Any],
) -> dict[str, dict[str, Any]]:
    """Each symbol's PnL over the window: the change of its book between the two ends."""
    out = {}
    for symbol in sorted(end_books):
        end = end_books[symbol].pnl(end_marks.get(symbol))
        before = start_books.get(symbol)
        start = before.pnl(start_marks.get(symbol)) if before else None
        mine = [t for t in trips if t.symbol == symbol]
        figures = {
            key: end[key] - (start[key] if start else ZERO)
            for key in ("realized_pnl", "unrealized_pnl", "fees", "net_pnl")
        }
        fills = end["fills"] - (start["fills"] if start else 0)
        if not fills and not figures["unrealized_pnl"] and not mine:
            continue
        out[symbol] = {
            **figures,
            "fills": fills,
            "round_trips": len(mine),
            "wins": sum(1 for t in mine if t.net_pnl > 0),
        }
    return out


def _marks(store: Store, run_id: str, snapshot_id: str | None) -> list[dict[str, Any]]:
    if snapshot_id is None:
        return []
    return store.db.fetch_all(
        store.queries["snapshot_positions"], {"run_id": run_id, "snapshot_id": snapshot_id}
    )


def _compliance(
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
    q = store.queries
    position = store.db.fetch_one(q["report_max_position_share"], params) or {}
    orders = [r["ts"] for r in store.db.fetch_all(q["report_order_times"], params)]
    by_symbol: dict[str, list[datetime]] = defaultdict(list)
    cadence: dict[str, int] = {}
    for r in store.db.fetch_all(q["report_candle_times"], params):
        by_symbol[r["symbol"]].append(r["ts"])
        cadence[r["symbol"]] = int(r["interval_s"])
    worst: dict[str, Decimal] = {
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
    margin = [s["margin_used"] / s["equity"] for s in window if s["equity"] > 0]
    if "max_margin_usage_pct" in settings and any(m > 0 for m in margin):
        limit = Decimal(str(settings["max_margin_usage_pct"]))
        value = max(margin)
        out.append(
            {
                "limit": "MAX_MARGIN_USAGE_PCT",
                "setting": limit,
                "worst": value,
                "held": value <= limit,
                "status": "held" if value <= limit else "breached",
                "refusals": refusals.get("max_margin_usage", 0),
            }
        )
    return out


def _orders_by_status(store: Store, params: dict[str, Any], whole_run: bool) -> dict[str, int]:
    """Each order once by its final status: the run's, or the orders placed in the window."""
    if whole_run:
        query, bound = store.queries["orders_by_status"], {"run_id": params["run_id"]}
    else:
        query, bound = store.queries["report_orders_by_status"], params
    return {r["status"]: int(r["n"]) for r in store.db.fetch_all(query, bound)}


def _system(store: Store, run: RunRecord, now: datetime) -> dict[str, Any]:
    """Uptime, restarts, errors and rejected input over the run's sessions so far."""
    sessions = store.db.fetch_all(store.queries["report_sessions"], {"run_id": run.run_id})
    if not sessions:  # a run from before sessions were recorded
        end = run.ended_at or now
        return {
            "sessions": 1,
            "restarts": 0,
            "uptime_s": max(0, int((end - run.started_at).total_seconds())),
            "errors": 0,
            "rejected_input": 0,
        }
    uptime = 0
    for s in sessions:
        end = s["ended_at"] or s["heartbeat_at"]
        uptime += max(0, int((end - s["started_at"]).total_seconds()))
    return {
        "sessions": len(sessions),
        "restarts": len(sessions) - 1,
        "uptime_s": uptime,
        "errors": sum(int(s["errors"]) for s in sessions),
        "rejected_input": sum(int(s["rejected_input"]) for s in sessions),
    }


def days_so_far(store: Store, run: RunRecord) -> int:
    """How many UTC days of market time the run has covered so far."""
    start = market_start_of(run)
    row = store.db.fetch_one(store.queries["report_last_market_ts"], {"run_id": run.run_id})
    last = (row or {}).get("ts") or run.last_event_ts
    if start is None or last is None:
        return 0
    return day_of(start, last)


def build_report(
    store: Store, run_id: str, day: int | None = None, now: datetime | None = None
) -> Report:
    """The final report (`day` None) or the report of the run's `day`-th UTC day."""
    run = store.get_run(run_id)
    if run is None:
        raise ReportError(f"no run {run_id} in this database; see `claire papertest status`.")
    now = now or datetime.now(UTC)
    header = run_header(run, run.status.value)
    initial: Decimal = header["initial_capital"]
    market_start = market_start_of(run)
    if day is None:
        start, end = EPOCH, END_OF_TIME
    else:
        days = days_so_far(store, run)
        if market_start is None or not 1 <= day <= max(days, 0):
            span = f"days 1 to {days}" if days else "no day yet"
            raise NoSuchDay(
                f"run {run_id} has no day {day} of market time ({span}); choose --day from 1 "
                f"to {days}."
                if days
                else f"run {run_id} has no market data yet ({span})."
            )
        start, end = day_window(market_start, day)
    q = store.queries
    params = {"run_id": run_id, "start": start, "end": end}
    upto = store.db.fetch_all(q["report_snapshots"], {**params, "start": EPOCH})
    if not upto:
        raise _no_figures(run_id, run.status, run.end_reason)
    before = [s for s in upto if s["ts"] < start]
    window = [s for s in upto if s["ts"] >= start]
    first = before[-1] if before else None
    last = window[-1] if window else first
    assert last is not None
    start_equity = first["equity"] if first else initial

    def delta(column: str) -> Decimal:
        change: Decimal = last[column] - (first[column] if first else ZERO)
        return change

    # Fills, round trips and PnL per symbol over the window.
    fills = store.db.fetch_all(q["report_fills"], params)
    in_window = [f for f in fills if f["ts"] >= start]
    start_books, _ = _books([f for f in fills if f["ts"] < start])
    end_books, all_trips = _books(fills)
    trips = [t for t in all_trips if t.exit_at is not None and t.exit_at >= start]
    end_positions = _marks(store, run_id, last["event_id"] if window else None)
    if not window:
        end_positions = _marks(store, run_id, first["event_id"] if first else None)
    start_positions = _marks(store, run_id, first["event_id"] if first else None)
    end_marks = {p["symbol"]: p["mark_price"] for p in end_positions}
    start_marks = {p["symbol"]: p["mark_price"] for p in start_positions}
    by_symbol = _symbol_pnl(start_books, end_books, start_marks, end_marks, trips)
    figures = stats.trip_figures([t.net_pnl for t in trips])
    if day is None:  # the portfolio's own totals (they include funding and liquidations)
        realized, fees = delta("realized_pnl"), delta("fees")
    else:  # a fill counts on the day of its time, even when its snapshot falls at 00:00 next
        realized = sum((f["realized_pnl"] for f in by_symbol.values()), ZERO)
        fees = sum((f["fee"] for f in in_window), ZERO)

    # Equity curve, drawdown, returns, exposure.
    points = [(s["ts"], s["equity"]) for s in window]
    peak_before = max([initial, *(s["equity"] for s in before)])
    drawdown = stats.max_drawdown(points, peak_before, start if day else market_start)
    day_ends = stats.day_end_equity([(s["ts"], s["equity"]) for s in upto])
    daily = stats.returns(initial, [e for _, e in day_ends])
    last_ts = upto[-1]["ts"]
    exposure_points = [(s["ts"], s["exposure_pct"]) for s in window]
    settings = run.config.get("settings") or {}

    # Signals, risk, alerts, incidents, the system.
    signals = store.db.fetch_all(q["report_signals"], params)
    risk_rows = store.db.fetch_all(q["report_risk_events"], params)
    refusals = {r["reason"]: int(r["n"]) for r in risk_rows if r["kind"] == "refusal"}
    resizes = {r["reason"]: int(r["n"]) for r in risk_rows if r["kind"] == "resize"}
    changes = [
        {
            "ts": r["ts"],
            "from": (r["detail"] or {}).get("from", ""),
            "to": r["state"],
            "reason": r["reason"],
        }
        for r in store.db.fetch_all(q["report_state_changes"], params)
    ]
    state = store.db.fetch_one(q["report_last_state"], params)
    rejected = store.rejected_by_reason(run.run_id)
    episodes = store.db.fetch_all(q["report_alert_episodes"], params)
    incidents = [
        i
        for i in store.db.fetch_all(q["report_incidents"], params)
        if day is None or start <= (i["market_ts"] or i["opened_at"]) < end
    ]
    funding = store.db.fetch_one(q["report_funding"], params) or {}
    liquidations = store.db.fetch_all(q["report_liquidations"], params)
    margin = [s["margin_used"] / s["equity"] for s in window if s["equity"] > 0]
    perpetual = bool(int(funding.get("payments") or 0) or liquidations or any(margin))

    body: dict[str, Any] = {
        "kind": "final" if day is None else "day",
        "day": day,
        "window_start": market_start if day is None else start,
        "window_end": last_ts if day is None else end,
        **header,
        "version": _version(),
        "config_hash": config_hash(run.config),
        "annualisation": stats.ANNUALISATION,
        "start_equity": start_equity,
        "equity": last["equity"],
        "total_pnl": last["equity"] - start_equity,
        "realized_pnl": realized,
        "unrealized_pnl": last["unrealized_pnl"],
        "fees": fees,
        "spread_paid": _paid(in_window, "spread_bps"),
        "slippage_paid": _paid(in_window, "slippage_bps"),
        "avg_slippage_bps": (
            sum((f["slippage_bps"] for f in in_window), ZERO) / len(in_window)
            if in_window
            else ZERO
        ),
        "fills": len(in_window),
        # The run's fills re-derived from its own market data (final report only).
        "fill_realism": (
            audit_fills(load_audit_input(store, run_id)).as_dict() if day is None else None
        ),
        "orders_by_status": _orders_by_status(store, params, day is None),
        "round_trips": figures.round_trips,
        "wins": figures.wins,
        "win_rate_frac": figures.win_rate_frac,
        "avg_win": figures.avg_win,
        "avg_loss": figures.avg_loss,
        "profit_factor": figures.profit_factor,
        "expectancy": figures.expectancy,
        "expectancy_ratio": figures.expectancy_ratio,
        "max_drawdown_frac": drawdown.frac,
        "underwater": {
            "duration_s": drawdown.duration_s,
            "peak_at": drawdown.peak_at,
            "low_at": drawdown.valley_at,
            "recovered_at": drawdown.recovered_at,
        },
        "drawdown_frac": last["drawdown_pct"],
        "daily_drawdown_frac": last["daily_drawdown_pct"],
        "daily_returns": [
            {
                "day": day_of(market_start or upto[0]["ts"], datetime.combine(d, time(0), UTC)),
                "date": d.isoformat(),
                "equity": e,
                "return_frac": r,
            }
            for (d, e), r in zip(day_ends, daily, strict=True)
        ],
        "sharpe": stats.sharpe(daily),
        "sortino": stats.sortino(daily),
        "max_exposure_frac": max((p[1] for p in exposure_points), default=ZERO),
        "avg_exposure_frac": stats.time_weighted_mean(exposure_points, min(end, last_ts)),
        "exposure_frac": last["exposure_pct"],
        "pnl_by_symbol": by_symbol,
        "signals": sum(int(r["n"]) for r in signals),
        "signals_by_symbol": {f"{r['symbol']} {r['side']}": int(r["n"]) for r in signals},
        "risk_refusals": refusals,
        "risk_resizes": resizes,
        "risk_compliance": _compliance(store, params, settings, window, refusals, changes),
        "state_changes": changes,
        "trading_state": state["state"] if state else "active",
        "alerts": sum(1 for e in episodes if e["fired_at"] >= start),
        "alert_episodes": [dict(e) for e in episodes],
        "incidents": [dict(i) for i in incidents],
        "system": _system(store, run, now),
        # Replay rows refused as impossible, by reason (the whole run: refused at its start).
        "rejected_input": sum(rejected.values()),
        "rejected_by_reason": rejected,
        "trades": [
            {
                k: f[k]
                for k in (
                    "ts",
                    "symbol",
                    "side",
                    "qty",
                    "price",
                    "fee",
                    "spread_bps",
                    "slippage_bps",
                    "liquidity",
                    "status",
                )
            }
            for f in in_window
        ],
        "round_trip_list": [
            {
                "symbol": t.symbol,
                "direction": t.direction,
                "entry_at": t.entry_at,
                "exit_at": t.exit_at,
                "duration_s": t.duration_s,
                "qty": t.qty,
                "entry_price": t.entry_price,
                "exit_price": t.exit_price,
                "net_pnl": t.net_pnl,
                "fees": t.fees,
            }
            for t in trips
        ],
        "perpetuals": None,
        "open_positions": [
            {
                "symbol": p["symbol"],
                "qty": p["qty"],
                "avg_entry": p["avg_entry"],
                "mark_price": p["mark_price"],
            }
            for p in end_positions
        ],
    }
    if perpetual:
        body["perpetuals"] = {
            "funding_paid": Decimal(funding.get("paid") or 0),
            "funding_received": Decimal(funding.get("received") or 0),
            "funding_payments": int(funding.get("payments") or 0),
            "liquidations": [dict(r) for r in liquidations],
            "max_margin_usage_frac": max(margin, default=ZERO),
        }
    previous = initial
    daily_pnl = []
    for d, e in day_ends:
        daily_pnl.append((d, e - previous))
        previous = e
    limit = settings.get("max_total_exposure_pct")
    series = Series(
        equity=points,
        drawdown=stats.drawdown_series(points, peak_before),
        exposure=exposure_points,
        daily_pnl=daily_pnl,
        pnl_by_symbol={s: f["net_pnl"] for s, f in by_symbol.items()},
        exposure_limit=Decimal(str(limit)) if limit is not None else None,
    )
    return Report(body, series, now)
