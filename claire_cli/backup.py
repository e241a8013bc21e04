"""`claire backup create|list|verify|restore|prune`: the data folder's database, backed up."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from claire_cli.errors import user_errors, warn
from claire_cli.options import AsJson, DataDir, StackFlag, settings_for

backup_app = typer.Typer(
    help="Back up the data folder's database, check the backups, restore one, prune old ones.",
    rich_markup_mode=None,
    invoke_without_command=True,
)

Name = Annotated[
    str | None,
    typer.Argument(
        help="A backup's name (claire backup list), or the path of its .dump file.",
        metavar="BACKUP",
    ),
]


@backup_app.callback()
def backup(ctx: typer.Context) -> None:
    """Back up the data folder's database, check the backups, restore one, prune old ones."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def _backups(settings: Any, folder: Any) -> Any:
    from engine.ops.backups import Backups
    from engine.ops.backups.location import backup_folder

    return Backups(backup_folder(settings, folder))


def _describe(b: Any) -> dict[str, Any]:
    body = b.manifest.as_json()
    body["file"] = str(b.dump)
    body["rows"] = sum(b.manifest.tables.values())
    return dict(body)


@backup_app.command("create")
def create(data_dir: DataDir = None, stack: StackFlag = None, as_json: AsJson = False) -> None:
    """Back up the database now (custom-format pg_dump, checksum, manifest)."""
    with user_errors():
        from engine.ops.status import choose_run
        from engine.report.access import open_data

        settings = settings_for(stack, data_dir)
        with open_data(settings, data_dir) as data:
            run, _ = choose_run(data.store, data.folder, None)
            made = _backups(settings, data.folder).create(
                data.store.db,
                "manual",
                run.run_id if run else None,
                run.last_event_ts if run else None,
            )
        if as_json:
            typer.echo(json.dumps(_describe(made), indent=2))
            return
        from claire_cli.console import out

        m = made.manifest
        out().print(
            f"backup {m.name}: {m.size:,} bytes, {sum(m.tables.values()):,} rows in "
            f"{len(m.tables)} tables, sha256 {m.sha256[:16]}...",
            soft_wrap=True,
        )
        out().print(f"file: {made.dump}", soft_wrap=True)


@backup_app.command("list")
def list_backups(
    data_dir: DataDir = None, stack: StackFlag = None, as_json: AsJson = False
) -> None:
    """The backups, oldest first, with their size, rows and whether they were verified."""
    with user_errors():
        from engine.home.folder import resolve_data_dir

        settings = settings_for(stack, data_dir)
        backups = _backups(settings, resolve_data_dir(data_dir, settings))
        found = backups.folder.backups()
        if as_json:
            typer.echo(json.dumps([_describe(b) for b in found], indent=2))
            return
        from rich.table import Table

        from claire_cli.console import out

        if not found:
            out().print(
                f"no backups in {backups.folder.path} yet; `claire backup create` makes one."
            )
            return
        table = Table(title=f"Backups in {backups.folder.path}", title_justify="left")
        for column in ("name", "created (UTC)", "reason", "run", "size", "rows", "verified"):
            table.add_column(column, overflow="fold")
        for b in found:
            m = b.manifest
            check = "-"
            if m.verification is not None:
                check = "[green]ok[/green]" if m.verification.ok else "[red]failed[/red]"
                check += f" {m.verification.verified_at:%Y-%m-%d %H:%M}"
            table.add_row(
                m.name,
                f"{m.created_at:%Y-%m-%d %H:%M:%S}",
                m.reason,
                m.run_id or "-",
                f"{m.size:,}",
                f"{sum(m.tables.values()):,}",
                check,
            )
        out().print(table)
        for leftover in backups.folder.leftovers():
            warn(f"{leftover} is an incomplete backup; `claire backup prune` removes it.")


