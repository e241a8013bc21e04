"""Migrations: applied once, recorded, upgraded from older versions, guarded against edits."""

from __future__ import annotations

import threading

import pytest

from engine.store import Database, SchemaError, latest_version, migrate, schema_version
from engine.store.schema import Migration, packaged_migrations, parse_migrations

pytestmark = pytest.mark.integration


def _recorded(db: Database) -> list[dict[str, object]]:
    return db.fetch_all("SELECT * FROM schema_migrations ORDER BY version")


def _tables(db: Database) -> set[str]:
    rows = db.fetch_all(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    return {r["table_name"] for r in rows}


def test_migrate_on_empty_database_applies_all_and_records_them(empty_db_url: str) -> None:
    with Database(empty_db_url) as db:
        assert schema_version(db) == 0

        applied = migrate(db)

        assert applied == [m.version for m in packaged_migrations()]
        assert schema_version(db) == latest_version() >= 2
        recorded = _recorded(db)
        assert [(r["version"], r["name"]) for r in recorded] == [
            (m.version, m.name) for m in packaged_migrations()
        ]
        assert all(
            r["checksum"] == m.checksum
            for r, m in zip(recorded, packaged_migrations(), strict=True)
        )
        assert {"runs", "trades", "orders", "signals", "positions", "incidents"} <= _tables(db)


def test_migrate_twice_is_a_no_op(empty_db_url: str) -> None:
    with Database(empty_db_url) as db:
        migrate(db)
        before = _recorded(db)

        assert migrate(db) == []

        assert _recorded(db) == before  # same rows, same applied_at


def test_older_database_upgrades_and_keeps_its_rows(empty_db_url: str) -> None:
    with Database(empty_db_url) as db:
        assert migrate(db, target=1) == [1]
        db.execute(
            "INSERT INTO runs (run_id, data_source, started_at) VALUES ('r1', 'replay', now())"
        )
        assert "trade_summary" not in _views(db)

        assert migrate(db) == list(range(2, latest_version() + 1))

        assert schema_version(db) == latest_version()
        assert db.fetch_one("SELECT run_id FROM runs") == {"run_id": "r1"}
        assert {"order_status", "latest_positions", "trade_summary"} <= _views(db)


def _views(db: Database) -> set[str]:
    rows = db.fetch_all(
        "SELECT table_name FROM information_schema.views WHERE table_schema = 'public'"
    )
    return {r["table_name"] for r in rows}


def test_migrate_when_applied_migration_was_edited_refuses(empty_db_url: str) -> None:
    edited = tuple(
        Migration(m.version, m.name, m.sql + "\n-- edited\n") if m.version == 1 else m
        for m in packaged_migrations()
    )
    with Database(empty_db_url) as db:
        migrate(db)

        with pytest.raises(SchemaError, match="0001_initial changed after it was applied"):
            migrate(db, migrations=edited)


def test_migrate_when_database_is_newer_than_code_refuses(empty_db_url: str) -> None:
    with Database(empty_db_url) as db:
        migrate(db)
        db.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (99, 'x', 'y')")

        with pytest.raises(SchemaError, match="schema version 99, newer than this claire"):
            migrate(db)


def test_failing_migration_rolls_back_everything_pending(empty_db_url: str) -> None:
    broken = (*packaged_migrations(), Migration(latest_version() + 1, "broken", "SELECT 1/0;"))
    with Database(empty_db_url) as db:
        migrate(db, target=1)

        with pytest.raises(SchemaError.__mro__[1], match="division by zero"):
            migrate(db, migrations=broken)

        assert schema_version(db) == 1  # 0002 ran in the same transaction and was undone too
        assert "trade_summary" not in _views(db)


def test_concurrent_migrations_apply_once(empty_db_url: str) -> None:
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with Database(empty_db_url) as db:
                results.append(migrate(db))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sorted(results, key=len) == [[], [], list(range(1, latest_version() + 1))]


def test_parse_migrations_refuses_gaps_and_duplicates() -> None:
    with pytest.raises(SchemaError, match="0002 is missing"):
        parse_migrations({"0001_a.sql": "", "0003_c.sql": ""})
    with pytest.raises(SchemaError, match="two migrations have version 0001"):
        parse_migrations({"0001_a.sql": "", "0001_b.sql": ""})
    assert parse_migrations({"README.md": "", "0001_a.sql": "x"}) == (Migration(1, "a", "x"),)
