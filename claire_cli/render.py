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
