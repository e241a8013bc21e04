"""Options shared by several commands."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from claire_cli.console import err, escape

if TYPE_CHECKING:
    from engine.config import Settings
    from engine.stack.target import Target


def refuse_empty(option: str, fix: str) -> Callable[[str | None], str | None]:
    """A callback that stops an empty value (`--run ""`) instead of using the default."""

    def check(value: str | None) -> str | None:
        if value is not None and not value.strip():
            err().print(f"[red]error:[/red] {option} is empty; {escape(fix)}.", soft_wrap=True)
            raise typer.Exit(1)
        return value

    return check


_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(nan|inf)", re.I)


def plain_number(option: str, fix: str) -> Callable[[str], float]:
    """A parser for a number option: digits 0-9 only (no full-width digits, no `1_0`)."""

    def parse(text: str) -> float:
        if not text.strip():
            err().print(f"[red]error:[/red] {option} is empty; {escape(fix)}.", soft_wrap=True)
            raise typer.Exit(1)
        if not text.isascii() or not _NUMBER.fullmatch(text.strip()):
            err().print(
                f"[red]error:[/red] {option} {escape(text)} is not a number written with the "
                f"digits 0-9; {escape(fix)}.",
                soft_wrap=True,
            )
            raise typer.Exit(1)
        return float(text)

    return parse


# Text, not a Path: Path("") would quietly become the current folder, and an empty
# --data-dir is an error (engine.home.folder.resolve_data_dir says so).
DataDir = Annotated[
    str | None,
    typer.Option(
        "--data-dir",
        help="Folder holding the runs' database (default: CLAIRE_HOME or the user data folder).",
        metavar="DIR",
    ),
]
RunId = Annotated[
    str | None,
    typer.Option(
        "--run",
        help="Run id (default: the newest run).",
        metavar="RUN_ID",
        callback=refuse_empty("--run", "give a run id, or leave the option out for the newest run"),
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
IgnoreCheck = Annotated[
    list[str] | None,
    typer.Option(
        "--ignore-check",
        help="Do not let this check stop the run (its result is still shown); repeat for more.",
        metavar="NAME",
    ),
]
StackFlag = Annotated[
    bool | None,
    typer.Option(
        "--stack/--no-stack",
        help="Use the Docker stack's PostgreSQL and Redis (default: when a stack exists and "
        "neither --data-dir nor CLAIRE_HOME names a folder); --no-stack: the data folder's.",
    ),
]


def target_for(stack: bool | None, data_dir: str | None) -> Target:
    """The database this command uses (engine.stack.target), said on stderr when it is
    the stack's; stdout stays the command's own (--json too)."""
    from engine.config import load_settings
    from engine.stack.target import resolve_target

    target = resolve_target(load_settings(), stack=stack, data_dir=data_dir)
    if target.kind == "stack":
        err().print(escape(target.describe()), soft_wrap=True)
    return target


def settings_for(stack: bool | None, data_dir: str | None) -> Settings:
    """The settings of the database this command uses (see `target_for`)."""
    return target_for(stack, data_dir).settings
