"""Rich rendering of engine results; the engine itself never imports rich.

Labels follow the engine's vocabulary (`engine.vocabulary`): "max
drawdown" is the deepest fall over the run, "drawdown now" the fall at its end;
shares show as percent; PnL is green when positive and red when negative.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from claire_cli.console import out

SIGNAL_NAMES = {2: "Ctrl-C", 15: "SIGTERM"}


def _pct(value: Decimal | None) -> str:
    return "-" if value is None else f"{value * 100:.2f} %"


def _money(value: Decimal | None, quote: str) -> str:
    return "-" if value is None else f"{value:,.8f} {quote}"


def signed(value: Decimal | None, quote: str = "", plus: bool = True) -> str:
    """Money that is a gain or a loss: green above zero, red below."""
    if value is None:
        return "-"
    text = f"{value:{'+' if plus else ''},.8f}" + (f" {quote}" if quote else "")
    if value > 0:
        return f"[green]{text}[/green]"
    if value < 0:
        return f"[red]{text}[/red]"
    return text


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _params(params: dict[str, Any], width: int = 72) -> str:
    """`name=value` pairs, a few to a line; a line breaks only between two pairs."""
    lines: list[str] = []
    for pair in (f"{k}={v}" for k, v in params.items()):
        if lines and len(lines[-1]) + 1 + len(pair) <= width:
            lines[-1] += " " + pair
        else:
            lines.append(pair)
    return "\n".join(lines) or "none"


def _strategy(spec: str) -> str:
    return f"{spec.rpartition(':')[2]} ({spec})"


def _market(start: Any, end: Any) -> str:
    if start and end:
        return f"{start:%Y-%m-%d %H:%M} -> {end:%Y-%m-%d %H:%M} UTC"
    if end:
        return f"-> {end:%Y-%m-%d %H:%M} UTC"
    return "-"


def _table(title: str) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("", overflow="fold")
    return table


def print_summary(summary: Any, outcome: Any = None) -> None:
    q = summary.quote_currency
    title = "Paper run summary" if outcome is None or not outcome.stopped else "Partial summary"
    table = _table(title)
    if outcome is not None:
        status = outcome.status.value + (f": {outcome.end_reason}" if outcome.end_reason else "")
        table.add_row("run", f"{outcome.run_id} ({escape(status)})")
    won = f"{summary.wins} won, {_pct(summary.win_rate_frac)}" if summary.round_trips else "none"
    rows = [
        ("strategy", _strategy(summary.strategy)),
        ("parameters", _params(summary.strategy_params)),
        ("risk settings", _params(summary.risk_settings)),
        ("market time", _market(summary.market_start, summary.market_end)),
        ("market events", f"{summary.market_events:,}"),
        ("initial capital", _money(summary.initial_capital, q)),
        ("equity", _money(summary.equity, q)),
        ("total PnL", signed(summary.total_pnl, q)),
        ("realized / unrealized", f"{signed(summary.realized_pnl)} / "
         f"{signed(summary.unrealized_pnl)}"),
        ("fees", _money(summary.fees, q)),
        ("fills", f"{summary.fills:,}"),
        ("orders by final status", _counts(summary.orders_by_status)),
        ("round trips", f"{summary.round_trips} ({won})"),
        ("max drawdown", _pct(summary.max_drawdown_frac)),
        ("drawdown now", f"{_pct(summary.drawdown_frac)} from the peak, "
         f"{_pct(summary.daily_drawdown_frac)} from the day's start"),
        ("max exposure", _pct(summary.max_exposure_frac)),
        ("exposure now", _pct(summary.exposure_frac)),
        ("risk refusals", _counts(summary.risk_refusals)),
        ("trading state", summary.trading_state),
        (
            "state changes",
            "; ".join(
                f"{c['ts']} {c['from']}->{c['to']} ({c['reason']})" for c in summary.state_changes
            )
            or "none",
        ),
        ("alerts", str(summary.alerts)),
        ("rejected input", str(summary.rejected_input)),
    ]  # fmt: skip
    if summary.leverage:  # a perpetual-futures run
        rows += [
            ("leverage", _params(summary.leverage)),
            ("funding", f"{signed(summary.funding, q)} net received "
             f"({summary.funding_payments} payments)"),
            ("liquidations", str(summary.liquidations)),
            ("max margin usage", _pct(summary.max_margin_frac)),
        ]  # fmt: skip
    for name, value in rows:
        table.add_row(name, value)
    console = out()
    console.print(table)
    print_pnl_by_symbol(summary.pnl_by_symbol, q)
    print_open_positions(summary.open_positions)


def print_pnl_by_symbol(pnl: dict[str, dict[str, Any]], quote: str) -> None:
    if not pnl:
        return
    # Light borders and colour for the sign: the columns fit 80 terminal columns, and a
    # narrower terminal folds a number inside its cell rather than cutting digits off.
    table = Table(
        title=f"PnL per symbol ({quote})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    for column in ("symbol", "net PnL", "realized", "unrealized", "fees", "fills", "trips/won"):
        table.add_column(column, justify="left" if column == "symbol" else "right", overflow="fold")
    for symbol, f in pnl.items():
        table.add_row(
            symbol,
            signed(f["net_pnl"], plus=False),
            signed(f["realized_pnl"], plus=False),
            signed(f["unrealized_pnl"], plus=False),
            f"{f['fees']:,.8f}",
            str(f["fills"]),
            f"{f['round_trips']}/{f['wins']}",
        )
    out().print(table)


def print_open_positions(positions: list[dict[str, Any]]) -> None:
    if not positions:
        return
    table = Table(title="Open positions", title_justify="left")
    for column in ("symbol", "qty", "avg entry", "mark"):
        table.add_column(column)
    for p in positions:
        table.add_row(
            p["symbol"],
            str(p["qty"]),
            f"{Decimal(p['avg_entry']):.10g}",
            str(p["mark_price"]),
        )
    out().print(table)


def resume_command(run_id: str, data_dir: Path) -> str:
    return shlex.join(
        ["claire", "papertest", "start", "--resume", "--run", run_id, "--data-dir", str(data_dir)]
    )


def print_run_footer(outcome: Any) -> None:
    console = out()
    resumed = (
        f", resumed after {outcome.resumed_from:,} market events" if outcome.resumed_from else ""
    )
    # soft_wrap: a terminal may fold a long path or URL, but copying it keeps it whole.
    console.print(
        f"run [bold]{outcome.run_id}[/bold] {outcome.status.value}{resumed}", soft_wrap=True
    )
    console.print(f"data folder: {escape(str(outcome.data_dir))}", soft_wrap=True)
    console.print(f"database: {escape(outcome.database)}", soft_wrap=True)
    if getattr(outcome, "http_port", None):
        console.print(f"served on: http://127.0.0.1:{outcome.http_port}/metrics", soft_wrap=True)
    if outcome.stopped:
        how = (
            SIGNAL_NAMES.get(outcome.stop_signal, "a signal")
            if outcome.stop_signal
            else "the operator"
        )
        console.print(
            f"stopped by {how} after {outcome.summary.market_events:,} market events; "
            "continue exactly where it stopped with:",
            soft_wrap=True,
        )
        command = resume_command(outcome.run_id, outcome.data_dir)
        console.print(f"  {escape(command)}", soft_wrap=True)


# --- progress of a run in the foreground ---------------------------------------------


def progress_fields(view: Any) -> dict[str, str]:
    """The text of a progress line for one `engine.kernel.progress.ProgressView`."""
    q = view.quote_currency
    return {
        "at": f"{view.market_time:%Y-%m-%d %H:%M} UTC",
        "equity": f"{view.equity:,.6f} {q}",
        "pnl": signed(view.total_pnl.quantize(Decimal("1e-6")), q),
        "fills": f"{view.fills:,}",
        "state": view.trading_state,
    }


def eta_seconds(elapsed_s: float, first_frac: float, frac: float) -> float | None:
    """Wall time left at the pace so far; None until the run has moved."""
    moved = frac - first_frac
    if moved <= 0:
        return None
    return max(0.0, elapsed_s * (1 - frac) / moved)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    whole = int(seconds + 0.5)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class _ProgressLines:
    """Two short lines: where the run is and when it ends; what it has made so far."""

    def __init__(self, monotonic: Any) -> None:
        self._monotonic = monotonic
        self._started: float | None = None
        self._first_frac = 0.0
        self.view: Any = None

    def update(self, view: Any) -> None:
        if self._started is None:
            self._started = self._monotonic()
            self._first_frac = view.done_frac or 0.0
        self.view = view

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar

        view = self.view
        if view is None:
            return Text("starting ...")
        fields = progress_fields(view)
        top = Table.grid(padding=(0, 1))
        if view.done_frac is None:
            top.add_row(Text("run", style="bold"), Text(f"market {fields['at']}"))
        else:
            elapsed = self._monotonic() - (self._started or 0.0)
            eta = eta_seconds(elapsed, self._first_frac, view.done_frac)
            top.add_row(
                Text("run", style="bold"),
                ProgressBar(total=1000, completed=view.done_frac * 1000, width=20),
                Text(f"{view.done_frac * 100:3.0f} %"),
                Text(f"market {fields['at']}"),
                Text(f"eta {_clock(eta)}"),
            )
        bottom = Text.from_markup(
            f"equity {fields['equity']}  PnL {fields['pnl']}  fills {fields['fills']}  "
            f"state {fields['state']}"
        )
        return Group(top, bottom)


class _LiveStatus:
    """A live run's status: where the market is, what is held, how fresh each symbol is."""

    def __init__(self) -> None:
        self.view: Any = None

    def update(self, view: Any) -> None:
        self.view = view

    def __rich__(self) -> Any:
        from datetime import UTC, datetime

        view = self.view
        if view is None:
            return Text("connecting to the exchange and warming up ...")
        now = datetime.now(UTC)
        fields = progress_fields(view)
        lag = (now - view.market_time).total_seconds()
        table = _table("Live paper run")
        done = f" ({view.done_frac * 100:.1f} % of the run)" if view.done_frac is not None else ""
        table.add_row("market time", f"{fields['at']}, {lag:,.1f} s behind{done}")
        table.add_row("trading state", fields["state"])
        table.add_row("equity / PnL", f"{fields['equity']} / {fields['pnl']}")
        table.add_row("fills", fields["fills"])
        table.add_row("open positions", str(view.open_positions))
        table.add_row("exposure", _pct(view.exposure_frac))
        table.add_row("daily drawdown", _pct(view.daily_drawdown_frac))
        ages = ", ".join(
            f"{symbol} {(now - ts).total_seconds():,.0f} s" for symbol, ts in view.last_events
        )
        table.add_row("last event", ages or "none yet")
        return table


