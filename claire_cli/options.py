"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder holding the runs' database (default: CLAIRE_HOME or the user data folder).",
        file_okay=False,
        metavar="DIR",
    ),
]
RunId = Annotated[
    str | None, typer.Option("--run", help="Run id (default: the newest run).", metavar="RUN_ID")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
