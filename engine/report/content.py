"""What a daily or final report says, read from the run's tables alone.

`build_report(store, run_id)` is the final report (the whole run);
`build_report(store, run_id, day=N)` the run's N-th UTC day of market time (day 1
is the UTC day the run's market time starts in). Both have the same fields, named
as in `engine.vocabulary`; a day's money figures are that day's (its PnL
is the change of equity over the day), its statistics of returns run from the
run's start to the day's end. The statistics themselves are the pure functions
of `engine.report.stats`; this module only reads and arranges.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from engine.errors import ClaireError
from engine.events import Side
from engine.maths.round_trips import Fill, SymbolBook, replay_fills
from engine.report import stats
from engine.report.audit import audit_fills, load_audit_input
from engine.report.compliance import risk_compliance
from engine.report.figures import run_header
from engine.report.final import ReportError, _no_figures
from engine.store import RunRecord, Store

ZERO: Final = Decimal(0)
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
END_OF_TIME: Final = datetime(9999, 1, 1, tzinfo=UTC)
BPS: Final = Decimal(10000)


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


@dataclass(frozen=True)
class _Window:
    """The run, the report's time window and the portfolio snapshots around it."""

    run: RunRecord
    day: int | None
    start: datetime
    end: datetime
    market_start: datetime | None
    params: dict[str, Any]
    upto: list[dict[str, Any]]  # every snapshot up to the window's end
    before: list[dict[str, Any]]  # those before the window
    window: list[dict[str, Any]]  # those in it
    first: dict[str, Any] | None  # the last snapshot before the window
    last: dict[str, Any]  # the last snapshot up to the window's end
    initial: Decimal
    settings: dict[str, Any]

    def delta(self, column: str) -> Decimal:
        change: Decimal = self.last[column] - (self.first[column] if self.first else ZERO)
        return change


@dataclass(frozen=True)
class _Trading:
    """Fills, round trips and PnL per symbol over the window."""

    in_window: list[dict[str, Any]]
    trips: list[Any]
    end_positions: list[dict[str, Any]]
    by_symbol: dict[str, dict[str, Any]]
    realized: Decimal
    fees: Decimal


@dataclass(frozen=True)
class _Curves:
    """Equity curve, drawdown, returns and exposure."""

    points: list[tuple[datetime, Decimal]]
    peak_before: Decimal
    drawdown: stats.Drawdown
    day_ends: list[tuple[date, Decimal]]
    daily: list[Decimal]
    exposure_points: list[tuple[datetime, Decimal]]
    last_ts: datetime


def build_report(
    store: Store, run_id: str, day: int | None = None, now: datetime | None = None
) -> Report:
    """The final report (`day` None) or the report of the run's `day`-th UTC day."""
    run = store.get_run(run_id)
    if run is None:
        raise ReportError(f"no run {run_id} in this database; see `claire papertest status`.")
    now = now or datetime.now(UTC)
    header = run_header(run, run.status.value)
    w = _window(store, run, day, header["initial_capital"])
    trading = _trading(store, w)
    curves = _curves(w)
    body: dict[str, Any] = {
        "kind": "final" if day is None else "day",
        "day": day,
        "window_start": w.market_start if day is None else w.start,
        "window_end": curves.last_ts if day is None else w.end,
        **header,
        "version": _version(),
        "config_hash": config_hash(run.config),
        "annualisation": stats.ANNUALISATION,
        **_money_fields(store, w, trading),
        **_trip_fields(trading.trips),
        **_curve_fields(w, curves),
        "pnl_by_symbol": trading.by_symbol,
        **_activity_fields(store, w, now),
        "trades": [{k: f[k] for k in TRADE_COLUMNS} for f in trading.in_window],
        "round_trip_list": [_round_trip_row(t) for t in trading.trips],
        "perpetuals": _perpetuals(store, w),
        "open_positions": [
            {
                "symbol": p["symbol"],
                "qty": p["qty"],
                "avg_entry": p["avg_entry"],
                "mark_price": p["mark_price"],
            }
            for p in trading.end_positions
        ],
    }
    return Report(body, _series(w, trading, curves), now)


