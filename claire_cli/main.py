"""The `claire` command line: thin commands that parse, call the engine, and render.

Nothing heavy is imported at module level, so `claire --help` stays fast.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from claire_cli.errors import set_debug
from claire_cli.papertest import papertest_app
from claire_cli.reporting import export, report

app = typer.Typer(
    name="claire",
    help="Claire de Binare: paper trading on real market data, operated like production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(papertest_app, name="papertest")
app.command("report")(report)
app.command("export")(export)


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
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


def run() -> None:
    app()


if __name__ == "__main__":
    run()
