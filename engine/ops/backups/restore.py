"""Restoring a data folder's database from one of its backups, on the folder's server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from engine.config import Settings
from engine.home.processes import locked_runs
from engine.ops.backups.service import BackupError, Backups, RestoreResult
from engine.ops.database import served
from engine.runtime.urls import with_database
from engine.store import Database


def restore_data_folder(
    settings: Settings,
    folder: Path,
    backups: Backups,
    name: str,
    *,
    to_database: str | None = None,
    force: bool = False,
) -> RestoreResult:
    """Restore backup `name` in place (refused while a run is active unless `force`),
    or into the new database `to_database`."""
    chosen = backups.folder.find(name)
    active = locked_runs(folder)
    if active and to_database is None and not force:
        raise BackupError(
            f"run {active[0]} is active in {folder}; stop it first (`claire papertest stop`), "
            "or restore into a new database with --to-database NAME (--force restores anyway)."
        )
    with served(settings, folder) as url:
        target = to_database or database_name(url)
        with Database(with_database(url, "postgres"), min_size=1, max_size=1) as admin:
            return backups.restore(chosen, admin, target, in_place=to_database is None)


def database_name(url: str) -> str:
    """The database a server URL names; postgres when it names none."""
    name = unquote(urlsplit(url).path.lstrip("/"))
    return name or "postgres"
