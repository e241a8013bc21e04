"""`claire report --final`: the whole run's figures, from the database alone."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.errors import ClaireError
from engine.events import Side
from engine.plain import plain
from engine.report.round_trips import Fill, net_round_trips, trip_stats
from engine.store import Store


class ReportError(ClaireError):
    pass


@dataclass(frozen=True)
class FinalReport:
    run_id: str
    status: str
    data_source: str
    quote_currency: str
    started_at: datetime
    ended_at: datetime | None
    last_event_ts: datetime | None
    initial_capital: Decimal
    final_equity: Decimal
    total_pnl: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    fills: int
    round_trips: int
    win_rate: Decimal
    avg_win: Decimal
    avg_loss: Decimal
    profit_factor: Decimal | None
    max_drawdown_pct: Decimal
    max_exposure_pct: Decimal
    avg_slippage_bps: Decimal
    trading_state: str
    risk_refusals: dict[str, int]
    orders_by_status: dict[str, int]
    open_positions: list[dict[str, Any]]
    rejected_input: int  # replay rows refused as impossible market data
    rejected_by_reason: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = plain(asdict(self))
        return out


def resolve_run_id(store: Store, run_id: str | None) -> str:
    if run_id:
        if store.get_run(run_id) is None:
            raise ReportError(
                f"run {run_id} is not in this data folder; see `claire papertest status`."
            )
        return run_id
    row = store.db.fetch_one(store.queries["latest_run_id"])
    if row is None:
        raise ReportError(
            "no run in this data folder yet; start one with `claire papertest start`."
        )
    return str(row["run_id"])


def final_report(store: Store, run_id: str | None = None) -> FinalReport:
    run_id = resolve_run_id(store, run_id)
    run = store.get_run(run_id)
    assert run is not None
    q, params = store.queries, {"run_id": run_id}
    capital = Decimal(str(run.config.get("settings", {}).get("initial_capital", "0")))
    snap = store.db.fetch_one(q["final_snapshot"], params)
    if snap is None:
        raise ReportError(f"run {run_id} has no portfolio snapshot yet; let it run a minute.")
    positions = store.db.fetch_all(
        q["snapshot_positions"], {"run_id": run_id, "snapshot_id": snap["event_id"]}
    )
    extremes = store.db.fetch_one(q["run_extremes"], params) or {}
    rows = store.db.fetch_all(q["fills_in_order"], params)
    fills = [Fill(r["symbol"], Side(r["side"]), r["qty"], r["price"], r["fee"]) for r in rows]
    stats = trip_stats(net_round_trips(fills))
    slippage = sum((r["slippage_bps"] for r in rows), Decimal(0))
    state = store.db.fetch_one(q["last_trading_state"], params)
    rejected = store.rejected_by_reason(run_id)
    return FinalReport(
        run_id=run_id,
        status=run.status.value,
        data_source=run.data_source,
        quote_currency=str(run.config.get("quote_currency", "")),
        started_at=run.started_at,
        ended_at=run.ended_at,
        last_event_ts=run.last_event_ts,
        initial_capital=capital,
        final_equity=snap["equity"],
        total_pnl=snap["equity"] - capital,
        realized_pnl=snap["realized_pnl"],
        unrealized_pnl=snap["unrealized_pnl"],
        fees=snap["fees"],
        fills=len(rows),
        round_trips=stats.round_trips,
        win_rate=stats.win_rate,
        avg_win=stats.avg_win,
        avg_loss=stats.avg_loss,
        profit_factor=stats.profit_factor,
        max_drawdown_pct=extremes.get("max_drawdown_pct", Decimal(0)),
        max_exposure_pct=extremes.get("max_exposure_pct", Decimal(0)),
        avg_slippage_bps=slippage / len(rows) if rows else Decimal(0),
        trading_state=state["state"] if state else "active",
        risk_refusals={
            r["reason"]: int(r["n"]) for r in store.db.fetch_all(q["refusals_by_reason"], params)
        },
        orders_by_status={
            r["status"]: int(r["n"]) for r in store.db.fetch_all(q["orders_by_status"], params)
        },
        open_positions=[
            {
                "symbol": p["symbol"],
                "qty": p["qty"],
                "avg_entry": p["avg_entry"],
                "mark_price": p["mark_price"],
            }
            for p in positions
        ],
        rejected_input=sum(rejected.values()),
        rejected_by_reason=rejected,
    )


def to_markdown(report: FinalReport) -> str:
    q = report.quote_currency

    def pct(value: Decimal) -> str:
        return f"{value * 100:.2f} %"

    lines = [
        f"# Final report: {report.run_id}",
        "",
        f"- Status: {report.status}",
        f"- Data: {report.data_source}",
        f"- Started: {report.started_at:%Y-%m-%d %H:%M:%S} UTC"
        + (f", ended {report.ended_at:%Y-%m-%d %H:%M:%S} UTC" if report.ended_at else ""),
        f"- Market time reached: {report.last_event_ts:%Y-%m-%d %H:%M} UTC"
        if report.last_event_ts
        else "- Market time reached: -",
        "",
        "| figure | value |",
        "|---|---|",
        f"| initial capital | {report.initial_capital} {q} |",
        f"| final equity | {report.final_equity:.8f} {q} |",
        f"| total PnL | {report.total_pnl:.8f} {q} |",
        f"| realized PnL | {report.realized_pnl:.8f} {q} |",
        f"| unrealized PnL | {report.unrealized_pnl:.8f} {q} |",
        f"| fees | {report.fees:.8f} {q} |",
        f"| fills | {report.fills} |",
        f"| round trips | {report.round_trips} |",
        f"| win rate | {pct(report.win_rate)} |",
        f"| average win | {report.avg_win:.8f} {q} |",
        f"| average loss | {report.avg_loss:.8f} {q} |",
        "| profit factor | "
        + (f"{report.profit_factor:.3f}" if report.profit_factor is not None else "no losses")
        + " |",
        f"| max drawdown | {pct(report.max_drawdown_pct)} |",
        f"| max exposure | {pct(report.max_exposure_pct)} |",
        f"| average slippage | {report.avg_slippage_bps:.2f} bps |",
        f"| trading state | {report.trading_state} |",
        "",
        "## Risk refusals",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in report.risk_refusals.items()] or ["- none"]
    lines += ["", "## Orders", ""]
    lines += [f"- {k}: {v}" for k, v in report.orders_by_status.items()] or ["- none"]
    lines += ["", "## Rejected input", ""]
    if report.rejected_input:
        lines.append(
            f"{report.rejected_input} input rows were refused as impossible market data "
            "(`claire export rejected_rows` lists them):"
        )
        lines += [f"- {k}: {v}" for k, v in report.rejected_by_reason.items()]
    else:
        lines.append("none")
    lines += ["", "## Open positions", ""]
    if report.open_positions:
        lines += ["| symbol | qty | avg entry | mark |", "|---|---|---|---|"]
        lines += [
            f"| {p['symbol']} | {p['qty']} | {p['avg_entry']:.10g} | {p['mark_price']} |"
            for p in report.open_positions
        ]
    else:
        lines.append("none")
    return "\n".join(lines) + "\n"
