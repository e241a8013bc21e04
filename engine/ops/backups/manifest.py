"""Backups on disk: one custom-format dump per backup and a JSON manifest beside it.

    backups/claire-20250110T000000Z-daily-1a2b.dump   pg_dump --format=custom
    backups/claire-20250110T000000Z-daily-1a2b.json   what it holds, and its checksum

The manifest records when and why the backup was made, for which run, from which
database (its URL without the password) and server version, the dump's size and
sha256, and the row count of every table as the dump saw them; `verify` adds
what it found. A dump without a manifest was cut short and is not a backup. Both
files are written under temporary names and renamed, so a reader never sees half.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from engine.errors import ClaireError
from engine.plain import plain_dict
from engine.runtime.files import PARTIAL_SUFFIX

FORMAT: Final = 1
PREFIX: Final = "claire-"
DUMP_SUFFIX: Final = ".dump"
MANIFEST_SUFFIX: Final = ".json"


class BackupNotFound(ClaireError):
    pass


class BadManifest(ClaireError):
    pass


@dataclass(frozen=True, slots=True)
class Verification:
    verified_at: datetime
    ok: bool
    reason: str  # what failed, or "checksum, table of contents and row counts match"
    checks: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BackupManifest:
    name: str
    created_at: datetime
    reason: str  # manual, run-start, daily, planned-stop, emergency-stop, pre-restore
    run_id: str | None
    market_time: datetime | None  # the run's market time the backup stands for
    database: str  # URL without the password
    database_name: str
    server_version: str
    schema_version: int
    size: int
    sha256: str
    tables: dict[str, int]  # rows per table, as the dump holds them
    runs: list[dict[str, Any]] = field(default_factory=list)  # run_id, status, last_event_ts
    claire_version: str = ""
    verification: Verification | None = None
    format: int = FORMAT

    @property
    def file_name(self) -> str:
        return self.name + DUMP_SUFFIX

    @property
    def verified(self) -> bool:
        return self.verification is not None and self.verification.ok

    def as_json(self) -> dict[str, Any]:
        return plain_dict(asdict(self))

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> BackupManifest:
        check = body.get("verification")
        return cls(
            name=str(body["name"]),
            created_at=_time(body["created_at"]),
            reason=str(body.get("reason", "")),
            run_id=body.get("run_id"),
            market_time=_time(body["market_time"]) if body.get("market_time") else None,
            database=str(body.get("database", "")),
            database_name=str(body.get("database_name", "")),
            server_version=str(body.get("server_version", "")),
            schema_version=int(body.get("schema_version", 0)),
            size=int(body["size"]),
            sha256=str(body["sha256"]),
            tables={str(k): int(v) for k, v in dict(body.get("tables") or {}).items()},
            runs=list(body.get("runs") or []),
            claire_version=str(body.get("claire_version", "")),
            verification=Verification(
                verified_at=_time(check["verified_at"]),
                ok=bool(check["ok"]),
                reason=str(check.get("reason", "")),
                checks=dict(check.get("checks") or {}),
            )
            if check
            else None,
            format=int(body.get("format", FORMAT)),
        )

    def with_verification(self, verification: Verification) -> BackupManifest:
        return replace(self, verification=verification)


@dataclass(frozen=True, slots=True)
class Backup:
    """A complete backup: its manifest and where its two files are."""

    manifest: BackupManifest
    dump: Path
    manifest_path: Path

    @property
    def name(self) -> str:
        return self.manifest.name


def _time(text: str) -> datetime:
    value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone")
    return value.astimezone(UTC)


def new_name(created_at: datetime, reason: str) -> str:
    tag = "".join(c if c.isalnum() else "-" for c in reason.lower())[:24] or "backup"
    return f"{PREFIX}{created_at:%Y%m%dT%H%M%SZ}-{tag}-{secrets.token_hex(2)}"


class BackupFolder:
    """The backups of a data folder (or of BACKUP_DIR)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def ensure(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.path

    def dump_path(self, name: str) -> Path:
        return self.path / (name + DUMP_SUFFIX)

    def manifest_path(self, name: str) -> Path:
        return self.path / (name + MANIFEST_SUFFIX)

    def read(self, manifest_path: Path) -> Backup:
        try:
            body = json.loads(manifest_path.read_text(encoding="utf-8"))
            manifest = BackupManifest.from_json(body)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BadManifest(
                f"backup manifest {manifest_path} cannot be read ({type(exc).__name__}: {exc}); "
                "move it and its .dump file out of the backup folder."
            ) from None
        return Backup(manifest, manifest_path.with_name(manifest.file_name), manifest_path)

    def backups(self) -> list[Backup]:
        """Every complete backup, oldest first; unreadable manifests are skipped."""
        if not self.path.is_dir():
            return []
        found = []
        for path in self.path.glob(f"{PREFIX}*{MANIFEST_SUFFIX}"):
            try:
                found.append(self.read(path))
            except BadManifest:
                continue
        return sorted(found, key=lambda b: (b.manifest.created_at, b.name))

    def newest(self, verified: bool = False) -> Backup | None:
        chosen = [b for b in self.backups() if b.manifest.verified or not verified]
        return chosen[-1] if chosen else None

    def find(self, name_or_path: str | Path) -> Backup:
        """A backup by name (`claire-...`), by its .dump or .json file, anywhere on disk."""
        text = str(name_or_path)
        path = Path(text)
        if path.suffix in (DUMP_SUFFIX, MANIFEST_SUFFIX) or path.is_file():
            manifest = path.with_suffix(MANIFEST_SUFFIX)
            if not manifest.is_file():
                raise BackupNotFound(
                    f"{path} has no manifest beside it ({manifest.name}); a dump without its "
                    "manifest cannot be checked or restored."
                )
            return self.read(manifest)
        manifest = self.manifest_path(text)
        if not manifest.is_file():
            raise BackupNotFound(
                f"no backup {text} in {self.path}; `claire backup list` shows the backups there."
            )
        return self.read(manifest)

    def leftovers(self) -> list[Path]:
        """Dumps without a manifest and partial files: backups that never completed."""
        if not self.path.is_dir():
            return []
        complete = {b.dump for b in self.backups()}
        out = [p for p in self.path.glob(f"{PREFIX}*{PARTIAL_SUFFIX}")]
        out += [p for p in self.path.glob(f"{PREFIX}*{DUMP_SUFFIX}") if p not in complete]
        return sorted(out)
