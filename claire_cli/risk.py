"""`claire risk halt|resume --note TEXT`: the operator's decisions on a running run's trading."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from claire_cli.errors import user_errors
from claire_cli.options import AsJson, DataDir, RunId, StackFlag, settings_for

risk_app = typer.Typer(
    help="Halt or resume trading of the running run, with a note that is kept.",
    rich_markup_mode=None,
    invoke_without_command=True,
)

Note = Annotated[
    str,
    typer.Option(
        "--note", help="Why; kept with the command and the trading-state change.", metavar="TEXT"
    ),
]
Timeout = Annotated[
    float,
    typer.Option(help="Seconds to wait for the run's answer.", metavar="SECONDS"),
]


@risk_app.callback()
def risk(ctx: typer.Context) -> None:
    """Halt or resume trading of the running run, with a note that is kept."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@risk_app.command("resume")
def resume(
    note: Note,
    run_id: RunId = None,
    timeout: Timeout = 30.0,
    data_dir: DataDir = None,
    stack: StackFlag = None,
    as_json: AsJson = False,
) -> None:
    """Resume trading after the circuit breaker (or a halt); refused when not halted."""
    _send("resume", note, run_id, timeout, (data_dir, stack), as_json)


@risk_app.command("halt")
def halt(
    note: Note,
    run_id: RunId = None,
    timeout: Timeout = 30.0,
    data_dir: DataDir = None,
    stack: StackFlag = None,
    as_json: AsJson = False,
) -> None:
    """Halt trading now, as the circuit breaker does (CIRCUIT_BREAKER_ACTION applies)."""
    _send("halt", note, run_id, timeout, (data_dir, stack), as_json)


def _send(
    kind: str,
    note: str,
    run_id: str | None,
    timeout: float,
    where: tuple[str | None, bool | None],
    as_json: bool,
) -> None:
    with user_errors():
        from claire_cli.console import out
        from engine.ops.commands import Operator
        from engine.ops.control import CommandError, CommandKind, CommandStatus, check_note
        from engine.plain import iso_utc
        from engine.report.access import open_data

        text = check_note(note)
        data_dir, stack = where
        settings = settings_for(stack, data_dir)
        with open_data(settings, data_dir) as data:
            answer = Operator(data.store, data.folder).command(
                CommandKind(kind), text, run_id, timeout
            )
        if as_json:
            typer.echo(json.dumps(answer.as_json(), indent=2))
        if answer.status is CommandStatus.REFUSED:
            why = answer.result.get("reason", "no reason given")
            raise CommandError(f"run {answer.run_id} refused to {kind}: {why}.")
        if not as_json:
            at = iso_utc(answer.market_ts) if answer.market_ts else "-"
            done = "resumed" if kind == "resume" else "halted"
            out().print(
                f"run [bold]{answer.run_id}[/bold]: trading {done} at market time {at}; "
                "the note is kept with the command and the trading-state change.",
                soft_wrap=True,
            )