@contextmanager
def run_progress(enabled: bool, live: bool = False) -> Iterator[Any]:
    """A live two-line view: percent, market time, ETA; equity, PnL, fills, trading state.
    For a live run (`live`), a status table that refreshes in place.

    Yields the sink for `engine.kernel.progress.ProgressFeed`, or None when output is
    JSON or not a terminal.
    """
    import time

    from rich.live import Live

    console = out()
    if not enabled or not console.is_terminal:
        yield None
        return
    view: _LiveStatus | _ProgressLines = _LiveStatus() if live else _ProgressLines(time.monotonic)
    with Live(view, console=console, transient=True, refresh_per_second=4 if live else 10):
        yield view.update


# --- status ------------------------------------------------------------------------


def print_status(rows: list[Any], data_dir: Any) -> None:
    console = out()
    if not rows:
        console.print(f"no runs in {data_dir} yet; start one with `claire papertest start`.")
        return
    console.print(f"[bold]Paper runs in {data_dir}[/bold] (newest first)")
    for r in rows:
        q = r.quote_currency
        table = _table(f"{r.run_id}: {r.status}")
        progress = (
            f" ({_pct(r.progress_frac)} of the window)" if r.progress_frac is not None else ""
        )
        state = r.trading_state
        if r.status == "failed":
            state = f"none: the run failed ({state} when it stopped)"
        rows_out = [
            ("data", r.data_source),
            ("strategy", _strategy(r.strategy)),
            ("parameters", _params(r.strategy_params)),
            ("started", f"{r.started_at:%Y-%m-%d %H:%M:%S} UTC"),
            ("market time", _market(r.market_start, r.market_end) + progress),
            ("equity", _money(r.equity, q)),
            ("total PnL", signed(r.total_pnl, q)),
            ("max drawdown", _pct(r.max_drawdown_frac)),
            (
                "drawdown now",
                f"{_pct(r.drawdown_frac)} from the peak, "
                f"{_pct(r.daily_drawdown_frac)} from the day's start",
            ),
            ("max exposure", _pct(r.max_exposure_frac)),
            ("exposure now", _pct(r.exposure_frac)),
            ("fills", f"{r.fills:,}"),
            ("orders by final status", _counts(r.orders_by_status)),
            ("risk refusals", _counts(r.risk_refusals)),
            ("alerts", str(r.alerts)),
            ("trading state", state),
        ]
        if r.end_reason:
            rows_out.insert(
                0, ("failure" if r.status == "failed" else "ended", escape(r.end_reason))
            )
        for name, value in rows_out:
            table.add_row(name, value)
        console.print(table)
    if any(r.status in ("interrupted", "stopped") for r in rows):
        console.print(
            "an interrupted or stopped run continues with `claire papertest start --resume`."
        )


