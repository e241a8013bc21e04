"""Backups of a claire database: pg_dump custom format, a manifest with checksum and row
counts, verification by restoring into a scratch database, restore, and retention.

    Backups(folder).create(store.db)          one backup now
    Backups(folder).verify(backup, store.db)  checksum, table of contents, scratch restore
    BackupScheduler                           a run's backups, in the background
"""

from engine.ops.backups.manifest import (
    Backup,
    BackupFolder,
    BackupManifest,
    BackupNotFound,
    BadManifest,
    Verification,
)
from engine.ops.backups.retention import Decision, plan_prune
from engine.ops.backups.service import BackupError, Backups, PendingBackup, RestoreResult

__all__ = [
    "Backup",
    "BackupError",
    "BackupFolder",
    "BackupManifest",
    "BackupNotFound",
    "Backups",
    "BadManifest",
    "Decision",
    "PendingBackup",
    "RestoreResult",
    "Verification",
    "plan_prune",
]
