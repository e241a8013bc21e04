"""Secrets masked out of text: the values of the secret settings, the passwords in
their URLs, and any extra value a caller names (a notification token)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Final

from pydantic import SecretStr

from engine.config import Settings

MASK: Final = "**********"
# Attributes every LogRecord has; anything else was passed in `extra` and is masked too.
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("x", 0, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


def secret_values(settings: Settings, extra: Iterable[str] = ()) -> list[str]:
    """Every secret setting's value, and its password if it is a URL; longest first."""
    from engine.runtime.urls import password_of

    out: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            text = value.get_secret_value()
            out.add(text)
            password = password_of(text) if "://" in text else None
            if password:
                out.add(password)
    out.update(e for e in extra if e)
    return sorted((s for s in out if len(s) >= 4), key=len, reverse=True)


class Redactor(logging.Filter):
    """Masks secrets in a record before any handler formats it."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        record.exc_info = None  # the masked text replaces the live traceback
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.scrub(value))
        return True


@contextmanager
def masked(settings: Settings, extra_secrets: Iterable[str] = ()) -> Iterator[None]:
    """Secrets masked on every handler for a while, without a log file (a short command)."""
    redactor = Redactor(secret_values(settings, extra_secrets))
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(redactor)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(redactor)


__all__ = ["MASK", "Redactor", "masked", "secret_values"]
