"""What attends a run between its market events: the operator's commands and the
run's duties (engine.run.steward), made once the run is held."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from engine.events import MarketData
from engine.kernel.persisted import PersistedRun
from engine.store import Store


class RunAttendant(Protocol):
    """What attends a persisted run between its market events (engine.ops: operator
    commands through the control channel, backups); made once the run is held."""

    def between(self) -> None:
        """Between two groups of market events; may raise OperatorStop."""

    def pace(self, sleep: Callable[[float], None]) -> Callable[[float], None]:
        """The wait of a paced replay, wrapped so that commands are seen while waiting."""
        ...

    def close(self) -> None:
        """After the run's end is recorded, or it failed: finish what was begun; never raises."""

    def problems(self) -> list[str]:
        """What failed in the background (backups, the stop's report), one sentence each."""
        ...


Attend = Callable[[Store, PersistedRun], RunAttendant]


def nothing() -> None:
    return None


def attended(
    process: Callable[[MarketData], None], attendant: RunAttendant | None
) -> Callable[[MarketData], None]:
    """A live run's per-event step, with the attendant's turn before each event."""
    if attendant is None:
        return process

    def step(event: MarketData) -> None:
        attendant.between()
        process(event)

    return step


__all__ = ["Attend", "RunAttendant", "attended", "nothing"]
