"""`claire papertest ...`: start (or resume) a paper run and watch its status."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from claire_cli.errors import user_errors, warn
from claire_cli.options import AsJson, DataDir, RunId

papertest_app = typer.Typer(
    help="Start, resume and watch paper runs.",
    rich_markup_mode=None,
    invoke_without_command=True,
)


@papertest_app.callback()
def papertest(ctx: typer.Context) -> None:
    """Start, resume and watch paper runs."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def parse_capital(text: str) -> Decimal:
    """`--capital` as a number, or one sentence that blames `--capital` (its range is
    checked with the settings, which name `--capital` too)."""
    from engine.errors import ConfigError

    try:
        value = Decimal(text.strip().replace("_", ""))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise ConfigError(
            f"--capital {text} is not a positive amount; give the starting equity in the quote "
            "currency, like --capital 10."
        )
    return value


@papertest_app.command("start")
def start(
    replay: Annotated[
        list[Path] | None,
        typer.Option(
            "--replay",
            help="Recorded market data to replay (CSV); repeat for more symbols.",
            metavar="FILE",
        ),
    ] = None,
    exchange: Annotated[
        str | None,
        typer.Option(
            help="Run live on this exchange's market data instead (mexc is tested).",
            metavar="NAME",
        ),
    ] = None,
    market: Annotated[
        str,
        typer.Option(
            help="spot, or futures for USDT perpetuals (replay or live).", metavar="spot|futures"
        ),
    ] = "spot",
    mark: Annotated[
        list[Path] | None,
        typer.Option(
            "--mark",
            help="Futures replay: a mark-price candle file (default: *-mark.csv beside --replay).",
            metavar="FILE",
        ),
    ] = None,
    funding: Annotated[
        list[Path] | None,
        typer.Option(
            "--funding",
            help="Futures replay: a funding-rate file (default: *-funding.csv beside --replay).",
            metavar="FILE",
        ),
    ] = None,
    symbols: Annotated[
        str | None,
        typer.Option(help="Live symbols, comma separated, like BTCUSDT,ETHUSDT.", metavar="LIST"),
    ] = None,
    timeframe: Annotated[
        str,
        typer.Option(
            help="Live candle interval (1m, 5m, 15m, 1h, ...) or none for trades only.",
            metavar="INTERVAL",
        ),
    ] = "5m",
    days: Annotated[
        float | None,
        typer.Option(
            help="Replay this many days from the first common timestamp; live: run length.",
            metavar="DAYS",
        ),
    ] = None,
    speed: Annotated[
        str | None,
        typer.Option(
            help="Replay speed: 1x, 60x, ... or max (default: max; a resumed run keeps its own).",
            metavar="SPEED",
        ),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help="Strategy as module:Class (installed, or a module in the working folder) or "
            "path/to/file.py:Class (default: the momentum strategy).",
            metavar="MODULE:CLASS",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="A strategy parameter, passed to its constructor; repeat for more.",
            metavar="NAME=VALUE",
        ),
    ] = None,
    capital: Annotated[
        str | None,
        typer.Option(
            help="Starting equity in the quote currency; overrides INITIAL_CAPITAL.",
            metavar="AMOUNT",
        ),
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
    services: Annotated[
        bool,
        typer.Option(
            "--services",
            help="Replay with one process per service over Redis Streams, supervised.",
        ),
    ] = False,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Run a paper run (replay or live) and print its summary."""
    with user_errors():
        from claire_cli.render import run_progress
        from engine.config import load_settings
        from engine.errors import ConfigError
        from engine.paperrun import resolve_data_dir
        from engine.signal.loader import StrategyChoice, parse_param

        overrides: dict[str, Any] = {}
        if capital is not None:
            parse_capital(capital)  # a non-number blames --capital
            overrides["initial_capital"] = capital.strip()  # a range error quotes it as typed
        if strategy:
            overrides["strategy"] = strategy
        options = {"strategy": "--strategy", "initial_capital": "--capital"}
        settings = load_settings(options, **overrides)
        if resume and (replay or exchange):
            raise ConfigError("--resume continues a recorded run; drop --replay and --exchange.")
        if resume and (strategy or param):
            raise ConfigError(
                "--resume continues with the run's own strategy and parameters; drop --strategy "
                "and --param."
            )
        if not resume and not replay and not exchange:
            raise ConfigError(
                "no market data given; pass --replay FILE (one per symbol) or "
                "--exchange mexc --symbols BTCUSDT."
            )
        if replay and exchange:
            raise ConfigError("choose --replay or --exchange, not both.")
        if market not in ("spot", "futures"):
            raise ConfigError(f"--market {market!r} is not spot or futures.")
        if (mark or funding) and not (replay and market == "futures"):
            raise ConfigError("--mark and --funding go with --replay ... --market futures.")
        perpetual = None
        if replay and market == "futures":
            from engine.feeds.replay import PerpetualFiles

            perpetual = PerpetualFiles(
                tuple(mark or ()), tuple(funding or ()), settings.funding_default_rate
            )
        if not persist and (resume or exchange):
            raise ConfigError("--no-persist works with --replay only.")
        choice = None
        if not resume:
            params = dict(parse_param(p) for p in param or ())
            choice = StrategyChoice.resolve(settings.strategy, params)
        folder = resolve_data_dir(data_dir, settings) if persist else None
        if services:
            if not replay or not persist:
                raise ConfigError(
                    "--services runs a stored replay: give --replay, not --no-persist."
                )
            _run_services(settings, choice, folder, replay, days, perpetual, speed, as_json)
            return
        outcome = None
        with run_progress(enabled=not as_json) as progress:
            if not persist:
                summary, stopped = _in_memory(
                    settings, choice, replay or [], days, speed, progress, perpetual
                )
            else:
                from engine.paperrun import PaperRunner

                runner = PaperRunner(settings, folder, choice=choice, on_warning=warn)
                if resume:
                    _require_data(settings, runner.data_dir)
                    outcome = runner.resume(run_id, speed, progress=progress)
                elif exchange:
                    outcome = runner.start_live(
                        _feed_settings(exchange, market, symbols, timeframe), days, progress
                    )
                else:
                    outcome = runner.start(
                        replay or [], days, speed or "max", progress, perpetual=perpetual
                    )
                summary, stopped = outcome.summary, outcome.stop_signal
        _print(summary, outcome, as_json)
        if stopped:
            if outcome is None:
                warn("stopped; an in-memory run (--no-persist) cannot be resumed.")
            raise typer.Exit(128 + stopped)


def _run_services(
    settings: Any,
    choice: Any,
    folder: Any,
    replay: list[Path],
    days: float | None,
    perpetual: Any,
    speed: str | None,
    as_json: bool,
) -> None:
    import json

    from claire_cli.console import out
    from engine.errors import ClaireError
    from engine.paperrun import PaperRunner, open_store
    from engine.plain import plain
    from engine.report.final import final_report, to_markdown

    runner = PaperRunner(settings, folder, choice=choice, on_warning=warn)
    run_id, status, stop_signal = runner.start_services(
        replay, days, perpetual, speed=speed or "max"
    )
    report, why = None, ""
    try:
        with open_store(settings, runner.data_dir) as (store, _):
            report = final_report(store, run_id)
    except ClaireError as exc:  # stopped before its first figures were written
        why = str(exc)
    if as_json:
        body = plain(report.as_json()) if report is not None else None
        typer.echo(json.dumps({"run_id": run_id, "status": status.value, "report": body}))
    else:
        out().print(to_markdown(report) if report is not None else why, markup=False)
        out().print(f"run {run_id} {status.value} (one process per service)", markup=False)
    if status.value == "stopped":
        raise typer.Exit(128 + (stop_signal or 2))


def _require_data(settings: Any, folder: Path) -> None:
    """A resume reads a run first: a folder without Claire data is a typo, not a new database."""
    from engine.report.access import NoDataError, has_claire_data

    if settings.claire_postgres_url is None and not has_claire_data(folder):
        raise NoDataError(f"no Claire data in {folder}; check --data-dir (or CLAIRE_HOME).")


def _in_memory(
    settings: Any,
    choice: Any,
    files: list[Path],
    days: float | None,
    speed: str | None,
    progress: Any,
    perpetual: Any,
) -> tuple[Any, int | None]:
    from engine.feeds.replay import parse_speed
    from engine.kernel import run_replay
    from engine.stopping import StopSignals

    with StopSignals() as stop:
        summary, _ = run_replay(
            settings,
            files,
            days=days,
            speed=parse_speed(speed or "max"),
            progress=progress,
            choice=choice,
            stop=stop,
            on_warning=warn,
            perpetual=perpetual,
        )
    return summary, stop.signum


def _print(summary: Any, outcome: Any, as_json: bool) -> None:
    from claire_cli.render import print_run_footer, print_summary, resume_command
    from engine.plain import plain

    if as_json:
        body = summary.as_json()
        if outcome is not None:
            body = {
                "run_id": outcome.run_id,
                "status": outcome.status.value,
                "end_reason": outcome.end_reason,
                "data_source": outcome.data_source,
                "started_at": plain(outcome.started_at),
                "ended_at": plain(outcome.ended_at),
                **body,
                "speed": outcome.speed,
                "data_dir": str(outcome.data_dir),
                "resumed_after_events": outcome.resumed_from,
                "warnings": list(outcome.warnings),
            }
            if outcome.stopped:
                body["resume_command"] = resume_command(outcome.run_id, outcome.data_dir)
        typer.echo(json.dumps(body, indent=2))
    else:
        print_summary(summary, outcome)
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
    """Show the runs in the data folder: progress, equity, PnL, fills and trading state."""
    with user_errors():
        from claire_cli.render import print_status
        from engine.config import load_settings
        from engine.report.access import open_data
        from engine.report.status import run_statuses

        settings = load_settings()
        with open_data(settings, data_dir) as data:
            if run_id is not None:
                data.run_id(run_id)  # "no run X in FOLDER" when it is not there
            rows = run_statuses(data.store, data.folder, run_id)
        if as_json:
            typer.echo(json.dumps([r.as_json() for r in rows], indent=2))
        else:
            print_status(rows, data.where)
