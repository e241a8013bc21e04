"""Which backups `claire backup prune` keeps: a pure decision over their manifests.

Kept: every backup younger than BACKUP_RETENTION_DAYS, the newest backup, and the
newest verified backup, however old (the last one known to restore must never go).
Everything else is deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.ops.backups.manifest import BackupManifest


@dataclass(frozen=True, slots=True)
class Decision:
    name: str
    keep: bool
    why: str


def plan_prune(
    manifests: Sequence[BackupManifest], now: datetime, retention_days: int
) -> list[Decision]:
    """One decision per backup, oldest first."""
    ordered = sorted(manifests, key=lambda m: (m.created_at, m.name))
    newest = ordered[-1].name if ordered else None
    verified = [m for m in ordered if m.verified]
    newest_verified = verified[-1].name if verified else None
    horizon = now - timedelta(days=retention_days)
    decisions = []
    for m in ordered:
        if m.created_at > horizon:
            decisions.append(Decision(m.name, True, f"younger than {retention_days} days"))
        elif m.name == newest:
            decisions.append(Decision(m.name, True, "the newest backup"))
        elif m.name == newest_verified:
            decisions.append(Decision(m.name, True, "the newest verified backup"))
        else:
            decisions.append(Decision(m.name, False, f"older than {retention_days} days"))
    return decisions
