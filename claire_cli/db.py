"""`claire db ...`: the data folder's database by hand, with the bundled psql."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from claire_cli.errors import user_errors
from claire_cli.options import AsJson, DataDir

db_app = typer.Typer(
    help="Query a data folder's database: its URL, or psql on it.",
    rich_markup_mode=None,
    invoke_without_command=True,
)


@db_app.callback()
def db(ctx: typer.Context) -> None:
    """Query a data folder's database: its URL, or psql on it."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@db_app.command("url")
def url(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Print a connection string (with its password) that works while the server runs."""
    with user_errors():
        from engine.config import load_settings
        from engine.home.folder import resolve_data_dir
        from engine.ops.database import running_url
        from engine.report.access import NoDataError, has_claire_data

        settings = load_settings()
        folder = resolve_data_dir(data_dir, settings)
        if settings.claire_postgres_url is None and not has_claire_data(folder):
            raise NoDataError(f"no Claire data in {folder}; check --data-dir (or CLAIRE_HOME).")
        found = running_url(settings, folder)
        typer.echo(json.dumps({"url": found}) if as_json else found)


@db_app.command("psql", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def psql(
    ctx: typer.Context,
    run_id: Annotated[
        str | None,
        typer.Option("--run", help="Set the psql variable `run` to this run id.", metavar="RUN_ID"),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Open psql on the data folder's database, starting its server if needed.

    Arguments after -- go to psql (claire db psql -- -c 'SELECT count(*) FROM runs').
    With --run, the run id is the psql variable `run`:
    SELECT * FROM trades WHERE run_id = :'run';
    """
    with user_errors():
        from engine.config import load_settings
        from engine.ops.database import psql_call, run_psql, served
        from engine.report.access import open_data

        settings = load_settings()
        with open_data(settings, data_dir) as data:
            chosen = data.run_id(run_id) if run_id else None
            folder = data.folder
        with served(settings, folder) as server_url:
            code = run_psql(psql_call(server_url, chosen, ctx.args))
        raise typer.Exit(code)
