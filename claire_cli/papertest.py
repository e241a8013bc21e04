"""`claire papertest ...`: start (or resume) a paper run and watch its status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from claire_cli.errors import is_debug, user_errors, warn
from claire_cli.options import (
    AsJson,
    DataDir,
    IgnoreCheck,
    RunId,
    StackFlag,
    plain_number,
    refuse_empty,
    settings_for,
)

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


Replay = Annotated[
    list[Path] | None,
    typer.Option(
        "--replay", help="Recorded market data to replay (CSV); repeat for more symbols.",
        metavar="FILE",
    ),
]  # fmt: skip
Exchange = Annotated[
    str | None,
    typer.Option(
        help="Run live on this exchange's market data instead (mexc is tested).", metavar="NAME"
    ),
]
Market = Annotated[
    str,
    typer.Option(
        help="spot, or futures for USDT perpetuals (replay or live).", metavar="spot|futures"
    ),
]
Mark = Annotated[
    list[Path] | None,
    typer.Option(
        "--mark",
        help="Futures replay: a mark-price candle file (default: *-mark.csv beside --replay).",
        metavar="FILE",
    ),
]
Funding = Annotated[
    list[Path] | None,
    typer.Option(
        "--funding",
        help="Futures replay: a funding-rate file (default: *-funding.csv beside --replay).",
        metavar="FILE",
    ),
]
Symbols = Annotated[
    str | None,
    typer.Option(help="Live symbols, comma separated, like BTCUSDT,ETHUSDT.", metavar="LIST"),
]
Timeframe = Annotated[
    str,
    typer.Option(
        help="Live candle interval (1m, 5m, 15m, 1h, ...) or none for trades only.",
        metavar="INTERVAL",
    ),
]
Days = Annotated[
    float | None,
    typer.Option(
        help="Replay this many days from the first common timestamp; live: run length.",
        metavar="DAYS",
        parser=plain_number("--days", "give a number of days like 7"),
    ),
]
Speed = Annotated[
    str | None,
    typer.Option(
        help="Replay speed: 1x, 60x, ... or max (default: max; a resumed run keeps its own).",
        metavar="SPEED",
        callback=refuse_empty("--speed", "give 1x, 60x, ... or max, or leave it out for max"),
    ),
]
Strategy = Annotated[
    str | None,
    typer.Option(
        help="Strategy as module:Class (installed, or a module in the working folder) or "
        "path/to/file.py:Class (default: the momentum strategy).",
        metavar="MODULE:CLASS",
        callback=refuse_empty(
            "--strategy", "give module:Class, or leave it out for the momentum strategy"
        ),
    ),
]
Param = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        help="A strategy parameter, passed to its constructor; repeat for more.",
        metavar="NAME=VALUE",
    ),
]
Capital = Annotated[
    str | None,
    typer.Option(
        help="Starting equity in the quote currency; overrides INITIAL_CAPITAL.", metavar="AMOUNT"
    ),
]
Resume = Annotated[
    bool, typer.Option("--resume", help="Continue an interrupted run from its checkpoint.")
]
Persist = Annotated[
    bool,
    typer.Option(
        "--persist/--no-persist", help="Store every event in PostgreSQL (default) or not."
    ),
]
Services = Annotated[
    bool,
    typer.Option(
        "--services", help="Replay with one process per service over Redis Streams, supervised."
    ),
]
Detach = Annotated[
    bool,
    typer.Option(
        "--detach", help="Run in the background; return once the run has its first market event."
    ),
]
SkipPreflight = Annotated[
    bool, typer.Option("--skip-preflight", help="Start without the preflight checks.")
]
Reports = Annotated[
    bool,
    typer.Option(
        "--reports",
        help="Replay: write the daily and final reports as the run goes (a live run always "
        "does; else `claire report` writes them on demand).",
    ),
]
AsRun = Annotated[str | None, typer.Option("--as-run", hidden=True)]
PreflightFile = Annotated[Path | None, typer.Option("--preflight-file", hidden=True)]
DetachedChild = Annotated[bool, typer.Option("--detached-child", hidden=True)]


@papertest_app.command("start")
def start(
    replay: Replay = None,
    exchange: Exchange = None,
    market: Market = "spot",
    mark: Mark = None,
    funding: Funding = None,
    symbols: Symbols = None,
    timeframe: Timeframe = "5m",
    days: Days = None,
    speed: Speed = None,
    strategy: Strategy = None,
    param: Param = None,
    capital: Capital = None,
    resume: Resume = False,
    run_id: RunId = None,
    persist: Persist = True,
    services: Services = False,
    data_dir: DataDir = None,
    as_json: AsJson = False,
    detach: Detach = False,
    skip_preflight: SkipPreflight = False,
    ignore_check: IgnoreCheck = None,
    reports: Reports = False,
    as_run: AsRun = None,
    preflight_file: PreflightFile = None,
    detached_child: DetachedChild = False,
) -> None:
    """Run a paper run (replay or live) and print its summary.

    The preflight checks run first (see `claire preflight`); a no-go stops here.
    """
    with user_errors():
        from claire_cli.render import run_progress
        from engine.run.lifecycle import start as start_run
        from engine.run.request import RunRequest

        request = RunRequest(
            replay=tuple(replay or ()), exchange=exchange, market=market,
            marks=tuple(mark or ()), funding=tuple(funding or ()), symbols=symbols,
            timeframe=timeframe, days=days, speed=speed, strategy=strategy,
            params=tuple(param or ()), capital=capital, resume=resume, run_id=run_id,
            persist=persist, runtime="services" if services else "process", data_dir=data_dir,
            detach=detach, skip_preflight=skip_preflight, ignore_checks=tuple(ignore_check or ()),
            as_run=as_run, preflight_file=preflight_file, detached_child=detached_child,
            reports=reports,
        )  # fmt: skip

        def progress() -> Any:
            return run_progress(enabled=not as_json, live=bool(exchange))

        outcome = start_run(request, progress, on_warning=warn, debug=is_debug())
    _render_start(outcome, as_json)


def _render_start(outcome: Any, as_json: bool) -> None:
    from engine.run.lifecycle import Detached, InMemoryOutcome
    from engine.run.runtimes import ServicesOutcome

    if isinstance(outcome, Detached):
        _print_detached(outcome, as_json)
    elif isinstance(outcome, ServicesOutcome):
        _print_services(outcome, as_json)
    elif isinstance(outcome, InMemoryOutcome):
        _print(outcome.summary, None, as_json)
        if outcome.stop_signal:
            warn("stopped; an in-memory run (--no-persist) cannot be resumed.")
            raise typer.Exit(128 + outcome.stop_signal)
    else:
        _print(outcome.summary, outcome, as_json)
        if outcome.stop_signal:
            raise typer.Exit(128 + outcome.stop_signal)


def _print_detached(detached: Any, as_json: bool) -> None:
    from claire_cli.console import out

    started, folder = detached.run, detached.data_dir
    chosen = started.run_id
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


def _print_services(outcome: Any, as_json: bool) -> None:
    from claire_cli.console import out
    from engine.plain import plain
    from engine.report.final import to_markdown

    report = outcome.report
    if as_json:
        body = plain(report.as_json()) if report is not None else None
        typer.echo(
            json.dumps(
                {
                    "run_id": outcome.run_id,
                    "status": outcome.status.value,
                    "report": body,
                    "warnings": list(outcome.warnings),
                }
            )
        )
    else:
        out().print(
            to_markdown(report) if report is not None else outcome.why_no_report, markup=False
        )
        out().print(
            f"run {outcome.run_id} {outcome.status.value} (one process per service)", markup=False
        )
    if outcome.status.value == "stopped" and outcome.stop_signal:  # not an operator's stop
        raise typer.Exit(128 + outcome.stop_signal)


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
                "http_port": outcome.http_port,
            }
            if outcome.stopped:
                body["resume_command"] = resume_command(outcome.run_id, outcome.data_dir)
        typer.echo(json.dumps(body, indent=2))
    else:
        print_summary(summary, outcome)
        if outcome is not None:
            print_run_footer(outcome)


@papertest_app.command("status")
def status(run_id: RunId = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Show the runs in the data folder: progress, equity, PnL, fills and trading state."""
    with user_errors():
        from claire_cli.render import print_status
        from engine.config import load_settings
        from engine.run.lifecycle import status as run_status

        rows, where = run_status(load_settings(), data_dir, run_id)
        if as_json:
            typer.echo(json.dumps([r.as_json() for r in rows], indent=2))
        else:
            print_status(rows, where)


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
    stack: StackFlag = None,
    as_json: AsJson = False,
) -> None:
    """Stop the active run (default) or --run.

    Planned: no new entries, open positions closed at market, a final snapshot, a backup
    and the final report (reports/ in the data folder). --emergency: stop before the next
    market event, close nothing, back up. Both leave the run stopped and resumable.
    """
    with user_errors():
        from engine.run.lifecycle import stop as stop_run

        result = stop_run(
            settings_for(stack, data_dir), data_dir, run_id, emergency=emergency, reason=reason,
            timeout_s=timeout,
        )  # fmt: skip
        answer = result.answer
        bundle = str(result.bundle) if result.bundle is not None else None
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
