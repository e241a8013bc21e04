"""`claire papertest ...`: start a paper run and show its summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from claire_cli.errors import user_errors

papertest_app = typer.Typer(help="Start, watch and stop a paper run.", no_args_is_help=True)


@papertest_app.command("start")
def start(
    replay: Annotated[
        list[Path] | None,
        typer.Option(
            "--replay", help="Recorded market data to replay (CSV); repeat for more symbols."
        ),
    ] = None,
    days: Annotated[
        float | None, typer.Option(help="Replay this many days from the first common timestamp.")
    ] = None,
    speed: Annotated[str, typer.Option(help="Replay speed: 1x, 60x, ... or max.")] = "max",
    strategy: Annotated[
        str | None,
        typer.Option(help="Strategy as package.module:Class (default: the momentum strategy)."),
    ] = None,
    capital: Annotated[
        str | None,
        typer.Option(help="Starting equity in the quote currency; overrides INITIAL_CAPITAL."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run a paper run over recorded data and print its summary."""
    with user_errors():
        from claire_cli.render import print_summary, replay_progress
        from engine.config import load_settings
        from engine.errors import ConfigError
        from engine.feeds.replay import parse_speed
        from engine.kernel import run_replay

        if not replay:
            raise ConfigError("no market data given; pass --replay FILE (one per symbol).")
        overrides: dict[str, str] = {}
        if strategy:
            overrides["strategy"] = strategy
        if capital:
            overrides["initial_capital"] = capital
        settings = load_settings(**overrides)
        factor = parse_speed(speed)
        with replay_progress(enabled=not as_json) as progress:
            summary, _ = run_replay(settings, replay, days=days, speed=factor, progress=progress)
        if as_json:
            typer.echo(json.dumps(summary.as_json(), indent=2))
        else:
            print_summary(summary)
