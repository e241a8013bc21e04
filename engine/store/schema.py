"""Numbered SQL migrations, applied at start and recorded in `schema_migrations`.

Files are `engine/store/migrations/NNNN_name.sql`. All pending ones run in one
transaction under an advisory lock, so two processes starting at once apply
them once, and a failure leaves the schema as it was. Applied migrations are
checked against their recorded checksum: editing one after release is refused
(add a new migration instead), and so is a database newer than this code.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

from engine.store.db import Database, Session
from engine.store.errors import SchemaError
from engine.store.queries import load_queries

_log = logging.getLogger(__name__)

_FILE_NAME: Final = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works as long as every claire uses the same one: "claire-migrations" as int64.
ADVISORY_LOCK_KEY: Final = int.from_bytes(
    hashlib.sha256(b"claire-migrations").digest()[:8], "big", signed=True
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def parse_migrations(files: dict[str, str]) -> tuple[Migration, ...]:
    """Migrations from {file name: SQL}, in version order; gaps and duplicates are refused."""
    found: dict[int, Migration] = {}
    for file_name, text in files.items():
        match = _FILE_NAME.match(file_name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise SchemaError(f"two migrations have version {version:04d}; renumber one.")
        found[version] = Migration(version, match.group(2), text)
    ordered = tuple(found[v] for v in sorted(found))
    for expected, migration in enumerate(ordered, start=1):
        if migration.version != expected:
            raise SchemaError(
                f"migration {expected:04d} is missing; migrations must be numbered 1, 2, 3..."
            )
    return ordered


@cache
def packaged_migrations() -> tuple[Migration, ...]:
    folder = resources.files("engine.store").joinpath("migrations")
    files = {
        f.name: f.read_text(encoding="utf-8") for f in folder.iterdir() if f.name.endswith(".sql")
    }
    return parse_migrations(files)


def latest_version(migrations: tuple[Migration, ...] | None = None) -> int:
    chosen = packaged_migrations() if migrations is None else migrations
    return chosen[-1].version if chosen else 0


def _applied(session: Session) -> dict[int, str]:
    rows = session.fetch_all(load_queries()["applied_migrations"])
    return {int(r["version"]): str(r["checksum"]) for r in rows}


def schema_version(db: Database) -> int:
    """The highest applied version, 0 for an empty database."""
    queries = load_queries()
    present = db.fetch_one(queries["has_schema_migrations"])
    if not present or not present["present"]:
        return 0
    row = db.fetch_one(queries["schema_version"])
    return int(row["version"]) if row else 0


def migrate(
    db: Database, *, target: int | None = None, migrations: tuple[Migration, ...] | None = None
) -> list[int]:
    """Apply pending migrations up to `target` (default: all); return the versions applied."""
    chosen = packaged_migrations() if migrations is None else migrations
    known = {m.version: m for m in chosen}
    goal = latest_version(chosen) if target is None else target
    queries = load_queries()
    with db.transaction() as tx:
        tx.execute(queries["lock_migrations"], {"key": ADVISORY_LOCK_KEY})
        tx.execute(queries["create_schema_migrations"])
        applied = _applied(tx)
        for version, checksum in applied.items():
            migration = known.get(version)
            if migration is None:
                raise SchemaError(
                    f"the database has schema version {version}, newer than this claire knows "
                    f"({latest_version(chosen)}); upgrade claire or point it at another database."
                )
            if migration.checksum != checksum:
                raise SchemaError(
                    f"migration {version:04d}_{migration.name} changed after it was applied; "
                    "restore the released file and put the change in a new migration."
                )
        done = []
        for migration in chosen:
            if migration.version in applied or migration.version > goal:
                continue
            _log.info(
                "applying migration",
                extra={
                    "event": "migration_apply",
                    "version": migration.version,
                    "migration": migration.name,
                },
            )
            tx.run_script(migration.sql)
            tx.execute(
                queries["record_migration"],
                {
                    "version": migration.version,
                    "name": migration.name,
                    "checksum": migration.checksum,
                },
            )
            done.append(migration.version)
    return done