# --- notifications ------------------------------------------------------------------


def print_notify_results(results: list[dict[str, Any]]) -> None:
    console = out()
    if not results:
        console.print(
            "no notification channels: set CLAIRE_NOTIFY_URLS to apprise URLs, comma separated "
            "(like json://host:port/path or tgram://token/chat)."
        )
        return
    table = Table(title="Notification test", title_justify="left")
    for column in ("channel", "min severity", "result"):
        table.add_column(column)
    for r in results:
        result = "[green]sent[/green]" if r["ok"] else f"[red]failed[/red]: {escape(r['error'])}"
        table.add_row(r["channel"], r["min_severity"], result)
    console.print(table)


def stack_table(rows: list[dict[str, Any]]) -> Any:
    """The stack's containers as a table (also part of `claire status`)."""
    from rich import box
    from rich.table import Table

    table = Table(title="stack", box=box.SIMPLE, title_justify="left")
    for column in ("SERVICE", "STATE", "HEALTH", "RESTARTS", "UPTIME", "PORTS"):
        table.add_column(column, justify="right" if column == "RESTARTS" else "left")
    for r in rows:
        state = r["state"] if r["exit_code"] is None else f"{r['state']} ({r['exit_code']})"
        table.add_row(
            r["service"], state, r["health"], str(r["restarts"]), _uptime(r["uptime_s"]),
            r["ports"] or "-",
        )  # fmt: skip
    if not rows:
        table.caption = "no container of the stack; `claire stack up` starts it"
    return table


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
