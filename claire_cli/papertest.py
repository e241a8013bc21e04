"""`claire papertest ...`: start (or resume) a paper run and watch its status."""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import ExitStack
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from claire_cli.errors import is_debug, user_errors, warn
from claire_cli.options import AsJson, DataDir, RunId, plain_number, refuse_empty
from claire_cli.preflight import IgnoreCheck

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
            parser=plain_number("--days", "give a number of days like 7"),
        ),
    ] = None,
    speed: Annotated[
        str | None,
        typer.Option(
            help="Replay speed: 1x, 60x, ... or max (default: max; a resumed run keeps its own).",
            metavar="SPEED",
            callback=refuse_empty("--speed", "give 1x, 60x, ... or max, or leave it out for max"),
        ),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help="Strategy as module:Class (installed, or a module in the working folder) or "
            "path/to/file.py:Class (default: the momentum strategy).",
            metavar="MODULE:CLASS",
            callback=refuse_empty(
                "--strategy", "give module:Class, or leave it out for the momentum strategy"
            ),
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
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Run in the background; return once the run has its first market event.",
        ),
    ] = False,
    skip_preflight: Annotated[
        bool, typer.Option("--skip-preflight", help="Start without the preflight checks.")
    ] = False,
    ignore_check: IgnoreCheck = None,
    as_run: Annotated[str | None, typer.Option("--as-run", hidden=True)] = None,
    preflight_file: Annotated[Path | None, typer.Option("--preflight-file", hidden=True)] = None,
    detached_child: Annotated[bool, typer.Option("--detached-child", hidden=True)] = False,
) -> None:
    """Run a paper run (replay or live) and print its summary.

    The preflight checks run first (see `claire preflight`); a no-go stops here.
    """
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
        if not persist and detach:
            raise ConfigError("--detach runs need a database; drop --no-persist.")
        # Mistakes in the options are named before any check runs.
        from engine.feeds.replay import parse_speed
        from engine.limits import check_days

        check_days(days)
        parse_speed(speed or "max")
        choice = None
        if not resume:
            params = dict(parse_param(p) for p in param or ())
            choice = StrategyChoice.resolve(settings.strategy, params)
            choice.strategy_class()  # a strategy that cannot load is named before the checks
        folder = resolve_data_dir(data_dir, settings) if persist else None
        if services:
            if not replay or not persist:
                raise ConfigError(
                    "--services runs a stored replay: give --replay, not --no-persist."
                )
            _run_services(settings, choice, folder, replay, days, perpetual, speed, as_json)
            return
        outcome = None
        if not persist:
            with run_progress(enabled=not as_json) as progress:
                summary, stopped = _in_memory(
                    settings, choice, replay or [], days, speed, progress, perpetual
                )
            _print(summary, outcome, as_json)
            if stopped:
                warn("stopped; an in-memory run (--no-persist) cannot be resumed.")
                raise typer.Exit(128 + stopped)
            return
        assert folder is not None
        from engine.ops.steward import RunSteward
        from engine.paperrun import PaperRunner

        if resume:
            _require_data(settings, folder)
        with ExitStack() as hold:  # the server the checks start stays up for the run
            checked = _preflight(
                settings, folder, replay, exchange, symbols, market, days, perpetual, resume,
                skip_preflight, ignore_check or (), preflight_file, hold,
            )  # fmt: skip
            if detach:
                _start_detached(
                    settings, folder, hold, checked, resume, run_id, speed, as_json,
                    _child_args(
                        replay, exchange, market, mark, funding, symbols, timeframe, days, speed,
                        strategy, param, capital, folder,
                    ),
                )  # fmt: skip
                return
            log_file = None
            if detached_child:
                from engine.ops.processes import log_path

                log_file = log_path(folder, as_run or run_id or "run")
            attend = RunSteward.factory(
                folder, settings, detached=detached_child, log_file=log_file
            )
            runner = PaperRunner(settings, folder, choice=choice, on_warning=warn, attend=attend)
            with run_progress(enabled=not as_json, live=bool(exchange)) as progress:
                if resume:
                    outcome = runner.resume(run_id, speed, progress=progress)
                elif exchange:
                    outcome = runner.start_live(
                        feed_settings(exchange, market, symbols, timeframe),
                        days,
                        progress,
                        run_id=as_run,
                        preflight=checked,
                    )
                else:
                    outcome = runner.start(
                        replay or [],
                        days,
                        speed or "max",
                        progress,
                        perpetual=perpetual,
                        run_id=as_run,
                        preflight=checked,
                    )
        _print(outcome.summary, outcome, as_json)
        if outcome.stop_signal:
            raise typer.Exit(128 + outcome.stop_signal)


