"""`claire report` and `claire export`: a run's figures and tables from the database."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from claire_cli.errors import user_errors
from claire_cli.options import DataDir, RunId


class ReportFormat(StrEnum):
    json = "json"
    md = "md"


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"


class ExportKind(StrEnum):
    signals = "signals"
    orders = "orders"
    trades = "trades"
    positions = "positions"
    snapshots = "snapshots"
    risk_events = "risk_events"
    rejected_rows = "rejected_rows"


def report(
    final: Annotated[bool, typer.Option("--final", help="The whole run's final report.")] = False,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="json or md.")] = ReportFormat.md,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file.")] = None,
    run_id: RunId = None,
    data_dir: DataDir = None,
) -> None:
    """Report on a run: total PnL, win rate, drawdown, exposure, fees, open positions."""
    with user_errors():
        from engine.config import load_settings
        from engine.errors import ConfigError
        from engine.paperrun import open_store, resolve_data_dir
        from engine.report.final import final_report, to_markdown

        if not final:
            raise ConfigError("say which report: --final for the whole run.")
        settings = load_settings()
        with open_store(settings, resolve_data_dir(data_dir, settings)) as (store, _):
            result = final_report(store, run_id)
        text = (
            json.dumps(result.as_json(), indent=2) + "\n"
            if fmt is ReportFormat.json
            else to_markdown(result)
        )
        _emit(text, out)


def export(
    kind: Annotated[ExportKind, typer.Argument(help="Which table to export.")],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv or json.")] = ExportFormat.csv,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file.")] = None,
    run_id: RunId = None,
    data_dir: DataDir = None,
) -> None:
    """Export one of a run's tables as CSV or JSON."""
    with user_errors():
        from engine.config import load_settings
        from engine.paperrun import open_store, resolve_data_dir
        from engine.report.export import export_text
        from engine.report.final import resolve_run_id

        settings = load_settings()
        with open_store(settings, resolve_data_dir(data_dir, settings)) as (store, _):
            text = export_text(store, kind.value, resolve_run_id(store, run_id), fmt.value)
        _emit(text, out)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}", err=True)
