"""`claire engine run NAME`: one service of a run, for the supervisor (or an operator)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from claire_cli.errors import is_debug, user_errors
from claire_cli.options import DataDir

engine_app = typer.Typer(
    help="Advanced: run one service of a run in this process (the supervisor does this).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@engine_app.command("run")
def run(
    name: Annotated[
        str,
        typer.Argument(
            help="feed, execution, portfolio, signal, risk, writer or alerts.", metavar="NAME"
        ),
    ],
    run_id: Annotated[
        str, typer.Option("--run", help="The run the service belongs to.", metavar="RUN_ID")
    ],
    port: Annotated[
        int | None,
        typer.Option(
            help="Port of /health, /status and /metrics (default: the service's own).",
            metavar="PORT",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Run one service until SIGTERM or Ctrl-C (the feed also ends with its data)."""
    with user_errors():
        from engine.config import load_settings
        from engine.home.folder import resolve_data_dir
        from engine.run.service_process import run_service_process

        settings = load_settings()
        if not is_debug():  # a service says when it starts and restores (CLAIRE_LOG_LEVEL)
            logging.getLogger().setLevel(settings.claire_log_level.upper())
        run_service_process(name, run_id, resolve_data_dir(data_dir, settings), settings, port)