TRADE_COLUMNS: Final = (
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


def _window_bounds(store: Store, run: RunRecord, day: int | None) -> tuple[datetime, datetime]:
    """[start, end) of the report: all of time, or the run's `day`-th UTC day."""
    if day is None:
        return EPOCH, END_OF_TIME
    market_start = market_start_of(run)
    days = days_so_far(store, run)
    if market_start is None or not 1 <= day <= max(days, 0):
        span = f"days 1 to {days}" if days else "no day yet"
        raise NoSuchDay(
            f"run {run.run_id} has no day {day} of market time ({span}); choose --day from 1 "
            f"to {days}."
            if days
            else f"run {run.run_id} has no market data yet ({span})."
        )
    return day_window(market_start, day)


def _window(store: Store, run: RunRecord, day: int | None, initial: Decimal) -> _Window:
    start, end = _window_bounds(store, run, day)
    params = {"run_id": run.run_id, "start": start, "end": end}
    upto = store.db.fetch_all(store.queries["report_snapshots"], {**params, "start": EPOCH})
    if not upto:
        raise _no_figures(run.run_id, run.status, run.end_reason)
    before = [s for s in upto if s["ts"] < start]
    window = [s for s in upto if s["ts"] >= start]
    first = before[-1] if before else None
    last = window[-1] if window else first
    assert last is not None
    return _Window(
        run=run,
        day=day,
        start=start,
        end=end,
        market_start=market_start_of(run),
        params=params,
        upto=upto,
        before=before,
        window=window,
        first=first,
        last=last,
        initial=initial,
        settings=run.config.get("settings") or {},
    )


def _trading(store: Store, w: _Window) -> _Trading:
    run_id, start, first = w.run.run_id, w.start, w.first
    fills = store.db.fetch_all(store.queries["report_fills"], w.params)
    in_window = [f for f in fills if f["ts"] >= start]
    start_books, _ = _books([f for f in fills if f["ts"] < start])
    end_books, all_trips = _books(fills)
    trips = [t for t in all_trips if t.exit_at is not None and t.exit_at >= start]
    end_positions = _marks(store, run_id, w.last["event_id"] if w.window else None)
    if not w.window:
        end_positions = _marks(store, run_id, first["event_id"] if first else None)
    start_positions = _marks(store, run_id, first["event_id"] if first else None)
    end_marks = {p["symbol"]: p["mark_price"] for p in end_positions}
    start_marks = {p["symbol"]: p["mark_price"] for p in start_positions}
    by_symbol = _symbol_pnl(start_books, end_books, start_marks, end_marks, trips)
    if w.day is None:  # the portfolio's own totals (they include funding and liquidations)
        realized, fees = w.delta("realized_pnl"), w.delta("fees")
    else:  # a fill counts on the day of its time, even when its snapshot falls at 00:00 next
        realized = sum((f["realized_pnl"] for f in by_symbol.values()), ZERO)
        fees = sum((f["fee"] for f in in_window), ZERO)
    return _Trading(in_window, trips, end_positions, by_symbol, realized, fees)


def _curves(w: _Window) -> _Curves:
    points = [(s["ts"], s["equity"]) for s in w.window]
    peak_before = max([w.initial, *(s["equity"] for s in w.before)])
    drawdown = stats.max_drawdown(points, peak_before, w.start if w.day else w.market_start)
    day_ends = stats.day_end_equity([(s["ts"], s["equity"]) for s in w.upto])
    daily = stats.returns(w.initial, [e for _, e in day_ends])
    exposure_points = [(s["ts"], s["exposure_pct"]) for s in w.window]
    return _Curves(
        points, peak_before, drawdown, day_ends, daily, exposure_points, w.upto[-1]["ts"]
    )


def _money_fields(store: Store, w: _Window, trading: _Trading) -> dict[str, Any]:
    start_equity = w.first["equity"] if w.first else w.initial
    in_window = trading.in_window
    return {
        "start_equity": start_equity,
        "equity": w.last["equity"],
        "total_pnl": w.last["equity"] - start_equity,
        "realized_pnl": trading.realized,
        "unrealized_pnl": w.last["unrealized_pnl"],
        "fees": trading.fees,
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
            audit_fills(load_audit_input(store, w.run.run_id)).as_dict() if w.day is None else None
        ),
        "orders_by_status": _orders_by_status(store, w.params, w.day is None),
    }


def _trip_fields(trips: Sequence[Any]) -> dict[str, Any]:
    figures = stats.trip_figures([t.net_pnl for t in trips])
    return {
        "round_trips": figures.round_trips,
        "wins": figures.wins,
        "win_rate_frac": figures.win_rate_frac,
        "avg_win": figures.avg_win,
        "avg_loss": figures.avg_loss,
        "profit_factor": figures.profit_factor,
        "expectancy": figures.expectancy,
        "expectancy_ratio": figures.expectancy_ratio,
    }


