"""`claire notify test`: a test message to every notification channel."""

from __future__ import annotations

import json

import typer

from claire_cli.errors import user_errors
from claire_cli.options import AsJson

notify_app = typer.Typer(
    help="Notification channels (CLAIRE_NOTIFY_URLS).",
    rich_markup_mode=None,
    invoke_without_command=True,
)


@notify_app.callback()
def notify(ctx: typer.Context) -> None:
    """Notification channels (CLAIRE_NOTIFY_URLS)."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@notify_app.command("test")
def test(as_json: AsJson = False) -> None:
    """Send a test message to every channel and say which failed (exit 1 if any did)."""
    with user_errors():
        from claire_cli.render import print_notify_results
        from engine.alerts.notify import notify_test
        from engine.config import load_settings

        results = notify_test(load_settings())
        if as_json:
            typer.echo(json.dumps(results, indent=2))
        else:
            print_notify_results(results)
        if not results or any(not r["ok"] for r in results):
            raise typer.Exit(1)
