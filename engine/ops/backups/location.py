"""Where a data folder's backups are kept: BACKUP_DIR, else backups/ in the folder."""

from __future__ import annotations

import os
from pathlib import Path

from engine.config import Settings
from engine.ops.backups.manifest import BackupFolder


def backup_folder(settings: Settings, data_dir: Path) -> BackupFolder:
    return BackupFolder(settings.backup_dir or Path(data_dir) / "backups")


def unusable_folder(path: Path) -> str | None:
    """Why backups cannot be written under `path` (its nearest existing part), or None."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{path}: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{path}: {existing} is not writable by this user"
    return None


__all__ = ["backup_folder", "unusable_folder"]
