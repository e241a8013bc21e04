"""Create, verify, restore and prune backups of a claire database.

Create: a repeatable-read transaction exports its snapshot, counts every table's
rows in it, and `pg_dump --snapshot` dumps exactly what was counted; the dump is
checksummed and its manifest written last. `begin()` (export and hold the
snapshot) is instant, so a run takes it between two market events and lets the
slow part, `complete()`, run in the background while trading goes on.

Verify, at five levels: the file's size and sha256 against the manifest; the
dump's table of contents (`pg_restore --list`); a restore into a scratch database
(`--exit-on-error --single-transaction`); and the row count of every table
there against the manifest. The result is written into the manifest.

Restore: into a new database of the same server, or in place: the dump is
restored into a staging database and checked first; only then is the current
database renamed away (kept, when it holds runs) and the staging one renamed in.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from engine.clock import Clock, WallClock
from engine.errors import ClaireError, StoreError
from engine.ops.backups.manifest import (
    Backup,
    BackupFolder,
    BackupManifest,
    Verification,
    new_name,
)
from engine.ops.backups.pgtools import BackupToolError, PgTools
from engine.ops.backups.retention import Decision, plan_prune
from engine.runtime.files import PARTIAL_SUFFIX, write_json
from engine.runtime.urls import redact_url, with_database
from engine.store import Database, Session

log = logging.getLogger("claire.backup")


class BackupError(ClaireError):
    pass


@dataclass(frozen=True, slots=True)
class RestoreResult:
    backup: str
    database: str  # the database now holding the backup's data
    previous: str | None  # where the database it replaced was kept, if it was
    tables: dict[str, int]
    runs: list[dict[str, Any]]


def claire_version() -> str:
    try:
        return version("claire-de-binare")
    except PackageNotFoundError:
        return "unknown"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _server(session: Session) -> dict[str, Any]:
    row = session.fetch_one(
        "SELECT current_database() AS database, current_setting('server_version') AS version, "
        "current_setting('server_version_num')::int AS num, "
        "to_regclass('schema_migrations') IS NOT NULL AS migrated, "
        "to_regclass('runs') IS NOT NULL AS has_runs"
    )
    assert row is not None
    return row


def _runs(session: Session, info: dict[str, Any]) -> list[dict[str, Any]]:
    if not info["has_runs"]:
        return []
    rows = session.fetch_all(
        "SELECT run_id, status, last_event_ts FROM runs ORDER BY started_at, run_id"
    )
    return [dict(r) for r in rows]


def _schema(session: Session, info: dict[str, Any]) -> int:
    if not info["migrated"]:
        return 0
    row = session.fetch_one("SELECT coalesce(max(version), 0) AS v FROM schema_migrations")
    return int(row["v"]) if row else 0


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PendingBackup:
    """A snapshot exported and held; `complete()` dumps it (from any one thread)."""

    def __init__(
        self,
        backups: Backups,
        db: Database,
        reason: str,
        run_id: str | None,
        market_time: datetime | None,
    ) -> None:
        self._backups = backups
        self._url = db.url
        self.reason = reason
        self.run_id = run_id
        self.market_time = market_time
        self.created_at = backups.clock.now()
        self.name = new_name(self.created_at, reason)
        self._stack = ExitStack()
        self._session, self._snapshot = self._stack.enter_context(db.snapshot())

    def complete(self) -> Backup:
        folder = self._backups.folder
        partial = folder.path / (self.name + ".dump" + PARTIAL_SUFFIX)
        dump = folder.dump_path(self.name)
        try:
            with self._stack:
                session = self._session
                info = _server(session)
                tables = session.table_counts()
                runs = _runs(session, info)
                schema = _schema(session, info)
                tools = PgTools.for_server(int(info["num"]) // 10000)
                folder.ensure()
                tools.dump(self._url, partial, self._snapshot)
            _fsync(partial)
            size = partial.stat().st_size
            digest = sha256_of(partial)
            os.replace(partial, dump)
            manifest = BackupManifest(
                name=self.name,
                created_at=self.created_at,
                reason=self.reason,
                run_id=self.run_id,
                market_time=self.market_time,
                database=redact_url(with_database(self._url, str(info["database"]))),
                database_name=str(info["database"]),
                server_version=str(info["version"]),
                schema_version=schema,
                size=size,
                sha256=digest,
                tables=tables,
                runs=runs,
                claire_version=claire_version(),
            )
            path = folder.manifest_path(self.name)
            write_json(path, manifest.as_json())
        except BaseException:
            for leftover in (partial, dump):
                leftover.unlink(missing_ok=True)
            raise
        log.info(
            "backup written",
            extra={"event": "backup_written", "backup": self.name, "reason": self.reason},
        )
        return Backup(manifest, dump, path)

    def abandon(self) -> None:
        self._stack.close()


class Backups:
    """The backups of one backup folder, made from and restored to one server."""

    def __init__(self, folder: BackupFolder | Path, clock: Clock | None = None) -> None:
        self.folder = folder if isinstance(folder, BackupFolder) else BackupFolder(folder)
        self.clock = clock or WallClock()

    # --- create ----------------------------------------------------------------------

    def begin(
        self,
        db: Database,
        reason: str,
        run_id: str | None = None,
        market_time: datetime | None = None,
    ) -> PendingBackup:
        return PendingBackup(self, db, reason, run_id, market_time)

    def create(
        self,
        db: Database,
        reason: str = "manual",
        run_id: str | None = None,
        market_time: datetime | None = None,
    ) -> Backup:
        return self.begin(db, reason, run_id, market_time).complete()

    # --- verify ------------------------------------------------------------------------

    def check_file(self, backup: Backup) -> str | None:
        """Why the dump does not match its manifest, or None when it does."""
        m = backup.manifest
        if not backup.dump.is_file():
            return f"the dump {backup.dump} is missing"
        size = backup.dump.stat().st_size
        if size != m.size:
            return (
                f"the dump is {size:,} bytes, the manifest says {m.size:,}: it was cut short "
                "or changed after it was written"
            )
        digest = sha256_of(backup.dump)
        if digest != m.sha256:
            return (
                f"the dump's sha256 is {digest[:16]}..., the manifest says {m.sha256[:16]}...: "
                "it was damaged or changed after it was written"
            )
        return None

    def verify(self, backup: Backup, db: Database) -> Verification:
        """Check the backup at every level and record the outcome in its manifest."""
        checks: dict[str, Any] = {}
        reason = self.check_file(backup)
        checks["checksum"] = reason is None
        if reason is None:
            tools = PgTools.for_server(_server_major(db))
            try:
                checks["toc_entries"] = len(tools.table_of_contents(backup.dump))
            except BackupToolError as exc:
                reason = f"pg_restore cannot read the dump's table of contents ({exc})"
        if reason is None:
            try:
                restored = self._restore_counts(backup, db, tools, "claire_verify")
            except (BackupToolError, StoreError) as exc:
                reason = f"the restore into a scratch database failed ({exc})"
            else:
                checks["tables"] = len(restored)
                checks["rows"] = sum(restored.values())
                reason = _count_mismatch(backup.manifest.tables, restored)
        ok = reason is None
        verification = Verification(
            verified_at=self.clock.now(),
            ok=ok,
            reason=reason or "checksum, table of contents and row counts match",
            checks=checks,
        )
        with contextlib.suppress(OSError):  # a read-only folder still gets the answer
            checked = backup.manifest.with_verification(verification)
            write_json(backup.manifest_path, checked.as_json())
        return verification

    def _restore_counts(
        self, backup: Backup, db: Database, tools: PgTools, prefix: str
    ) -> dict[str, int]:
        scratch = f"{prefix}_{secrets.token_hex(4)}"
        db.create_database(scratch)
        try:
            url = with_database(db.url, scratch)
            tools.restore(backup.dump, url)
            with Database(url, min_size=1, max_size=1) as restored, restored.session() as s:
                return s.table_counts()
        finally:
            db.drop_database(scratch)

    # --- restore ------------------------------------------------------------------------

    def restore(
        self,
        backup: Backup,
        admin: Database,
        target: str,
        *,
        in_place: bool,
        stamp: Callable[[], str] | None = None,
    ) -> RestoreResult:
        """Restore into `target` on `admin`'s server (`admin` must not be connected to it).

        `in_place`: `target` is replaced; its old content is kept as
        `<target>_before_restore_<time>` when it holds runs. Otherwise `target` must be new.
        """
        reason = self.check_file(backup)
        if reason is not None:
            raise BackupError(f"backup {backup.name} is damaged: {reason}; choose another one.")
        exists = admin.database_exists(target)
        if exists and not in_place:
            raise BackupError(
                f"database {target} exists already; name a new one, or restore in place."
            )
        tools = PgTools.for_server(_server_major(admin))
        staging = f"claire_restore_{secrets.token_hex(4)}"
        admin.create_database(staging)
        try:
            url = with_database(admin.url, staging)
            tools.restore(backup.dump, url)
            with Database(url, min_size=1, max_size=1) as restored, restored.session() as s:
                tables = s.table_counts()
                runs = _runs(s, _server(s))
            mismatch = _count_mismatch(backup.manifest.tables, tables)
            if mismatch is not None:
                raise BackupError(f"backup {backup.name} did not restore whole: {mismatch}.")
            previous = None
            if exists:
                if _holds_runs(admin, target):
                    now = (stamp or (lambda: f"{self.clock.now():%Y%m%d%H%M%S}"))()
                    previous = f"{target}_before_restore_{now}"[:63]
                    admin.rename_database(target, previous)
                else:
                    admin.drop_database(target)
            admin.rename_database(staging, target)
        except BaseException:
            with contextlib.suppress(ClaireError):
                admin.drop_database(staging)
            raise
        return RestoreResult(backup.name, target, previous, tables, runs)

    # --- prune ---------------------------------------------------------------------------

    def prune(self, retention_days: int, dry_run: bool = False) -> list[Decision]:
        backups = {b.name: b for b in self.folder.backups()}
        decisions = plan_prune([b.manifest for b in backups.values()], self.clock.now(),
                               retention_days)  # fmt: skip
        if not dry_run:
            for decision in decisions:
                if not decision.keep:
                    found = backups[decision.name]
                    found.dump.unlink(missing_ok=True)
                    found.manifest_path.unlink(missing_ok=True)
        return decisions


def _server_major(db: Database) -> int:
    row = db.fetch_one("SELECT current_setting('server_version_num')::int AS num")
    return int(row["num"]) // 10000 if row else 0


def _holds_runs(admin: Database, name: str) -> bool:
    with Database(with_database(admin.url, name), min_size=1, max_size=1) as db:
        row = db.fetch_one("SELECT to_regclass('runs') IS NOT NULL AS present")
        if not row or not row["present"]:
            return False
        found = db.fetch_one("SELECT count(*) AS n FROM runs")
        return bool(found and found["n"])


def _count_mismatch(expected: dict[str, int], found: dict[str, int]) -> str | None:
    if expected == found:
        return None
    problems = []
    for table in sorted(set(expected) | set(found)):
        want, got = expected.get(table), found.get(table)
        if want != got:
            problems.append(f"{table} {got if got is not None else 'missing'} rows, "
                            f"manifest {want if want is not None else 'none'}")  # fmt: skip
    return "row counts differ from the manifest: " + "; ".join(problems[:5])
