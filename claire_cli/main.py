"""The `claire` command line: thin commands that parse, call the engine, and render.

Nothing heavy is imported at module level, so `claire --help` stays fast.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from claire_cli.audit import audit_app
from claire_cli.backup import backup_app
from claire_cli.db import db_app
from claire_cli.engine_cmd import engine_app
from claire_cli.errors import set_debug
from claire_cli.incident import incident_app
from claire_cli.logs import logs
from claire_cli.notify import notify_app
from claire_cli.papertest import papertest_app
from claire_cli.preflight import preflight
from claire_cli.reporting import export, report
from claire_cli.risk import risk_app
from claire_cli.stack import stack_app
from claire_cli.status import status
from claire_cli.web import web

HELP = "Claire de Binare: paper trading on real market data, operated like production."

app = typer.Typer(
    name="claire",
    help=HELP,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: no <bool> or <str> noise beside the flags
)
app.command("preflight")(preflight)
app.add_typer(papertest_app, name="papertest")
app.command("status")(status)
app.add_typer(risk_app, name="risk")
app.add_typer(backup_app, name="backup")
app.add_typer(incident_app, name="incident")
app.command("report")(report)
app.command("export")(export)
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")
app.add_typer(engine_app, name="engine")
app.add_typer(notify_app, name="notify")
app.add_typer(stack_app, name="stack")
app.command("logs")(logs)
app.command("web")(web)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("claire-de-binare")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"claire {_version()}")
        raise typer.Exit(0)


@app.callback()
def main(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Claire de Binare: paper trading on real market data, operated like production."""
    set_debug(debug)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The connection pool reports every failed reconnect; a run rides out an outage and
    # says so in one line itself, so those warnings are for --debug only.
    logging.getLogger("psycopg").setLevel(logging.DEBUG if debug else logging.CRITICAL)
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
