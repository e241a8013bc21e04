"""The only module that knows psycopg: the connection pool, sessions and error mapping.

Everything else in the engine passes SQL text (from `.sql` files) and plain
Python values (`str`, `int`, `Decimal`, UTC `datetime`, lists of those) and gets
back `dict` rows. Every psycopg error is turned into a `StoreError` subclass in
`_store_error`, with the password scrubbed from the message.

Sessions are set to UTC, so `timestamptz` values come back as UTC datetimes
whatever the server's own time zone. The pool checks a connection before lending
it, so one the server dropped (a restart, `pg_terminate_backend`) is replaced
instead of failing the next statement.

`external` says whether the URL came from `CLAIRE_POSTGRES_URL`: only then do
error messages send the operator to that setting.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Self

import psycopg
import psycopg.errors
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from engine.errors import StoreError
from engine.runtime.urls import SecretUrl, redact_url, scrub
from engine.store.errors import ConstraintViolation, DatabaseUnavailable, SchemaError

_log = logging.getLogger(__name__)

Params = Mapping[str, Any] | Sequence[Any] | None
Row = dict[str, Any]

# The staging tables each connection holds (see Session.stage), by the table they stage.
_STAGED: weakref.WeakKeyDictionary[psycopg.Connection[Any], set[str]] = weakref.WeakKeyDictionary()


def _store_error(exc: BaseException, url: str, doing: str, external: bool) -> StoreError:
    """One place that decides what a psycopg failure means and what the operator should do."""
    where = redact_url(url)
    setting = " and that CLAIRE_POSTGRES_URL is right" if external else ""
    if isinstance(exc, PoolTimeout):
        return DatabaseUnavailable(
            f"no connection to PostgreSQL at {where} became available while {doing}; check that "
            "the server is running and not overloaded.",
            detail="no connection became available",
        )
    if not isinstance(exc, psycopg.Error):  # pragma: no cover - only psycopg errors come here
        return StoreError(scrub(f"unexpected failure while {doing}: {exc}", url))
    diag = exc.diag
    detail = scrub((diag.message_primary or str(exc)).strip().splitlines()[0], url)
    if isinstance(exc, psycopg.errors.IntegrityError):
        name = diag.constraint_name
        return ConstraintViolation(
            f"the database refused a row while {doing}: {detail}; the data is invalid, so fix "
            "the code or input that produced it rather than retrying.",
            constraint=name,
        )
    if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedFunction):
        names = " and check that CLAIRE_POSTGRES_URL names claire's database" if external else ""
        return SchemaError(
            f"the database schema is incomplete while {doing}: {detail}; apply the migrations "
            f"(Store.open does){names}."
        )
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        who = "the user in CLAIRE_POSTGRES_URL" if external else "claire's database user"
        return StoreError(
            f"PostgreSQL at {where} denied access while {doing}: {detail}; grant {who} "
            "the rights it needs."
        )
    if isinstance(exc, psycopg.errors.DiskFull | psycopg.errors.OutOfMemory):
        return StoreError(
            f"PostgreSQL ran out of resources while {doing}: {detail}; free disk space or memory."
        )
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        # Connection lost, server shutting down or restarting, a cancelled statement,
        # a serialization failure: all worth retrying once the server answers again.
        return DatabaseUnavailable(
            f"cannot reach PostgreSQL at {where} while {doing}: {detail}; check that the server "
            f"is running{setting}.",
            detail=detail,
        )
    return StoreError(
        f"PostgreSQL refused a request while {doing}: {detail}; see the PostgreSQL log for more."
    )


@contextlib.contextmanager
def _mapped(url: str, doing: str, external: bool = False) -> Iterator[None]:
    try:
        yield
    except PoolTimeout:
        # The pool only says it waited in vain; one direct attempt says why.
        try:
            with psycopg.connect(url, connect_timeout=2):
                pass
        except psycopg.Error as reason:
            raise _store_error(reason, url, doing, external) from None
        raise _store_error(PoolTimeout(), url, doing, external) from None
    except psycopg.Error as exc:
        raise _store_error(exc, url, doing, external) from None


class Session:
    """One pooled connection; inside `Database.transaction()` everything commits together."""

    __slots__ = ("_conn", "_external", "_url")

    def __init__(
        self, conn: psycopg.Connection[Row], url: SecretUrl, external: bool = False
    ) -> None:
        self._conn = conn
        self._url = url
        self._external = external

    def execute(self, query: str, params: Params = None) -> int:
        """Run one statement; return the number of rows it changed."""
        with _mapped(self._url, "writing", self._external), self._conn.cursor() as cur:
            cur.execute(query, params)  # SQL comes from our .sql files
            return max(cur.rowcount, 0)

    def stage(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """COPY `rows` into `pg_temp.stage_<table>`: `columns` of `table`, in that order.

        The staging table is this connection's own, made on first use and emptied at
        each commit, so an INSERT ... SELECT from it can skip the keys `table` already
        holds. COPY sends each value through psycopg's compiled dumpers, about three
        times cheaper than arrays of parameters. Use inside `Database.transaction()`.
        """
        staged = _STAGED.setdefault(self._conn, set())
        name = sql.Identifier(f"stage_{table}")
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        with _mapped(self._url, "writing", self._external), self._conn.cursor() as cur:
            if table not in staged:
                cur.execute(
                    sql.SQL(
                        "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS "
                        "SELECT {} FROM {} WITH NO DATA"
                    ).format(name, names, sql.Identifier(table))
                )
                staged.add(table)
            with cur.copy(sql.SQL("COPY pg_temp.{} ({}) FROM STDIN").format(name, names)) as cp:
                for row in rows:
                    cp.write_row(row)

    def fetch_all(self, query: str, params: Params = None) -> list[Row]:
        with _mapped(self._url, "reading", self._external), self._conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def fetch_one(self, query: str, params: Params = None) -> Row | None:
        with _mapped(self._url, "reading", self._external), self._conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchone()

    def run_script(self, script: str) -> None:
        """Several statements at once (a migration); no parameters, so `%` is literal."""
        with _mapped(self._url, "running a script", self._external), self._conn.cursor() as cur:
            cur.execute(script.encode())  # bytes: sent as-is, never treated as a template

    def table_counts(self) -> dict[str, int]:
        """Rows in every table of the public schema (views excluded), by table name."""
        names = [
            r["tablename"]
            for r in self.fetch_all(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        if not names:
            return {}
        parts = [
            sql.SQL("SELECT {} AS name, count(*) AS n FROM public.{}").format(
                sql.Literal(name), sql.Identifier(name)
            )
            for name in names
        ]
        query = sql.SQL(" UNION ALL ").join(parts)
        with _mapped(self._url, "counting rows", self._external), self._conn.cursor() as cur:
            cur.execute(query)
            return {r["name"]: int(r["n"]) for r in cur.fetchall()}


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET TIME ZONE 'UTC'")


class Database:
    """A small pool of connections to one database.

    Opening checks the connection once directly, so a wrong URL or a stopped
    server fails at once with the driver's reason instead of a pool timeout.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        connect_timeout_s: float = 10.0,
        pool_timeout_s: float = 5.0,
        application_name: str = "claire",
        external: bool = False,
    ) -> None:
        self._url = url = SecretUrl(url)  # redacted in tracebacks that show locals
        self._external = external
        self._kwargs: dict[str, Any] = {
            "autocommit": True,  # transactions are explicit, via transaction()
            "row_factory": dict_row,
            "application_name": application_name,
            "connect_timeout": max(1, round(connect_timeout_s)),
        }
        with _mapped(url, "connecting", external), psycopg.connect(url, **self._kwargs):
            pass
        self._pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs=self._kwargs,
            configure=_configure,
            check=ConnectionPool.check_connection,
            # How long a caller waits for a connection when none can be made (the server
            # is down): short, so an outage surfaces quickly and its retries stay on time.
            timeout=pool_timeout_s,
            name="claire",
            open=False,
        )
        with _mapped(url, "opening the connection pool", external):
            self._pool.open(wait=True, timeout=connect_timeout_s)

    @property
    def external(self) -> bool:
        """Whether the database is a server named by a URL, not the data folder's own."""
        return self._external

    @property
    def url(self) -> str:
        return self._url

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database(url={redact_url(self._url)!r})"

    @contextlib.contextmanager
    def session(self, timeout_s: float | None = None) -> Iterator[Session]:
        """A connection in autocommit mode: each statement stands alone.

        `timeout_s`: how long to wait for a connection (default: the pool's), for callers
        that would rather skip a turn than wait out an outage.
        """
        with (
            _mapped(self._url, "getting a connection", self._external),
            self._pool.connection(timeout=timeout_s) as conn,
        ):
            yield Session(conn, self._url, self._external)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """All statements commit together, or none do (on any exception)."""
        with (
            _mapped(self._url, "running a transaction", self._external),
            self._pool.connection() as conn,
        ):
            try:
                with conn.transaction():
                    yield Session(conn, self._url, self._external)
            except BaseException:
                _STAGED.pop(conn, None)  # staging tables made in it are rolled back too
                raise

    def execute(self, query: str, params: Params = None) -> int:
        with self.session() as s:
            return s.execute(query, params)

    def fetch_all(self, query: str, params: Params = None) -> list[Row]:
        with self.session() as s:
            return s.fetch_all(query, params)

    def fetch_one(self, query: str, params: Params = None) -> Row | None:
        with self.session() as s:
            return s.fetch_one(query, params)

    # --- databases (test templates, backup verification) -----------------------

    def create_database(
        self, name: str, template: str | None = None, *, file_copy: bool = False
    ) -> None:
        """CREATE DATABASE, optionally from a template.

        `file_copy` copies files instead of WAL-logging every block: several times
        faster for small templates, at the cost of two checkpoints (fine in tests).
        """
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        if file_copy:
            stmt += sql.SQL(" STRATEGY FILE_COPY")
        with (
            _mapped(self._url, f"creating database {name}", self._external),
            self._pool.connection() as conn,
        ):
            conn.execute(stmt)

    def drop_database(self, name: str) -> None:
        stmt = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        with (
            _mapped(self._url, f"dropping database {name}", self._external),
            self._pool.connection() as conn,
        ):
            conn.execute(stmt)

    def rename_database(self, name: str, new_name: str) -> None:
        """ALTER DATABASE ... RENAME, after closing every other session on it."""
        stmt = sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
            sql.Identifier(name), sql.Identifier(new_name)
        )
        with (
            _mapped(self._url, f"renaming database {name}", self._external),
            self._pool.connection() as conn,
        ):
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(stmt)

    def database_exists(self, name: str) -> bool:
        row = self.fetch_one("SELECT 1 AS found FROM pg_database WHERE datname = %s", (name,))
        return row is not None

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[tuple[Session, str]]:
        """A read-only repeatable-read transaction on a connection of its own, and the id
        of its exported snapshot: `pg_dump --snapshot=ID` then sees exactly what this
        session sees, for as long as the block lasts. Outside the pool, so a long dump
        never holds one of the run's connections."""
        with _mapped(self._url, "exporting a snapshot", self._external):
            conn = psycopg.connect(self._url, **self._kwargs)
        try:
            _configure(conn)
            with (
                _mapped(self._url, "exporting a snapshot", self._external),
                conn.transaction(),
            ):
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                row = conn.execute("SELECT pg_export_snapshot() AS id").fetchone()
                assert row is not None
                yield Session(conn, self._url, self._external), str(row["id"])
        finally:
            conn.close()
