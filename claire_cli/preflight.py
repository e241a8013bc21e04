"""`claire preflight`: the runbook's go/no-go checklist; also run by `papertest start`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from claire_cli.errors import user_errors
from claire_cli.options import AsJson, DataDir, IgnoreCheck, settings_for

STYLES = {
    "ok": "green",
    "warn": "yellow",
    "fail": "red",
    "skipped": "dim",
    "crashed": "bold red",
}


def preflight(
    replay: Annotated[
        list[Path] | None,
        typer.Option("--replay", help="Replay files the run will use.", metavar="FILE"),
    ] = None,
    exchange: Annotated[
        str | None, typer.Option(help="Exchange the run will use (mexc).", metavar="NAME")
    ] = None,
    symbols: Annotated[
        str | None, typer.Option(help="Live symbols, like BTCUSDT,ETHUSDT.", metavar="LIST")
    ] = None,
    market: Annotated[str, typer.Option(help="spot or futures.", metavar="spot|futures")] = "spot",
    days: Annotated[
        float | None, typer.Option(help="Replay window in days.", metavar="DAYS")
    ] = None,
    ignore_check: IgnoreCheck = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings are no-go too.")] = False,
    stack: Annotated[
        bool,
        typer.Option(
            "--stack",
            help="Check the Docker stack: its containers, and its PostgreSQL and Redis as "
            "compose/.env publishes them.",
        ),
    ] = False,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Check everything a run needs: exit 0 on go, 1 on no-go (warnings alone are go)."""
    with user_errors():
        from engine.errors import ConfigError
        from engine.ops.preflight import CHECKS, check_ignored, run_preflight
        from engine.ops.preflight_setup import preflight_context

        if replay and exchange:
            raise ConfigError("choose --replay or --exchange, not both.")
        ignored = check_ignored(ignore_check or ())
        settings = _stack_settings(data_dir) if stack else None
        ctx = preflight_context(
            data_dir, replay, exchange, symbols, market, days, settings=settings
        )
        checks = CHECKS
        if stack:
            from engine.stack.health import check_stack

            checks = (*CHECKS, ("stack", check_stack))
        report = run_preflight(ctx, ignored, strict, checks)
        if as_json:
            typer.echo(json.dumps(report.as_json(), indent=2))
        else:
            print_report(report)
        if not report.go:
            raise typer.Exit(1)


def _stack_settings(data_dir: str | None) -> Any:
    """The stack's database and Redis; None (the stack check says why) when no stack is
    there, so the go/no-go table still shows every check."""
    from engine.stack.target import NoStackError

    try:
        return settings_for(True, data_dir)
    except NoStackError:
        return None


def print_report(report: Any, stderr: bool = False) -> None:
    from rich.markup import escape
    from rich.table import Table

    from claire_cli.console import err, out

    table = Table(title=f"Preflight for {report.data_dir}", title_justify="left")
    for column in ("check", "status", "value", "fix"):
        table.add_column(column, overflow="fold")
    for c in report.checks:
        status = f"[{STYLES[c.status.value]}]{c.status.value}[/]"
        if c.ignored:
            status += " (ignored)"
        table.add_row(c.name, status, escape(c.value), escape(c.fix))
    console = err() if stderr else out()
    console.print(table)
    verdict = "[green]GO[/green]" if report.go else "[red]NO-GO[/red]"
    failing = ", ".join(c.name for c in report.failing)
    console.print(f"{verdict}" + (f": {escape(failing)}" if failing else ""))
