"""`claire logs`: the runs' JSON log lines from the data folder, for people or tools."""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer

from claire_cli.errors import user_errors
from claire_cli.options import DataDir, StackFlag, refuse_empty, target_for


def logs(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines as they come.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only lines from this long ago (10m, 2h, 1d) or this time on.",
            metavar="WHEN",
        ),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="Only this run's lines.",
            metavar="RUN_ID",
            callback=refuse_empty("--run", "give a run id, or leave the option out for every run"),
        ),
    ] = None,
    level: Annotated[
        str | None,
        typer.Option(
            "--level", help="Only lines at this level or above.", metavar="debug|info|warning|error"
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON lines as stored.")
    ] = False,
    data_dir: DataDir = None,
    stack: StackFlag = None,
) -> None:
    """Show the log of the runs in the data folder, or the stack's (oldest first; --follow
    to keep reading the folder's)."""
    with user_errors(), ExitStack() as hold:
        from datetime import UTC, datetime

        from engine.errors import ConfigError
        from engine.home.folder import resolve_data_dir
        from engine.ops.logs import follow_records, level_at_least, log_folder, read_records

        target = target_for(stack, data_dir)
        if target.kind == "stack":
            folder = _stack_logs(hold, target.project, follow)
        else:
            folder = log_folder(resolve_data_dir(data_dir, target.settings))
        if not folder.is_dir() and not follow:
            raise ConfigError(
                f"no logs in {folder.parent}; a run writes them there (check --data-dir)."
            )
        from engine.ops.logs import parse_since

        start = parse_since(since, datetime.now(UTC)) if since else None
        wanted = level_at_least(level) if level else None
        records = (follow_records if follow else read_records)(folder, start, run_id)
        _print(records, wanted, as_json)


def _print(records: Iterable[dict[str, Any]], wanted: Any, as_json: bool) -> None:
    from engine.ops.logs import format_record

    for record in records:
        if wanted is not None and not wanted(record):
            continue
        line = json.dumps(record, ensure_ascii=False) if as_json else format_record(record)
        typer.echo(line)


def _stack_logs(hold: ExitStack, project: str, follow: bool) -> Path:
    """The stack's log files, copied out of its volume into a folder of our own."""
    import tempfile

    from engine.errors import ConfigError
    from engine.stack.logfiles import copy_run_logs

    if follow:
        raise ConfigError(
            "--follow reads a data folder's log; follow the stack's with "
            "`claire stack logs SERVICE --follow`, or leave out --follow."
        )
    scratch = Path(hold.enter_context(tempfile.TemporaryDirectory(prefix="claire-logs-")))
    return copy_run_logs(scratch, project)
