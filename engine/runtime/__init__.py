"""Servers the engine runs for itself: the embedded PostgreSQL, or a URL to someone else's.

postgres_service()  -> EmbeddedPostgres | ExternalPostgres   (CLAIRE_POSTGRES_URL wins)
default_data_dir()  -> CLAIRE_HOME or the platform's user data folder
redact_url()        -> a URL with its password masked, for logs and errors

Each name is imported from its module when first asked for, so a command that only
needs a path does not load the server's machinery (psutil, subprocess handling).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.runtime.paths import default_data_dir, postgres_bin_dir, postgres_program
    from engine.runtime.postgres import EmbeddedPostgres
    from engine.runtime.service import ExternalPostgres, PostgresService, postgres_service
    from engine.runtime.urls import redact_url, scrub, with_database

_HOME = {
    "default_data_dir": "paths",
    "postgres_bin_dir": "paths",
    "postgres_program": "paths",
    "EmbeddedPostgres": "postgres",
    "ExternalPostgres": "service",
    "PostgresService": "service",
    "postgres_service": "service",
    "redact_url": "urls",
    "scrub": "urls",
    "with_database": "urls",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"engine.runtime.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "EmbeddedPostgres",
    "ExternalPostgres",
    "PostgresService",
    "default_data_dir",
    "postgres_bin_dir",
    "postgres_program",
    "postgres_service",
    "redact_url",
    "scrub",
    "with_database",
]
