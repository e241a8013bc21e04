"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

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
    str | None, typer.Option("--run", help="Run id (default: the newest run).", metavar="RUN_ID")
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
