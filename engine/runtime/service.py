"""One way to get a PostgreSQL URL, embedded or not.

`CLAIRE_POSTGRES_URL` (or an explicit `url`) points the same code at any other
PostgreSQL; otherwise an embedded server runs in the data folder. Callers use
the result the same way in both cases:

    with postgres_service() as pg:
        store = Store.open(pg.url)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from engine.runtime.paths import default_data_dir
from engine.runtime.postgres import EmbeddedPostgres
from engine.runtime.urls import SecretUrl, redact_url


class PostgresService(Protocol):
    """What the engine needs from a PostgreSQL, wherever it runs."""

    @property
    def url(self) -> str: ...

    def start(self) -> str: ...

    def stop(self, timeout_s: float | None = None) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class ExternalPostgres:
    """A server someone else runs: nothing to start or stop, only a URL to keep quiet about."""

    __slots__ = ("_url",)

    def __init__(self, url: str) -> None:
        self._url = SecretUrl(url)

    @property
    def url(self) -> str:
        return self._url

    def start(self) -> str:
        return self._url

    def stop(self, timeout_s: float | None = None) -> None:
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __repr__(self) -> str:
        return f"ExternalPostgres(url={redact_url(self._url)!r})"


def postgres_service(
    *,
    url: str | None = None,
    data_dir: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    **embedded: Any,
) -> PostgresService:
    """`url`, else `CLAIRE_POSTGRES_URL`, else an embedded server in the data folder.

    `embedded` keywords go to `EmbeddedPostgres` (database, listen, settings, run_as, ...).
    """
    env = os.environ if environ is None else environ
    chosen = url or env.get("CLAIRE_POSTGRES_URL") or None
    if chosen:
        return ExternalPostgres(chosen)
    return EmbeddedPostgres(default_data_dir(data_dir, env), **embedded)
