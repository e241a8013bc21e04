"""Where a data folder's backups are kept: BACKUP_DIR, else backups/ in the folder."""

from __future__ import annotations

from pathlib import Path

from engine.config import Settings
from engine.ops.backups.manifest import BackupFolder


def backup_folder(settings: Settings, data_dir: Path) -> BackupFolder:
    return BackupFolder(settings.backup_dir or Path(data_dir) / "backups")


__all__ = ["backup_folder"]
