"""Whether a run is attended: something runs it and takes its operator commands.

A run on this machine is attended while a process holds its lock (engine.home.lock).
A run recorded in another database (a stack's, or a server named by
`CLAIRE_POSTGRES_URL`) may run elsewhere: it is attended while its steward beats in
that database (`run_stewards`, engine.run.stack_steward), by the database's clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from engine.home.lock import run_is_alive
from engine.store import Store

STEWARD_ALIVE_S: Final = 30.0  # a steward that beat this recently takes commands


def run_attended(store: Store, data_dir: Path, run_id: str) -> bool:
    """Whether something runs the run and takes its commands: a process on this machine
    that holds it, or (a run in another database) its steward, beating."""
    if run_is_alive(data_dir, run_id):
        return True
    return store.db.external and store.steward_alive(run_id, STEWARD_ALIVE_S)


__all__ = ["STEWARD_ALIVE_S", "run_attended"]
