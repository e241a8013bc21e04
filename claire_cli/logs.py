"""`claire logs`: the runs' JSON log lines from the data folder, for people or tools."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from claire_cli.errors import user_errors
from claire_cli.options import DataDir, refuse_empty


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
) -> None:
    """Show the log of the runs in the data folder (oldest first; --follow to keep reading)."""
    with user_errors():
        from datetime import UTC, datetime

        from engine.config import load_settings
        from engine.errors import ConfigError
        from engine.home.folder import resolve_data_dir
        from engine.ops.logs import (
            follow_records,
            format_record,
            level_at_least,
            log_folder,
            parse_since,
            read_records,
        )

        folder = log_folder(resolve_data_dir(data_dir, load_settings()))
        if not folder.is_dir() and not follow:
            raise ConfigError(
                f"no logs in {folder.parent}; a run writes them there (check --data-dir)."
            )
        start = parse_since(since, datetime.now(UTC)) if since else None
        wanted = level_at_least(level) if level else None
        records = (follow_records if follow else read_records)(folder, start, run_id)
        for record in records:
            if wanted is not None and not wanted(record):
                continue
            line = json.dumps(record, ensure_ascii=False) if as_json else format_record(record)
            typer.echo(line)
