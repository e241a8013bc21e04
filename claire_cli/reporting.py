"""`claire report` and `claire export`: a run's figures and tables from the database."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from claire_cli.errors import user_errors
from claire_cli.options import DataDir, RunId, StackFlag, settings_for


class ReportFormat(StrEnum):
    json = "json"
    md = "md"
    html = "html"


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"


class ExportKind(StrEnum):
    signals = "signals"
    orders = "orders"
    trades = "trades"
    round_trips = "round_trips"
    positions = "positions"
    snapshots = "snapshots"
    risk_events = "risk_events"
    funding = "funding"
    liquidations = "liquidations"
    alerts = "alerts"
    rejected_rows = "rejected_rows"


def report(
    final: Annotated[
        bool,
        typer.Option("--final", help="The whole run's final report (the default)."),
    ] = False,
    day: Annotated[
        int | None,
        typer.Option(
            "--day", help="The run's N-th UTC day of market time (1 is the first).", metavar="N"
        ),
    ] = None,
    fmt: Annotated[
        ReportFormat | None,
        typer.Option(
            "--format", help="md (default), html (charts inlined) or json.", metavar="md|html|json"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file.", metavar="FILE")
    ] = None,
    run_id: RunId = None,
    data_dir: DataDir = None,
    stack: StackFlag = None,
) -> None:
    """Report on a run (default: the newest): PnL, win rate, drawdown, Sharpe, risk, alerts."""
    with user_errors():
        from engine.errors import ConfigError
        from engine.report.access import open_data
        from engine.report.content import build_report
        from engine.report.render import render

        if final and day is not None:
            raise ConfigError("--final and --day disagree; give one of them.")
        chosen = _format(fmt, as_json, ReportFormat.md)
        settings = settings_for(stack, data_dir)
        with open_data(settings, data_dir) as data:
            result = build_report(data.store, data.run_id(run_id), day)
        _emit(render(result, chosen.value), out)


def export(
    kind: Annotated[ExportKind, typer.Argument(help="Which table to export.")],
    fmt: Annotated[
        ExportFormat | None,
        typer.Option("--format", help="csv (default) or json.", metavar="csv|json"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file.", metavar="FILE")
    ] = None,
    run_id: RunId = None,
    data_dir: DataDir = None,
    stack: StackFlag = None,
) -> None:
    """Export one of a run's tables as CSV or JSON (round_trips: one row per round trip)."""
    with user_errors():
        from engine.report.access import open_data
        from engine.report.export import export_text

        chosen = _format(fmt, as_json, ExportFormat.csv)
        settings = settings_for(stack, data_dir)
        with open_data(settings, data_dir) as data:
            text = export_text(data.store, kind.value, data.run_id(run_id), chosen.value)
        _emit(text, out)


F = TypeVar("F", ReportFormat, ExportFormat)


def _format(fmt: F | None, as_json: bool, default: F) -> F:
    from engine.errors import ConfigError

    if as_json:
        if fmt is not None and fmt.value != "json":
            raise ConfigError(f"--json and --format {fmt.value} disagree; give one of them.")
        return type(default)("json")
    return fmt if fmt is not None else default


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    from engine.errors import ConfigError

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot write {out} ({reason}); choose another --out file.") from None
    typer.echo(f"wrote {out}", err=True)
