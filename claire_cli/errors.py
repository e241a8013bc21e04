"""One place where errors become what the operator sees: one red line and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

_state = {"debug": False}
# soft_wrap: an error stays one line in logs and pipes, whatever the terminal's width.
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


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
        err_console.print("[yellow]interrupted[/yellow]")
        raise typer.Exit(130) from None
    except ClaireError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except Exception as exc:
        if _state["debug"]:
            raise
        err_console.print(
            f"[red]unexpected error:[/red] {type(exc).__name__}: {exc} "
            "(run again with --debug for the traceback)"
        )
        print(file=sys.stderr)
        raise typer.Exit(1) from None
