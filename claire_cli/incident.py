"""`claire incident open|list|show|close`: the runbook's incident response."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from claire_cli.errors import user_errors, warn
from claire_cli.options import AsJson, DataDir, RunId, StackFlag, settings_for

incident_app = typer.Typer(
    help="Open an incident (bundle, first action, report), list, show and close incidents.",
    rich_markup_mode=None,
    invoke_without_command=True,
)

IncidentId = Annotated[
    str, typer.Argument(help="The incident's id, like INC-20261123-0001.", metavar="ID")
]


@incident_app.callback()
def incident(ctx: typer.Context) -> None:
    """Open an incident (bundle, first action, report), list, show and close incidents."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@incident_app.command("open")
def open_incident(
    kind: Annotated[
        str,
        typer.Argument(
            help="service-crash, risk-limit, unresponsive, database-outage, "
            "resource-shortage or data-stop.",
            metavar="TYPE",
        ),
    ],
    note: Annotated[
        str | None,
        typer.Option("--note", help="What happened; kept in the timeline.", metavar="TEXT"),
    ] = None,
    service: Annotated[
        str | None,
        typer.Option(
            "--service",
            help="The service to restart (service-crash, unresponsive; a run as services).",
            metavar="NAME",
        ),
    ] = None,
    run_id: RunId = None,
    data_dir: DataDir = None,
    stack: StackFlag = None,
    as_json: AsJson = False,
) -> None:
    """Capture a bundle, take the type's first action, write the incident report."""
    with user_errors():
        from engine.incident_kinds import IncidentType
        from engine.incidents.desk import check_note, incident_desk

        chosen = IncidentType.parse(kind)
        text = check_note(note) if note is not None else None
        settings = settings_for(stack, data_dir)
        with incident_desk(settings, data_dir) as desk:
            found = desk.open(chosen, text, run_id=run_id, service=service)
            down = desk.store_error
        if as_json:
            typer.echo(json.dumps(found.as_json(), indent=2))
        else:
            _opened(found)
        if down:
            warn(
                f"the database did not answer ({down}); the incident is kept in "
                f"{desk.folder} and written to PostgreSQL by the next `claire incident` "
                "command that reaches it."
            )


def _opened(found: Any) -> None:
    from rich.markup import escape

    from claire_cli.console import out

    console = out()
    action = found.action
    console.print(
        f"incident [bold]{found.incident_id}[/bold] ({found.type.label}) opened on "
        f"{('run ' + found.run_id) if found.run_id else 'no run'}",
        soft_wrap=True,
    )
    if action is not None:
        verb = "[green]taken[/green]" if action.taken else "[yellow]not taken[/yellow]"
        console.print(
            f"first action: {escape(action.action)}, {verb}: {escape(action.result)}",
            soft_wrap=True,
        )
    bundle = found.detail.get("bundle") or {}
    missing = bundle.get("missing") or []
    line = f"bundle: {found.bundle_path} ({len(bundle.get('files') or [])} files"
    if missing:
        line += "; not captured: " + ", ".join(m["part"] for m in missing)
    console.print(escape(line + ")"), soft_wrap=True)
    for report in found.detail.get("reports") or []:
        console.print(f"report: {escape(report)}", soft_wrap=True)


@incident_app.command("list")
def list_incidents(
    data_dir: DataDir = None, stack: StackFlag = None, as_json: AsJson = False
) -> None:
    """Every incident, oldest first: type, status, run, first action."""
    with user_errors():
        from engine.incidents.desk import incident_desk

        with incident_desk(settings_for(stack, data_dir), data_dir) as desk:
            found = desk.list()
            down = desk.store_error
        if as_json:
            typer.echo(json.dumps([i.as_json() for i in found], indent=2))
        else:
            _table(found, str(desk.folder))
        if down:
            warn(f"the database did not answer ({down}); only the incidents of {desk.folder}.")


def _table(found: list[Any], folder: str) -> None:
    from rich.table import Table

    from claire_cli.console import out

    if not found:
        out().print(f"no incidents in {folder}; `claire incident open TYPE` opens one.")
        return
    table = Table(title="Incidents", title_justify="left")
    for column in ("id", "type", "status", "run", "opened (UTC)", "first action", "summary"):
        table.add_column(column, overflow="fold")
    for i in found:
        action = i.action
        taken = "-" if action is None else ("taken" if action.taken else "not taken")
        status = i.status if i.stored else f"{i.status} (not in the database yet)"
        table.add_row(
            i.incident_id,
            i.type.label,
            status,
            i.run_id or "-",
            f"{i.opened_at:%Y-%m-%d %H:%M:%S}",
            taken,
            i.summary,
        )
    out().print(table)


@incident_app.command("show")
def show(
    incident_id: IncidentId,
    data_dir: DataDir = None,
    stack: StackFlag = None,
    as_json: AsJson = False,
) -> None:
    """One incident: what happened, its first action, its timeline, bundle and report."""
    with user_errors():
        from engine.incidents.desk import incident_desk

        with incident_desk(settings_for(stack, data_dir), data_dir) as desk:
            found = desk.show(incident_id)
        if as_json:
            typer.echo(json.dumps(found.as_json(), indent=2))
            return
        _details(found)


def _details(found: Any) -> None:
    from rich.markup import escape

    from claire_cli.console import out
    from engine.incidents.timeline import render_lines

    console = out()
    console.print(
        f"[bold]{found.incident_id}[/bold] {found.type.label}, {found.status}: "
        f"{escape(found.summary)}",
        soft_wrap=True,
    )
    action = found.action
    if action is not None:
        verb = "taken" if action.taken else "not taken"
        console.print(
            f"first action: {escape(action.action)} ({verb}): {escape(action.result)}",
            soft_wrap=True,
        )
    console.print(f"bundle: {escape(str(found.bundle_path or '-'))}", soft_wrap=True)
    for report in found.detail.get("reports") or []:
        console.print(f"report: {escape(report)}", soft_wrap=True)
    console.print("timeline:")
    for line in render_lines(found.events):
        console.print("  " + escape(line), soft_wrap=True)


@incident_app.command("close")
def close(
    incident_id: IncidentId,
    note: Annotated[
        str, typer.Option("--note", help="How it ended; kept in the timeline.", metavar="TEXT")
    ],
    data_dir: DataDir = None,
    stack: StackFlag = None,
    as_json: AsJson = False,
) -> None:
    """Close an incident with a note; its report is written again."""
    with user_errors():
        from engine.incidents.desk import incident_desk

        with incident_desk(settings_for(stack, data_dir), data_dir) as desk:
            found = desk.close(incident_id, note)
            down = desk.store_error
        if as_json:
            typer.echo(json.dumps(found.as_json(), indent=2))
        else:
            from claire_cli.console import out

            reports = ", ".join(found.detail.get("reports") or []) or "-"
            out().print(
                f"incident {found.incident_id} closed; report written again: {reports}",
                soft_wrap=True,
            )
        if down:
            warn(f"the database did not answer ({down}); the close is written there later.")