def _curve_fields(w: _Window, c: _Curves) -> dict[str, Any]:
    drawdown, first_day = c.drawdown, w.market_start or w.upto[0]["ts"]
    return {
        "max_drawdown_frac": drawdown.frac,
        "underwater": {
            "duration_s": drawdown.duration_s,
            "peak_at": drawdown.peak_at,
            "low_at": drawdown.valley_at,
            "recovered_at": drawdown.recovered_at,
        },
        "drawdown_frac": w.last["drawdown_pct"],
        "daily_drawdown_frac": w.last["daily_drawdown_pct"],
        "daily_returns": [
            {
                "day": day_of(first_day, datetime.combine(d, time(0), UTC)),
                "date": d.isoformat(),
                "equity": e,
                "return_frac": r,
            }
            for (d, e), r in zip(c.day_ends, c.daily, strict=True)
        ],
        "sharpe": stats.sharpe(c.daily),
        "sortino": stats.sortino(c.daily),
        "max_exposure_frac": max((p[1] for p in c.exposure_points), default=ZERO),
        "avg_exposure_frac": stats.time_weighted_mean(c.exposure_points, min(w.end, c.last_ts)),
        "exposure_frac": w.last["exposure_pct"],
    }


def _activity_fields(store: Store, w: _Window, now: datetime) -> dict[str, Any]:
    """Signals, risk, alerts, incidents and the system."""
    q, params, start = store.queries, w.params, w.start
    signals = store.db.fetch_all(q["report_signals"], params)
    risk_rows = store.db.fetch_all(q["report_risk_events"], params)
    refusals = {r["reason"]: int(r["n"]) for r in risk_rows if r["kind"] == "refusal"}
    resizes = {r["reason"]: int(r["n"]) for r in risk_rows if r["kind"] == "resize"}
    changes = _state_changes(store, params)
    state = store.db.fetch_one(q["report_last_state"], params)
    rejected = store.rejected_by_reason(w.run.run_id)
    episodes = store.db.fetch_all(q["report_alert_episodes"], params)
    incidents = [
        i
        for i in store.db.fetch_all(q["report_incidents"], params)
        if w.day is None or start <= (i["market_ts"] or i["opened_at"]) < w.end
    ]
    return {
        "signals": sum(int(r["n"]) for r in signals),
        "signals_by_symbol": {f"{r['symbol']} {r['side']}": int(r["n"]) for r in signals},
        "risk_refusals": refusals,
        "risk_resizes": resizes,
        "risk_compliance": risk_compliance(store, params, w.settings, w.window, refusals, changes),
        "state_changes": changes,
        "trading_state": state["state"] if state else "active",
        "alerts": sum(1 for e in episodes if e["fired_at"] >= start),
        "alert_episodes": [dict(e) for e in episodes],
        "incidents": [dict(i) for i in incidents],
        "system": _system(store, w.run, now),
        # Replay rows refused as impossible, by reason (the whole run: refused at its start).
        "rejected_input": sum(rejected.values()),
        "rejected_by_reason": rejected,
    }


def _state_changes(store: Store, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "ts": r["ts"],
            "from": (r["detail"] or {}).get("from", ""),
            "to": r["state"],
            "reason": r["reason"],
        }
        for r in store.db.fetch_all(store.queries["report_state_changes"], params)
    ]


def _round_trip_row(t: Any) -> dict[str, Any]:
    return {
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


def _perpetuals(store: Store, w: _Window) -> dict[str, Any] | None:
    """Funding, liquidations and margin, for a run that traded perpetuals; None otherwise."""
    q = store.queries
    funding = store.db.fetch_one(q["report_funding"], w.params) or {}
    liquidations = store.db.fetch_all(q["report_liquidations"], w.params)
    margin = [s["margin_used"] / s["equity"] for s in w.window if s["equity"] > 0]
    if not (int(funding.get("payments") or 0) or liquidations or any(margin)):
        return None
    return {
        "funding_paid": Decimal(funding.get("paid") or 0),
        "funding_received": Decimal(funding.get("received") or 0),
        "funding_payments": int(funding.get("payments") or 0),
        "liquidations": [dict(r) for r in liquidations],
        "max_margin_usage_frac": max(margin, default=ZERO),
    }


def _series(w: _Window, trading: _Trading, c: _Curves) -> Series:
    previous = w.initial
    daily_pnl = []
    for d, e in c.day_ends:
        daily_pnl.append((d, e - previous))
        previous = e
    limit = w.settings.get("max_total_exposure_pct")
    return Series(
        equity=c.points,
        drawdown=stats.drawdown_series(c.points, c.peak_before),
        exposure=c.exposure_points,
        daily_pnl=daily_pnl,
        pnl_by_symbol={s: f["net_pnl"] for s, f in trading.by_symbol.items()},
        exposure_limit=Decimal(str(limit)) if limit is not None else None,
    )
