"""`claire db ...`: the data folder's database by hand, with the bundled psql."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from claire_cli.errors import user_errors
from claire_cli.options import AsJson, DataDir, StackFlag, refuse_empty, settings_for

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
def url(data_dir: DataDir = None, stack: StackFlag = None, as_json: AsJson = False) -> None:
    """Print a connection string (with its password) that works while the server runs."""
    with user_errors():
        from engine.home.folder import resolve_data_dir
        from engine.ops.database import running_url
        from engine.report.access import NoDataError, has_claire_data

        settings = settings_for(stack, data_dir)
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
        typer.Option(
            "--run",
            help="Set the psql variable `run` to this run id.",
            metavar="RUN_ID",
            callback=refuse_empty("--run", "give a run id, or leave the option out"),
        ),
    ] = None,
    data_dir: DataDir = None,
    stack: StackFlag = None,
) -> None:
    """Open psql on the data folder's database, starting its server if needed.

    Arguments after -- go to psql (claire db psql -- -c 'SELECT count(*) FROM runs').
    With --run, the run id is the psql variable `run`, also in -c commands:
    claire db psql --run RUN_ID -- -c "SELECT count(*) FROM trades WHERE run_id = :'run'"
    """
    with user_errors():
        from engine.ops.database import psql_call, run_psql, served
        from engine.report.access import open_data

        settings = settings_for(stack, data_dir)
        with open_data(settings, data_dir) as data:
            chosen = data.run_id(run_id) if run_id else None
            folder = data.folder
        args, commands = _split_commands(list(ctx.args)) if chosen else (list(ctx.args), [])
        if commands:  # psql substitutes :'run' in what it reads, never in -c
            args += ["--set", "ON_ERROR_STOP=1", "--file", "-"]
        script = "".join(_statement(sql) for sql in commands)
        with served(settings, folder) as server_url:
            call = psql_call(server_url, chosen, args)
            code = run_psql(call, script if commands else None)
        raise typer.Exit(code)


def _split_commands(args: list[str]) -> tuple[list[str], list[str]]:
    """psql's arguments without their -c/--command SQL, and that SQL in order."""
    rest: list[str] = []
    commands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-c", "--command") and i + 1 < len(args):
            commands.append(args[i + 1])
            i += 2
            continue
        if arg.startswith("--command="):
            commands.append(arg.partition("=")[2])
        elif arg.startswith("-c") and len(arg) > 2:
            commands.append(arg[2:])
        else:
            rest.append(arg)
        i += 1
    return rest, commands


def _statement(sql: str) -> str:
    """One -c command as a line of a script: SQL ends with `;`, a backslash command not."""
    text = sql.strip()
    if text.startswith("\\") or text.endswith(";"):
        return text + "\n"
    return text + ";\n"