def _preflight(
    settings: Any,
    folder: Path,
    replay: list[Path] | None,
    exchange: str | None,
    symbols: str | None,
    market: str,
    days: float | None,
    perpetual: Any,
    resume: bool,
    skip: bool,
    ignore: Sequence[str],
    given: Path | None,
    hold: ExitStack,
) -> dict[str, Any]:
    """The preflight result the run keeps: checked here, handed over by the command that
    detached this run, or a note that it was skipped."""
    from claire_cli.preflight import context, warn_about
    from engine.errors import ClaireError
    from engine.ops.detach import load_preflight
    from engine.ops.preflight import check_ignored, run_preflight

    if given is not None:
        return load_preflight(given)
    if skip:
        return {"skipped": True}
    ignored = check_ignored(ignore)
    ctx = context(
        str(folder), replay, exchange, symbols, market, days,
        settings=settings, hold=hold, resuming=resume, perpetual=perpetual,
    )  # fmt: skip
    report = run_preflight(ctx, ignored)
    if not report.go:
        raise ClaireError(report.no_go())
    warn_about(report)
    return report.as_json()


def _child_args(
    replay: list[Path] | None,
    exchange: str | None,
    market: str,
    mark: list[Path] | None,
    funding: list[Path] | None,
    symbols: str | None,
    timeframe: str,
    days: float | None,
    speed: str | None,
    strategy: str | None,
    param: list[str] | None,
    capital: str | None,
    folder: Path,
) -> list[str]:
    """The same run, for the detached process (files as absolute paths)."""
    args = ["papertest", "start", "--market", market, "--data-dir", str(folder)]
    for path in replay or ():
        args += ["--replay", str(Path(path).resolve())]
    for path in mark or ():
        args += ["--mark", str(Path(path).resolve())]
    for path in funding or ():
        args += ["--funding", str(Path(path).resolve())]
    if exchange:
        args += ["--exchange", exchange, "--timeframe", timeframe]
    if symbols:
        args += ["--symbols", symbols]
    if days is not None:
        args += ["--days", repr(days)]
    if speed:
        args += ["--speed", speed]
    if strategy:
        args += ["--strategy", strategy]
    for item in param or ():
        args += ["--param", item]
    if capital is not None:
        args += ["--capital", capital]
    return args


def _start_detached(
    settings: Any,
    folder: Path,
    hold: ExitStack,
    checked: dict[str, Any],
    resume: bool,
    run_id: str | None,
    speed: str | None,
    as_json: bool,
    args: list[str],
) -> None:
    """Start the run in a daemon process and wait for its first market event."""
    from datetime import UTC, datetime

    from claire_cli.console import out
    from engine.ops.detach import save_preflight, spawn, wait_for_first_event
    from engine.paperrun import PaperRunner, new_run_id, open_store

    store, _ = hold.enter_context(open_store(settings, folder))
    done_before = 0
    if resume:
        run = PaperRunner(settings, folder).resumable(store, run_id)
        chosen = run.run_id
        checkpoint = store.load_checkpoint(chosen)
        done_before = checkpoint.market_events if checkpoint else 0
        args = ["papertest", "start", "--resume", "--run", chosen, "--data-dir", str(folder)]
        args += ["--speed", speed] if speed else []
    else:
        chosen = new_run_id(datetime.now(UTC))
        args += ["--as-run", chosen]
    handed = save_preflight(folder, chosen, checked)
    args += ["--skip-preflight", "--preflight-file", str(handed), "--detached-child"]
    if is_debug():
        args.insert(0, "--debug")
    child = spawn(args, folder, chosen)
    started = wait_for_first_event(store, chosen, child, folder, done_before=done_before)
    if as_json:
        typer.echo(json.dumps({**started.as_json(), "data_dir": str(folder)}, indent=2))
    else:
        console = out()
        console.print(
            f"run [bold]{chosen}[/bold] {started.status} in the background (pid {started.pid}), "
            f"{started.market_events:,} market events so far",
            soft_wrap=True,
        )
        console.print(f"log: {started.log}", soft_wrap=True)
        console.print(f"watch it:  claire status --watch --data-dir {folder}", soft_wrap=True)
        console.print(
            f"stop it:   claire papertest stop --run {chosen} --data-dir {folder}", soft_wrap=True
        )
    if not started.first_event:
        warn(
            f"no market event yet after {started.waited_s:.0f} s; the run goes on: "
            "`claire status` shows when data arrives."
        )


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


