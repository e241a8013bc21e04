"""Rich rendering of engine results; the engine itself never imports rich."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(highlight=False)


def _pct(value: Decimal) -> str:
    return f"{value * 100:.2f} %"


def _money(value: Decimal, quote: str) -> str:
    return f"{value:,.8f} {quote}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def print_summary(summary: Any) -> None:
    q = summary.quote_currency
    table = Table(title="Paper run summary", show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    rows = [
        (
            "period",
            f"{summary.start:%Y-%m-%d %H:%M} -> {summary.end:%Y-%m-%d %H:%M} UTC"
            if summary.start and summary.end
            else "-",
        ),
        ("market events", f"{summary.market_events:,}"),
        ("initial capital", _money(summary.initial_capital, q)),
        ("final equity", _money(summary.final_equity, q)),
        ("total PnL", _money(summary.total_pnl, q)),
        ("realized / unrealized", f"{summary.realized_pnl:,.8f} / {summary.unrealized_pnl:,.8f}"),
        ("fees", _money(summary.fees, q)),
        (
            "fills",
            f"{summary.fills} ({_counts(summary.fills_by_symbol)})",
        ),
        ("orders", _counts(summary.orders_by_status) or "-"),
        ("round trips", f"{summary.round_trips} ({summary.wins} won)"),
        ("max drawdown", _pct(summary.max_drawdown_pct)),
        ("max exposure", _pct(summary.max_exposure_pct)),
        (
            "risk refusals",
            ", ".join(f"{k} {v}" for k, v in summary.risk_refusals.items()) or "none",
        ),
        ("trading state", summary.trading_state),
        (
            "state changes",
            "; ".join(
                f"{c['ts']} {c['from']}->{c['to']} ({c['reason']})" for c in summary.state_changes
            )
            or "none",
        ),
        ("rejected input", str(summary.rejected_input)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if summary.open_positions:
        positions = Table(title="Open positions", title_justify="left")
        for column in ("symbol", "qty", "avg entry", "mark"):
            positions.add_column(column)
        for p in summary.open_positions:
            positions.add_row(
                p["symbol"], p["qty"], f"{Decimal(p['avg_entry']):.10g}", p["mark_price"]
            )
        console.print(positions)


@contextmanager
def replay_progress(enabled: bool) -> Iterator[Callable[[datetime], None] | None]:
    """A progress bar over event time; silent when output is JSON or not a terminal."""
    if not enabled or not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("[bold]replay[/bold] {task.fields[at]}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("replay", total=None, at="")
        count = 0

        def advance(ts: datetime) -> None:
            nonlocal count
            count += 1
            if count % 500 == 0:
                progress.update(task, at=f"{ts:%Y-%m-%d %H:%M} UTC")

        yield advance


def print_run_footer(outcome: Any) -> None:
    resumed = (
        f", resumed after {outcome.resumed_from:,} market events" if outcome.resumed_from else ""
    )
    console.print(f"run [bold]{outcome.run_id}[/bold] {outcome.status.value}{resumed}")
    console.print(f"data folder: {outcome.data_dir}")
    console.print(f"database: {outcome.database}")


def print_status(rows: list[Any], data_dir: Any) -> None:
    if not rows:
        console.print(f"no runs in {data_dir} yet; start one with `claire papertest start`.")
        return
    console.print(f"[bold]Paper runs in {data_dir}[/bold] (newest first)")
    for r in rows:
        table = Table(show_header=False, title=f"{r.run_id}: {r.status}", title_justify="left")
        table.add_column("", style="bold")
        table.add_column("", overflow="fold")
        progress = f" ({r.progress_pct} % of the window)" if r.progress_pct is not None else ""
        market = f"{r.market_time:%Y-%m-%d %H:%M} UTC{progress}" if r.market_time else "-"
        rows_out = [
            ("data", r.data_source),
            ("started", f"{r.started_at:%Y-%m-%d %H:%M:%S} UTC"),
            ("market time", market),
            ("equity", f"{r.equity:,.8f} {r.quote_currency}" if r.equity is not None else "-"),
            (
                "drawdown / exposure",
                f"{_pct(r.drawdown_pct)} / {_pct(r.exposure_pct)}"
                if r.drawdown_pct is not None and r.exposure_pct is not None
                else "-",
            ),
            ("fills / orders", f"{r.fills} / {r.orders}"),
            ("risk refusals / alerts", f"{r.refusals} / {r.alerts}"),
            ("trading state", r.trading_state),
        ]
        for name, value in rows_out:
            table.add_row(name, value)
        console.print(table)
    if any(r.status == "interrupted" for r in rows):
        console.print("an interrupted run continues with `claire papertest start --resume`.")
