"""PostgreSQL persistence: schema migrations, named queries, the store and the event writer.

    Store.open(url)             connect, migrate, run-level operations (runs, resume, incidents)
    EventWriter(store, run_id)  batches of events into their tables, idempotently
    Database                    the pool; the only code that imports psycopg (engine/store/db.py)

SQL lives in `migrations/NNNN_name.sql` and `queries.sql`.
"""

from engine.store.db import Database, Session
from engine.store.errors import ConstraintViolation, DatabaseUnavailable, SchemaError
from engine.store.queries import load_queries
from engine.store.runs import (
    Checkpoint,
    Cursor,
    ResumePoint,
    RunRecord,
    RunStatus,
    redact_config,
)
from engine.store.schema import latest_version, migrate, schema_version
from engine.store.store import Store
from engine.store.writer import EventWriter

__all__ = [
    "Checkpoint",
    "ConstraintViolation",
    "Cursor",
    "Database",
    "DatabaseUnavailable",
    "EventWriter",
    "ResumePoint",
    "RunRecord",
    "RunStatus",
    "SchemaError",
    "Session",
    "Store",
    "latest_version",
    "load_queries",
    "migrate",
    "redact_config",
    "schema_version",
]
