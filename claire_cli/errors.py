"""One place where errors become what the operator sees: one red line and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from claire_cli.console import err, escape

_state = {"debug": False}


def set_debug(value: bool) -> None:
    _state["debug"] = value


@contextmanager
def user_errors() -> Iterator[None]:
    """Known errors print their one sentence; unknown ones a hint to use --debug."""
    from engine.errors import ClaireError  # imported late: --help must stay light

    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        err().print("[yellow]interrupted[/yellow]")
        raise typer.Exit(130) from None
    except ClaireError as exc:
        if _state["debug"]:
            raise
        err().print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    except Exception as exc:
        if _state["debug"]:
            raise
        err().print(
            f"[red]unexpected error:[/red] {type(exc).__name__}: {escape(str(exc))} "
            "(run again with --debug for the traceback)",
            soft_wrap=True,
        )
        print(file=sys.stderr)
        raise typer.Exit(1) from None


def is_debug() -> bool:
    return _state["debug"]


def warn(message: str) -> None:
    """One yellow line on stderr: the run goes on, but the trader should know."""
    err().print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)
