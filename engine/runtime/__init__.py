"""Servers the engine runs for itself: the embedded PostgreSQL, or a URL to someone else's.

postgres_service()  -> EmbeddedPostgres | ExternalPostgres   (CLAIRE_POSTGRES_URL wins)
default_data_dir()  -> CLAIRE_HOME or the platform's user data folder
redact_url()        -> a URL with its password masked, for logs and errors
"""

from engine.runtime.paths import default_data_dir, postgres_bin_dir, postgres_program
from engine.runtime.postgres import EmbeddedPostgres
from engine.runtime.service import ExternalPostgres, PostgresService, postgres_service
from engine.runtime.urls import redact_url, scrub, with_database

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
