"""`claire papertest ...`: start (or resume) a paper run and watch its status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from claire_cli.errors import user_errors
from claire_cli.options import AsJson, DataDir, RunId

papertest_app = typer.Typer(help="Start, resume and watch paper runs.", no_args_is_help=True)


@papertest_app.command("start")
def start(
    replay: Annotated[
        list[Path] | None,
        typer.Option(
            "--replay", help="Recorded market data to replay (CSV); repeat for more symbols."
        ),
    ] = None,
    exchange: Annotated[
        str | None,
        typer.Option(help="Run live on this exchange's market data instead (mexc is tested)."),
    ] = None,
    market: Annotated[str, typer.Option(help="Live market: spot or futures.")] = "spot",
    symbols: Annotated[
        str | None, typer.Option(help="Live symbols, comma separated, like BTCUSDT,ETHUSDT.")
    ] = None,
    timeframe: Annotated[
        str,
        typer.Option(help="Live candle interval (1m, 5m, 15m, 1h, ...) or none for trades only."),
    ] = "5m",
    days: Annotated[
        float | None,
        typer.Option(
            help="Replay this many days from the first common timestamp; live: run length."
        ),
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
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run from its checkpoint.")
    ] = False,
    run_id: RunId = None,
    persist: Annotated[
        bool,
        typer.Option(
            "--persist/--no-persist", help="Store every event in PostgreSQL (default) or not."
        ),
    ] = True,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Run a paper run (replay or live) and print its summary."""
    with user_errors():
        from claire_cli.render import print_run_footer, print_summary, replay_progress
        from engine.config import load_settings
        from engine.errors import ConfigError
        from engine.paperrun import resolve_data_dir

        overrides: dict[str, str] = {}
        if strategy:
            overrides["strategy"] = strategy
        if capital is not None:
            overrides["initial_capital"] = capital
        options = {"strategy": "--strategy", "initial_capital": "--capital"}
        settings = load_settings(options, **overrides)
        if resume and (replay or exchange):
            raise ConfigError("--resume continues a recorded run; drop --replay and --exchange.")
        if not resume and not replay and not exchange:
            raise ConfigError(
                "no market data given; pass --replay FILE (one per symbol) or "
                "--exchange mexc --symbols BTCUSDT."
            )
        if replay and exchange:
            raise ConfigError("choose --replay or --exchange, not both.")
        folder = resolve_data_dir(data_dir, settings) if persist else None
        outcome = None
        with replay_progress(enabled=not as_json) as progress:
            if not persist:
                if resume or exchange:
                    raise ConfigError("--no-persist works with --replay only.")
                from engine.feeds.replay import parse_speed
                from engine.kernel import run_replay

                summary, _ = run_replay(
                    settings, replay or [], days=days, speed=parse_speed(speed), progress=progress
                )
            else:
                from engine.paperrun import PaperRunner

                runner = PaperRunner(settings, folder)
                if resume:
                    outcome = runner.resume(run_id, progress=progress)
                elif exchange:
                    outcome = runner.start_live(
                        _feed_settings(exchange, market, symbols, timeframe), days, progress
                    )
                else:
                    outcome = runner.start(replay or [], days, speed, progress)
                summary = outcome.summary
        if as_json:
            body = summary.as_json()
            if outcome is not None:
                body |= {
                    "run_id": outcome.run_id,
                    "status": outcome.status.value,
                    "data_dir": str(outcome.data_dir),
                    "resumed_after_events": outcome.resumed_from,
                }
            typer.echo(json.dumps(body, indent=2))
        else:
            print_summary(summary)
            if outcome is not None:
                print_run_footer(outcome)


def _feed_settings(exchange: str, market: str, symbols: str | None, timeframe: str) -> object:
    from engine.errors import ConfigError
    from engine.feeds.exchange import FeedSettings

    if not symbols:
        raise ConfigError("a live run needs --symbols, like --symbols BTCUSDT,ETHUSDT.")
    if market not in ("spot", "futures"):
        raise ConfigError(f"--market {market!r} is not spot or futures.")
    candles = None if timeframe.lower() == "none" else timeframe
    return FeedSettings.from_env(
        symbols, exchange=exchange.lower(), market=market, candle_timeframe=candles
    )


@papertest_app.command("status")
def status(run_id: RunId = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Show the runs in the data folder: progress, equity, fills and trading state."""
    with user_errors():
        from claire_cli.render import print_status
        from engine.config import load_settings
        from engine.paperrun import open_store, resolve_data_dir
        from engine.report.status import run_statuses

        settings = load_settings()
        folder = resolve_data_dir(data_dir, settings)
        with open_store(settings, folder) as (store, _):
            rows = run_statuses(store, folder, run_id)
        if as_json:
            typer.echo(json.dumps([r.as_json() for r in rows], indent=2))
        else:
            print_status(rows, folder)
