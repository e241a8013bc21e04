"""`claire audit fills`: a run's fills re-derived from its own market data."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

import typer

from claire_cli.errors import user_errors
from claire_cli.options import AsJson, DataDir, RunId

audit_app = typer.Typer(
    help="Check a run against the market it traded on.",
    rich_markup_mode=None,
    invoke_without_command=True,
)

Check = Annotated[
    bool,
    typer.Option("--check", help="Exit with 2 when any figure shows paper kinder than the market."),
]


@audit_app.callback()
def audit(ctx: typer.Context) -> None:
    """Check a run against the market it traded on."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@audit_app.command("fills")
def fills(
    run_id: RunId = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
    check: Check = False,
) -> None:
    """Fill realism of a run (default: the newest), from its stored candles, orders and fills."""
    with user_errors():
        from engine.config import load_settings
        from engine.plain import plain_dict
        from engine.report.access import open_data
        from engine.report.audit import audit_fills, load_audit_input

        settings = load_settings()
        with open_data(settings, data_dir) as data:
            chosen = data.run_id(run_id)
            result = audit_fills(load_audit_input(data.store, chosen))
        if as_json:
            typer.echo(json.dumps({"run_id": chosen, **plain_dict(result.as_dict())}, indent=2))
        else:
            _render(chosen, result)
    if check and not result.holds:
        raise typer.Exit(2)


def _bps(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _render(run_id: str, result: Any) -> None:
    from rich.table import Table

    from claire_cli.console import out

    console = out()
    counts = Table(title=f"Fill realism of run {run_id}", show_header=False, title_justify="left")
    counts.add_column("", style="bold")
    counts.add_column("", justify="right")
    share = f"{result.under_half_spread_share * 100:.2f} %"
    rows = [
        ("fills (taker / maker)", f"{result.fills} ({result.taker_fills} / {result.maker_fills})"),
        ("outside their bar widened by the half spread", str(result.outside_bar)),
        ("priced before their order arrived", str(result.before_arrival)),
        ("taker fills paying less than the half spread", f"{result.under_half_spread} ({share})"),
        ("maker fills beyond the participation cap", str(result.maker_over_cap)),
        ("fills growing a position while halted", str(result.freeze_violations)),
    ]
    for name, value in rows:
        counts.add_row(name, value)
    console.print(counts)
    costs = Table(
        title="Signed cost of taker fills, bps (positive: the trader paid)", title_justify="left"
    )
    for column in ("timeframe", "side", "fills", "n"):
        costs.add_column(column)
    for column in ("mean vs decision", "median vs decision", "mean vs mid", "median vs mid"):
        costs.add_column(column, justify="right")
    for c in result.costs:
        costs.add_row(
            c.timeframe,
            c.side,
            c.fills,
            str(c.n),
            _bps(c.mean_vs_decision),
            _bps(c.median_vs_decision),
            _bps(c.mean_vs_mid),
            _bps(c.median_vs_mid),
        )
    console.print(costs)
    verdict = (
        "[green]paper was nowhere kinder than the market[/green]"
        if result.holds
        else "[red]paper was kinder than the market somewhere: see the figures above[/red]"
    )
    console.print(verdict)
