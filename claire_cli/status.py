"""`claire status`: the operator's one screen; exit 0 healthy, 1 degraded, 2 no run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import typer

from claire_cli.errors import user_errors
from claire_cli.options import AsJson, DataDir, RunId, StackFlag, settings_for

HEALTH_STYLE = {"healthy": "green", "degraded": "red", "no_run": "yellow"}


def status(
    run_id: RunId = None,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh in place until Ctrl-C.")] = False,
    interval: Annotated[
        float, typer.Option(help="Seconds between refreshes with --watch.", metavar="SECONDS")
    ] = 2.0,
    data_dir: DataDir = None,
    stack: StackFlag = None,
    as_json: AsJson = False,
) -> None:
    """The active run (or the newest): health, market time and lag, freshness per symbol,
    equity, drawdown and exposure against their limits, positions, alerts, processes.

    Exit code 0 healthy, 1 degraded, 2 no run.
    """
    code = 0
    with user_errors():
        from engine.errors import ConfigError
        from engine.report.access import NoDataError, open_data

        if not 0.2 <= interval <= 3600:
            raise ConfigError(f"--interval {interval:g} is out of range: give 0.2 to 3600 seconds.")
        settings = settings_for(stack, data_dir)
        try:
            with open_data(settings, data_dir) as data:
                take = _taker(data, settings, run_id)
                code = _watch(take, interval, as_json) if watch else _once(take(), as_json)
        except NoDataError as exc:
            if as_json:
                typer.echo(json.dumps({"health": "no_run", "reasons": [str(exc)]}, indent=2))
            else:
                from claire_cli.errors import warn

                warn(str(exc))
            code = 2
    raise typer.Exit(code)


def _taker(data: Any, settings: Any, run_id: str | None) -> Any:
    from engine.ops.status import operator_status

    if run_id is not None:
        data.run_id(run_id)  # "no run X in FOLDER" when it is not there

    def take() -> Any:
        return operator_status(
            data.store,
            data.folder,
            settings,
            now=datetime.now(UTC),
            run_id=run_id,
            external_db=settings.claire_postgres_url is not None,
        )

    return take


def _once(found: Any, as_json: bool) -> int:
    from engine.stack.health import stack_health

    stack = stack_health()  # None when no Docker stack exists
    if as_json:
        body = found.as_json()
        if stack is not None:
            body["stack"] = stack
        typer.echo(json.dumps(body, indent=2))
    else:
        from claire_cli.console import out

        out().print(render(found))
        if stack is not None:
            from claire_cli.render import stack_table

            out().print(stack_table(stack["containers"]))
            for reason in stack["reasons"]:
                out().print(f"  - {reason}", markup=False, style="red")
    return max(int(found.exit_code), 1 if stack and stack["reasons"] else 0)


def _watch(take: Any, interval: float, as_json: bool) -> int:
    import time

    from rich.live import Live

    from claire_cli.console import out

    found = take()
    try:
        if as_json:
            while True:
                typer.echo(json.dumps(found.as_json()))
                time.sleep(interval)
                found = take()
        with Live(render(found), console=out(), auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                found = take()
                live.update(render(found), refresh=True)
    except KeyboardInterrupt:
        return int(found.exit_code)


def _pct(value: Decimal | None) -> str:
    return "-" if value is None else f"{value * 100:.2f} %"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    text = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


def _limit(value: Decimal | None, limit: Decimal | None) -> str:
    if limit is None:
        return _pct(value)
    return f"{_pct(value)} of {_pct(limit)}"


def render(s: Any) -> Any:
    """The status screen as one rich renderable."""
    from rich.console import Group
    from rich.markup import escape
    from rich.text import Text

    style = HEALTH_STYLE[s.health]
    parts: list[Any] = [
        Text.from_markup(
            f"[bold]claire status[/bold] [{style}]{s.health.upper().replace('_', ' ')}[/{style}]"
            f"  {s.checked_at:%Y-%m-%d %H:%M:%S} UTC  {escape(s.data_dir)}"
        )
    ]
    parts += [Text.from_markup(f"  [{style}]-[/{style}] {escape(r)}") for r in s.reasons]
    if s.run_id is None:
        return Group(*parts)
    parts.append(_run_table(s))
    if s.symbols:
        parts.append(_symbols_table(s))
    if s.open_positions:
        parts.append(_positions_table(s))
    parts.append(_processes_table(s))
    if s.alerts_firing:
        parts.append(_alerts_table(s))
    parts += _backups_and_commands(s)
    return Group(*parts)


def _run_table(s: Any) -> Any:
    from rich.markup import escape

    from claire_cli.render import _table, signed

    q = s.quote_currency
    run = _table(f"{s.run_id}: {s.status}")
    lag = ""
    if s.live and s.market_lag_s is not None:
        lag = f", {_duration(s.market_lag_s)} behind the wall clock"
    progress = f" ({_pct(s.progress_frac)} of the window)" if s.progress_frac is not None else ""
    market = f"{s.market_time:%Y-%m-%d %H:%M:%S} UTC" if s.market_time else "-"
    rows = [
        ("data", escape(s.data_source or "")),
        ("started", f"{s.started_at:%Y-%m-%d %H:%M:%S} UTC" if s.started_at else "-"),
        ("uptime", _duration(s.uptime_s)),
        ("market time", f"{market}{progress}{lag}"),
        ("trading state", s.trading_state or "-"),
        ("equity", f"{s.equity:,.8f} {q}" if s.equity is not None else "-"),
        ("total PnL", signed(s.total_pnl, q)),
        ("daily drawdown", _limit(s.daily_drawdown_frac, s.daily_drawdown_limit_frac)),
        ("exposure", _limit(s.exposure_frac, s.exposure_limit_frac)),
        (
            "open positions",
            f"{len(s.open_positions)}"
            + (f" of {s.max_open_positions}" if s.max_open_positions else ""),
        ),
        ("rows", ", ".join(f"{k} {v:,}" for k, v in s.rows.items() if v) or "none"),
    ]
    if s.end_reason:
        rows.insert(0, ("ended", escape(s.end_reason)))
    for name, value in rows:
        run.add_row(name, value)
    return run


def _symbols_table(s: Any) -> Any:
    from rich.table import Table

    clock = "wall clock" if s.live else "market time"
    symbols = Table(title=f"Last event per symbol (age against {clock})", title_justify="left")
    for column in ("symbol", "last event", "age", ""):
        symbols.add_column(column)
    for f in s.symbols:
        symbols.add_row(
            f.symbol,
            f"{f.last_event_ts:%Y-%m-%d %H:%M:%S}",
            _duration(f.age_s),
            "[red]stale[/red]" if f.stale else "",
        )
    return symbols


def _positions_table(s: Any) -> Any:
    from rich.table import Table

    held = Table(title="Open positions", title_justify="left")
    for column in ("symbol", "qty", "avg entry", "mark"):
        held.add_column(column)
    for p in s.open_positions:
        held.add_row(p["symbol"], str(p["qty"]), f"{Decimal(p['avg_entry']):.10g}",
                     str(p["mark_price"]))  # fmt: skip
    return held


def _processes_table(s: Any) -> Any:
    from rich.markup import escape
    from rich.table import Table

    processes = Table(title="Processes", title_justify="left")
    for column in ("process", "state", "pid", "uptime", "detail"):
        processes.add_column(column, overflow="fold")
    for p in s.processes:
        state = "[green]up[/green]" if p.alive else "[red]down[/red]"
        processes.add_row(p.name, state, str(p.pid or "-"), _duration(p.uptime_s), escape(p.detail))
    for v in s.services:  # a run as services: one row each
        state = "[green]up[/green]" if v["alive"] else "[red]down[/red]"
        lag = "-" if v["lag"] is None else f"{v['lag']:,}"
        detail = f"{v['health']}, restarts {v['restarts']}, lag {lag}, port {v['port']}"
        pid, up = str(v["pid"] or "-"), _duration(v["uptime_s"])
        processes.add_row(f"service {v['name']}", state, pid, up, escape(detail))
    return processes


def _alerts_table(s: Any) -> Any:
    from rich.markup import escape
    from rich.table import Table

    alerts = Table(title="Alerts of the last hour", title_justify="left")
    for column in ("time", "severity", "rule", "message"):
        alerts.add_column(column, overflow="fold")
    for a in s.alerts_firing:
        alerts.add_row(f"{a['ts']:%m-%d %H:%M}", a["severity"], a["rule"], escape(a["message"]))
    return alerts


def _backups_and_commands(s: Any) -> list[Any]:
    from rich.text import Text

    b = s.backup
    newest = f"{b['newest']} ({_duration(b['newest_age_s'])} old)" if b.get("newest") else "none"
    verified = (
        f"{b['newest_verified']} ({_duration(b['newest_verified_age_s'])} old)"
        if b.get("newest_verified")
        else "none"
    )
    lines = [Text(f"backups: {b.get('count', 0)}, newest {newest}, newest verified {verified}")]
    for c in s.commands[:3]:
        lines.append(
            Text(
                f"command {c['command']} by {c['requested_by']} at {c['requested_at']}: "
                f"{c['status']} ({c['note']})"
            )
        )
    return lines
