"""Read commands open the data that is there, and never make a database where none was.

`papertest status`, `report`, `export` and `db` read; a mistyped `--data-dir`
must say so, not initialise an empty database in the wrong folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.config import Settings
from engine.errors import ClaireError
from engine.home.folder import resolve_data_dir
from engine.runtime.paths import PGDATA
from engine.runtime.urls import redact_url

if TYPE_CHECKING:
    from engine.store import Store


class NoDataError(ClaireError):
    pass


class RunNotFound(ClaireError):
    pass


@dataclass(frozen=True)
class RunData:
    """An open store and where it is, in words for messages."""

    store: Store
    database: str  # redacted URL
    folder: Path
    where: str  # the data folder, or the external database's redacted URL

    def run_id(self, run_id: str | None) -> str:
        """`run_id` if the data holds it, else the newest run; a clear error otherwise."""
        if run_id:
            if self.store.get_run(run_id) is None:
                raise RunNotFound(
                    f"no run {run_id} in {self.where}; `claire papertest status` lists the runs "
                    "there."
                )
            return run_id
        row = self.store.db.fetch_one(self.store.queries["latest_run_id"])
        if row is None:
            raise RunNotFound(
                f"no run in {self.where} yet; start one with `claire papertest start`."
            )
        return str(row["run_id"])


def has_claire_data(folder: Path) -> bool:
    """Whether `folder` holds a database that claire made (an initialised cluster)."""
    return (Path(folder) / PGDATA / "PG_VERSION").is_file()


@contextmanager
def open_data(settings: Settings, data_dir: Path | str | None) -> Iterator[RunData]:
    """The data folder's database, if it has one; `NoDataError` otherwise."""
    folder = resolve_data_dir(data_dir, settings)
    external = settings.claire_postgres_url
    if external is None and not has_claire_data(folder):
        raise NoDataError(
            f"no Claire data in {folder}; check --data-dir (or CLAIRE_HOME), or start a run "
            "there with `claire papertest start`."
        )
    from engine.home.database import open_store  # the database's machinery, once there is one

    where = redact_url(external.get_secret_value()) if external is not None else str(folder)
    with open_store(settings, folder) as (store, database):
        yield RunData(store, database, folder, where)