def feed_settings(exchange: str, market: str, symbols: str | None, timeframe: str) -> Any:
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


@papertest_app.command("stop")
def stop(
    run_id: RunId = None,
    emergency: Annotated[
        bool,
        typer.Option(
            "--emergency",
            help="Stop now: nothing is closed; a backup is taken. Needs --reason.",
        ),
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option(help="Why; kept with the run and the command.", metavar="TEXT"),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds to wait for the run to finish stopping.", metavar="SECONDS"),
    ] = 300.0,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Stop the active run (default) or --run.

    Planned: no new entries, open positions closed at market, a final snapshot, a backup
    and the final report (reports/ in the data folder). --emergency: stop before the next
    market event, close nothing, back up. Both leave the run stopped and resumable.
    """
    with user_errors():
        from engine.config import load_settings
        from engine.errors import ConfigError
        from engine.ops.commands import Operator
        from engine.ops.control import check_note
        from engine.report.access import open_data

        if emergency and not reason:
            raise ConfigError("an emergency stop needs --reason TEXT: say why, it is kept.")
        why = check_note(reason or "planned stop", "--reason")
        settings = load_settings()
        with open_data(settings, data_dir) as data:
            answer = Operator(data.store, data.folder).stop(
                why, run_id, emergency=emergency, timeout_s=timeout
            )
        if answer.status.value == "refused":
            from engine.ops.control import CommandError

            why_not = answer.result.get("reason", "no reason given")
            raise CommandError(f"run {answer.run_id} refused to stop: {why_not}.")
        bundle = None
        if emergency:
            from engine.incidents.desk import incident_desk

            with incident_desk(settings, data_dir) as desk:
                bundle = str(desk.emergency_bundle(answer.run_id).path)
        if as_json:
            body = answer.as_json()
            if bundle is not None:
                body["bundle"] = bundle
            typer.echo(json.dumps(body, indent=2))
            return
        _print_stop(answer, bundle)


def _print_stop(answer: Any, bundle: str | None = None) -> None:
    from rich.markup import escape

    from claire_cli.console import out

    result = dict(answer.result)
    console = out()
    kind = "emergency stop" if answer.kind.value == "emergency_stop" else "planned stop"
    console.print(
        f"run [bold]{answer.run_id}[/bold] {result.get('status') or 'stopped'} ({kind})",
        soft_wrap=True,
    )
    if result.get("end_reason"):
        console.print(f"reason: {escape(str(result['end_reason']))}", soft_wrap=True)
    if result.get("via"):
        console.print(f"delivered as {result['via']} to pid {result.get('pid')}", soft_wrap=True)
    held = result.get("open_positions") or []
    if answer.kind.value == "stop":
        console.print("positions: " + (", ".join(held) + " still open" if held else "flat"))
    if result.get("backup"):
        console.print(f"backup: {escape(str(result['backup']))}", soft_wrap=True)
    if bundle:
        console.print(f"incident bundle: {escape(bundle)}", soft_wrap=True)
    if result.get("report"):
        console.print(f"final report: {escape(str(result['report']))}", soft_wrap=True)
    for problem in (result.get("report_error"), *(result.get("backup_failures") or [])):
        if problem:
            warn(str(problem))
    if held and answer.kind.value == "stop":
        warn(f"positions still open after the planned stop: {', '.join(held)}")