@backup_app.command("verify")
def verify(
    name: Name = None,
    every: Annotated[bool, typer.Option("--all", help="Verify every backup.")] = False,
    data_dir: DataDir = None,
    stack: StackFlag = None,
    as_json: AsJson = False,
) -> None:
    """Check a backup (default: the newest): checksum, table of contents, and a restore into a
    scratch database whose row counts must match the manifest. Exit 1 when one fails."""
    with user_errors():
        from engine.ops.backups import BackupNotFound
        from engine.plain import plain
        from engine.report.access import open_data

        settings = settings_for(stack, data_dir)
        with open_data(settings, data_dir) as data:
            backups = _backups(settings, data.folder)
            if every:
                chosen = backups.folder.backups()
            elif name:
                chosen = [backups.folder.find(name)]
            else:
                newest = backups.folder.newest()
                if newest is None:
                    where = backups.folder.path
                    raise BackupNotFound(
                        f"no backups in {where} yet; `claire backup create` makes one."
                    )
                chosen = [newest]
            results = [(b, backups.verify(b, data.store.db)) for b in chosen]
        if as_json:
            body = [
                {
                    "name": b.name,
                    "file": str(b.dump),
                    "ok": v.ok,
                    "reason": v.reason,
                    "checks": v.checks,
                    "verified_at": plain(v.verified_at),
                }
                for b, v in results
            ]
            typer.echo(json.dumps(body, indent=2))
        else:
            from claire_cli.console import err, out

            for b, v in results:
                if v.ok:
                    out().print(f"[green]ok[/green] {b.name}: {v.reason}", soft_wrap=True)
                else:
                    err().print(f"[red]failed[/red] {b.name}: {v.reason}", soft_wrap=True)
        if any(not v.ok for _, v in results):
            raise typer.Exit(1)


@backup_app.command("restore")
def restore(
    name: Annotated[
        str,
        typer.Argument(
            help="A backup's name (claire backup list), or the path of its .dump file.",
            metavar="BACKUP",
        ),
    ],
    to_database: Annotated[
        str | None,
        typer.Option(
            "--to-database",
            help="Restore into this new database of the server instead of in place.",
            metavar="NAME",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Restore in place even while a run is active.")
    ] = False,
    data_dir: DataDir = None,
    stack: StackFlag = None,
    as_json: AsJson = False,
) -> None:
    """Restore a backup in place (the current database is kept under another name when it
    holds runs), or into a new database with --to-database. Then resume the run with
    `claire papertest start --resume`."""
    with user_errors():
        from engine.home.folder import resolve_data_dir
        from engine.ops.backups.restore import restore_data_folder

        settings = settings_for(stack, data_dir)
        folder = resolve_data_dir(data_dir, settings)
        result = restore_data_folder(
            settings,
            folder,
            _backups(settings, folder),
            name,
            to_database=to_database,
            force=force,
        )
        if as_json:
            typer.echo(json.dumps(_restored(result), indent=2))
            return
        _print_restored(result)


def _print_restored(result: Any) -> None:
    from claire_cli.console import out

    out().print(
        f"restored {result.backup} into database {result.database}: "
        f"{sum(result.tables.values()):,} rows, {len(result.runs)} runs",
        soft_wrap=True,
    )
    if result.previous:
        out().print(
            f"the database it replaced is kept as {result.previous}; drop it with "
            f"`claire db psql -- -c 'DROP DATABASE {result.previous}'` once you are sure.",
            soft_wrap=True,
        )
    for run in result.runs:
        if run["status"] in ("running", "stopped", "crashed"):
            out().print(
                f"run {run['run_id']} continues with `claire papertest start --resume "
                f"--run {run['run_id']}`",
                soft_wrap=True,
            )


def _restored(result: Any) -> dict[str, Any]:
    from engine.plain import plain

    found: dict[str, Any] = plain(
        {
            "backup": result.backup,
            "database": result.database,
            "previous": result.previous,
            "tables": result.tables,
            "runs": result.runs,
        }
    )
    return found


@backup_app.command("prune")
def prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go, delete nothing.")
    ] = False,
    data_dir: DataDir = None,
    stack: StackFlag = None,
    as_json: AsJson = False,
) -> None:
    """Delete backups older than BACKUP_RETENTION_DAYS (default 14), keeping the newest
    backup and the newest verified one whatever their age; and incomplete leftovers."""
    with user_errors():
        from engine.home.folder import resolve_data_dir

        settings = settings_for(stack, data_dir)
        backups = _backups(settings, resolve_data_dir(data_dir, settings))
        leftovers = backups.folder.leftovers()
        decisions = backups.prune(settings.backup_retention_days, dry_run=dry_run)
        if not dry_run:
            for path in leftovers:
                path.unlink(missing_ok=True)
        if as_json:
            body = {
                "retention_days": settings.backup_retention_days,
                "dry_run": dry_run,
                "kept": [{"name": d.name, "why": d.why} for d in decisions if d.keep],
                "deleted": [{"name": d.name, "why": d.why} for d in decisions if not d.keep],
                "incomplete_removed": [str(p) for p in leftovers],
            }
            typer.echo(json.dumps(body, indent=2))
            return
        from claire_cli.console import out

        verb = "would delete" if dry_run else "deleted"
        for d in decisions:
            out().print(f"{'kept' if d.keep else verb} {d.name}: {d.why}", soft_wrap=True)
        for path in leftovers:
            out().print(f"{verb} incomplete {path}", soft_wrap=True)
        if not decisions and not leftovers:
            out().print(f"no backups in {backups.folder.path}.")
