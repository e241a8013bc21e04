"""One embedded PostgreSQL per test session; a fresh database per test from a template.

The server starts once (about a second), the template database is migrated once,
and every test gets `CREATE DATABASE test_N TEMPLATE claire_template` (about
15 ms with FILE_COPY and fsync off), so tests never see each other's rows.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.runtime import EmbeddedPostgres, with_database
from engine.store import Database, Store, migrate
from tests.store.factories import RUN_ID, T0

TEMPLATE = "claire_template"
# Durability is not what these tests check; without fsync they run several times faster.
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

_numbers = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    # mkdtemp under /tmp, not pytest's tmp_path: the path stays short enough for a
    # Unix socket, and as root the server's account must be able to enter it.
    base = Path(tempfile.mkdtemp(prefix="claire-pg-"))
    os.chmod(base, 0o711)
    server = EmbeddedPostgres(base, settings=FAST_SETTINGS)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin(pg_server: EmbeddedPostgres) -> Iterator[Database]:
    with Database(with_database(pg_server.url, "postgres")) as admin:
        yield admin


@pytest.fixture(scope="session")
def template_db(pg_server: EmbeddedPostgres, pg_admin: Database) -> str:
    pg_admin.create_database(TEMPLATE)
    with Database(with_database(pg_server.url, TEMPLATE)) as db:
        migrate(db)
    return TEMPLATE


def _fresh_database(
    pg_server: EmbeddedPostgres, pg_admin: Database, template: str
) -> Iterator[str]:
    name = f"test_{os.getpid()}_{next(_numbers)}"
    pg_admin.create_database(name, template, file_copy=True)
    try:
        yield with_database(pg_server.url, name)
    finally:
        pg_admin.drop_database(name)


@pytest.fixture
def db_url(pg_server: EmbeddedPostgres, pg_admin: Database, template_db: str) -> Iterator[str]:
    """A migrated database of this test's own."""
    yield from _fresh_database(pg_server, pg_admin, template_db)


@pytest.fixture
def empty_db_url(pg_server: EmbeddedPostgres, pg_admin: Database) -> Iterator[str]:
    """A database without any of claire's schema, for migration tests."""
    yield from _fresh_database(pg_server, pg_admin, "template0")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url, migrate=False) as opened:
        yield opened


@pytest.fixture
def run_id(store: Store) -> str:
    store.create_run(RUN_ID, config={}, data_source="replay:test", started_at=T0)
    return RUN_ID


@pytest.fixture(scope="module")
def shared_store(
    pg_server: EmbeddedPostgres, pg_admin: Database, template_db: str
) -> Iterator[Store]:
    """One migrated database (with run RUN_ID) for a module's tests that write nothing.

    For tests that prove something is refused: each creating its own database
    would cost far more than the test itself.
    """
    for url in _fresh_database(pg_server, pg_admin, template_db):
        with Store.open(url, migrate=False) as opened:
            opened.create_run(RUN_ID, config={}, data_source="replay:test", started_at=T0)
            yield opened
