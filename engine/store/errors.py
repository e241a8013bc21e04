"""The store's refinements of `StoreError`, so callers can react without knowing psycopg.

StoreError                  (engine.errors) anything the database refused or could not do
 +-- DatabaseUnavailable    cannot connect, or the connection broke: retry later
 +-- ConstraintViolation    a row broke a CHECK, key or NOT NULL: the data is wrong, do not retry
 +-- SchemaError            the schema is missing, newer than this code, or its migrations changed
"""

from __future__ import annotations

from engine.errors import StoreError


class DatabaseUnavailable(StoreError):
    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail  # the driver's reason alone, like "terminating connection ..."


class ConstraintViolation(StoreError):
    def __init__(self, message: str, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class SchemaError(StoreError):
    pass
