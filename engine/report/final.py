"""`claire report`: the whole run's figures, from the database alone.

Field names and units are those of `engine.vocabulary`, shared with the
start summary and `papertest status`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.errors import ClaireError
from engine.maths.round_trips import net_round_trips, pnl_by_symbol, trip_stats
from engine.plain import plain
from engine.report.figures import (
    books_of,
    count_figures,
    fills_of,
    marks_of,
    run_header,
    snapshot_figures,
    stored_fills,
)
from engine.store import RunStatus, Store


class ReportError(ClaireError):
    pass


@dataclass(frozen=True)
class FinalReport:
    run_id: str
    status: str
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
    initial_capital: Decimal
    equity: Decimal
    total_pnl: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    fills: int
    pnl_by_symbol: dict[str, dict[str, Any]]
    orders_by_status: dict[str, int]
    round_trips: int
    wins: int
    win_rate_frac: Decimal
    avg_win: Decimal
    avg_loss: Decimal
    profit_factor: Decimal | None
    max_drawdown_frac: Decimal
    drawdown_frac: Decimal
    daily_drawdown_frac: Decimal
    max_exposure_frac: Decimal
    exposure_frac: Decimal
    avg_slippage_bps: Decimal
    risk_refusals: dict[str, int]
    alerts: int
    trading_state: str
    open_positions: list[dict[str, Any]]
    rejected_input: int  # replay rows refused as impossible market data
    rejected_by_reason: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = plain(asdict(self))
        return out


def _no_figures(run_id: str, status: RunStatus, reason: str | None) -> ReportError:
    why = f": {reason}" if reason else ""
    if status is RunStatus.FAILED:
        return ReportError(f"run {run_id} failed before it recorded any figures{why}")
    if status is RunStatus.RUNNING:
        return ReportError(f"run {run_id} has no portfolio snapshot yet; let it run a minute.")
    return ReportError(f"run {run_id} {status.value} before it recorded any figures{why}")


def final_report(store: Store, run_id: str) -> FinalReport:
    run = store.get_run(run_id)
    if run is None:
        raise ReportError(f"no run {run_id} in this database; see `claire papertest status`.")
    header = run_header(run, run.status.value)
    figures = snapshot_figures(store, run_id, header["initial_capital"])
    if figures is None:
        raise _no_figures(run_id, run.status, run.end_reason)
    positions = marks_of(store, run_id, figures.pop("snapshot_id"))
    rows = stored_fills(store, run_id)
    stats = trip_stats(net_round_trips(fills_of(rows)))
    slippage = sum((r["slippage_bps"] for r in rows), Decimal(0))
    marks = {p["symbol"]: p["mark_price"] for p in positions}
    counts = count_figures(store, run_id)
    rejected = store.rejected_by_reason(run_id)
    return FinalReport(
        **header,
        **figures,
        fills=len(rows),
        pnl_by_symbol=pnl_by_symbol(books_of(rows), marks),
        orders_by_status=counts["orders_by_status"],
        round_trips=stats.round_trips,
        wins=stats.wins,
        win_rate_frac=stats.win_rate,
        avg_win=stats.avg_win,
        avg_loss=stats.avg_loss,
        profit_factor=stats.profit_factor,
        avg_slippage_bps=slippage / len(rows) if rows else Decimal(0),
        risk_refusals=counts["risk_refusals"],
        alerts=counts["alerts"],
        trading_state=counts["trading_state"],
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


def _pct(value: Decimal) -> str:
    return f"{value * 100:.2f} %"


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()) or "none"


def to_markdown(report: FinalReport) -> str:
    lines = [
        *_summary(report),
        "",
        *_figures_table(report),
        "",
        "## PnL per symbol",
        "",
        *_symbol_table(report),
        *_sections(report),
    ]
    return "\n".join(lines) + "\n"


def _summary(report: FinalReport) -> list[str]:
    status = report.status + (f": {report.end_reason}" if report.end_reason else "")
    market = (
        f"{report.market_start:%Y-%m-%d %H:%M} -> {report.market_end:%Y-%m-%d %H:%M} UTC"
        if report.market_start and report.market_end
        else "-"
    )
    return [
        f"# Final report: {report.run_id}",
        "",
        f"- Status: {status}",
        f"- Data: {report.data_source}",
        f"- Strategy: {report.strategy.rpartition(':')[2]} ({report.strategy})",
        f"- Strategy parameters: {_params(report.strategy_params)}",
        f"- Risk settings: {_params(report.risk_settings)}",
        f"- Started: {report.started_at:%Y-%m-%d %H:%M:%S} UTC"
        + (f", ended {report.ended_at:%Y-%m-%d %H:%M:%S} UTC" if report.ended_at else ""),
        f"- Market time: {market}",
    ]


def _figures_table(report: FinalReport) -> list[str]:
    q = report.quote_currency
    return [
        "| figure | value |",
        "|---|---|",
        f"| initial capital | {report.initial_capital} {q} |",
        f"| equity | {report.equity:.8f} {q} |",
        f"| total PnL | {report.total_pnl:.8f} {q} |",
        f"| realized PnL | {report.realized_pnl:.8f} {q} |",
        f"| unrealized PnL | {report.unrealized_pnl:.8f} {q} |",
        f"| fees | {report.fees:.8f} {q} |",
        f"| fills | {report.fills} |",
        f"| round trips | {report.round_trips} ({report.wins} won) |",
        f"| win rate | {_pct(report.win_rate_frac)} |",
        f"| average win | {report.avg_win:.8f} {q} |",
        f"| average loss | {report.avg_loss:.8f} {q} |",
        "| profit factor | "
        + (f"{report.profit_factor:.3f}" if report.profit_factor is not None else "no losses")
        + " |",
        f"| max drawdown | {_pct(report.max_drawdown_frac)} |",
        f"| drawdown now | {_pct(report.drawdown_frac)} |",
        f"| max exposure | {_pct(report.max_exposure_frac)} |",
        f"| exposure now | {_pct(report.exposure_frac)} |",
        f"| average slippage | {report.avg_slippage_bps:.2f} bps |",
        f"| alerts | {report.alerts} |",
        f"| trading state | {report.trading_state} |",
    ]


def _symbol_table(report: FinalReport) -> list[str]:
    if not report.pnl_by_symbol:
        return ["no fills"]
    return [
        f"| symbol | net PnL ({report.quote_currency}) | realized | unrealized | fees | fills "
        "| round trips |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {s} | {f['net_pnl']:.8f} | {f['realized_pnl']:.8f} | "
            f"{f['unrealized_pnl']:.8f} | {f['fees']:.8f} | {f['fills']} | "
            f"{f['round_trips']} ({f['wins']} won) |"
            for s, f in report.pnl_by_symbol.items()
        ),
    ]


def _sections(report: FinalReport) -> list[str]:
    """Risk refusals, orders, rejected input and open positions."""
    lines = ["", "## Risk refusals", ""]
    lines += [f"- {k}: {v}" for k, v in report.risk_refusals.items()] or ["- none"]
    lines += ["", "## Orders by final status", ""]
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
    return lines
