"""The data folder's database: the embedded server shared by the folder's processes,
or CLAIRE_POSTGRES_URL, opened and migrated."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.config import Settings
from engine.home.folder import resolve_data_dir
from engine.runtime import postgres_service, redact_url
from engine.store import Store


@contextmanager
def open_store(settings: Settings, data_dir: Path | str | None) -> Iterator[tuple[Store, str]]:
    """The data folder's database (embedded, or CLAIRE_POSTGRES_URL), open and migrated."""
    url = settings.claire_postgres_url
    folder = resolve_data_dir(data_dir, settings)
    # The embedded server is shared by every claire process of the folder: this one
    # joins it (or starts it) and the last one to leave stops it.
    service = postgres_service(url=url.get_secret_value() if url else None, data_dir=folder)
    with service:
        store = Store.open(service.url, external=url is not None)
        try:
            yield store, redact_url(service.url)
        finally:
            store.close()


__all__ = ["open_store"]
