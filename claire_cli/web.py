"""`claire web`: a live page of the newest (or the named) run, read-only."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from claire_cli.errors import user_errors
from claire_cli.options import DataDir, RunId


def web(
    run_id: RunId = None,
    port: Annotated[
        int, typer.Option(help="Port to listen on.", min=1, max=65535, metavar="PORT")
    ] = 8080,
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on; any but 127.0.0.1 needs CLAIRE_WEB_TOKEN.",
            metavar="HOST",
        ),
    ] = "127.0.0.1",
    data_dir: DataDir = None,
) -> None:
    """Serve a live page of the run: equity, drawdown, exposure, fills, trading state,
    alerts, incidents, backups and the health of each process, updating as it runs.

    Read-only; on 127.0.0.1 unless --host and CLAIRE_WEB_TOKEN say otherwise.
    """
    with user_errors():
        from engine.config import load_settings
        from engine.report.access import open_data
        from engine.web import TOKEN_VARIABLE, web_token
        from engine.web.app import serve
        from engine.web.view import ViewSource

        token = web_token(host, os.environ.get(TOKEN_VARIABLE))
        settings = load_settings()
        with open_data(settings, data_dir) as data:
            if run_id is not None:
                data.run_id(run_id)  # "no run X in FOLDER" when it is not there
            source = ViewSource(
                data.store,
                data.folder,
                settings,
                run_id,
                external_db=settings.claire_postgres_url is not None,
            )

            def ready(url: str) -> None:
                shown = url.replace("0.0.0.0", "127.0.0.1")  # noqa: S104 - only a text change
                typer.echo(f"web view of {data.where} on {shown} (Ctrl-C stops it)", err=True)

            serve(source, host, port, token, on_ready=ready)
