"""The `claire` command line: thin commands that parse, call the engine, and render.

Nothing heavy is imported at module level, so `claire --help` stays fast; and the
command line as installed reads the parameters of the one command it runs only
(`run()`), not of all of them.
"""

from __future__ import annotations

import inspect
import logging
import sys
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


def _typer() -> typer.Typer:
    return typer.Typer(
        name="claire",
        help=HELP,
        invoke_without_command=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,  # plain help: no <bool> or <str> noise beside the flags
    )


app = _typer()
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


def _listed() -> None:
    """Stands for a command in `claire --help`, which shows its name and help only."""


def lean(args: list[str]) -> typer.Typer:
    """`app` with only the command that `args` name, or, when they name none (or one
    that does not exist), with every command as its name and help and no parameters:
    all that `claire --help` or the error shows."""
    from typer.main import solve_typer_info_help

    wanted = next((a for a in args if not a.startswith("-")), None)
    chosen = _typer()
    chosen.registered_callback = app.registered_callback
    commands = [c for c in app.registered_commands if c.name == wanted]
    groups = [g for g in app.registered_groups if g.name == wanted]
    if commands or groups:
        chosen.registered_commands, chosen.registered_groups = commands, groups
        return chosen
    for command in app.registered_commands:
        words = command.help or inspect.getdoc(command.callback)
        chosen.command(command.name, help=words, hidden=command.hidden)(_listed)
    for group in app.registered_groups:
        chosen.add_typer(typer.Typer(), name=group.name, help=solve_typer_info_help(group))
    return chosen


def run() -> None:
    lean(sys.argv[1:])()


if __name__ == "__main__":
    run()
