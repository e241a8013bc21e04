"""The run control channel: an operator's commands to a running run, through PostgreSQL.

`claire papertest stop`, `claire risk halt` and `claire risk resume` write a row to
`run_commands`; the run (foreground or detached, in any terminal, on any machine
that reaches the database) takes pending rows between two market events, applies
them and records the outcome. The table is also the append-only log of operator
actions: who asked, what, why (the note), when, and what came of it.

    channel = ControlChannel(store)
    command_id = channel.send(run_id, CommandKind.RESUME, "checked the feed", operator_name())
    answer = channel.wait(command_id, timeout_s=30)      # done, refused or still waiting

Why PostgreSQL and not the run's HTTP port: every run already writes there, so a
command reaches a run wherever it runs and outlives a restart of either side; and
a command, like every other event of the run, is kept.
"""

from __future__ import annotations

import getpass
import json
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Final

from engine.clock import Clock, WallClock
from engine.errors import ClaireError
from engine.plain import plain, plain_dict
from engine.store import Store
from engine.store.queries import parse_queries

MAX_NOTE: Final = 2000
POLL_S: Final = 0.1


class CommandKind(StrEnum):
    STOP = "stop"  # planned: no new entries, close positions, final snapshot, backup, report
    EMERGENCY_STOP = "emergency_stop"  # now: no closing, backup
    HALT = "halt"
    RESUME = "resume"
    RECONNECT = "reconnect"  # a live run drops its feed's connection and backfills the gap


class CommandStatus(StrEnum):
    PENDING = "pending"
    TAKEN = "taken"
    DONE = "done"
    REFUSED = "refused"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        return self in (CommandStatus.DONE, CommandStatus.REFUSED, CommandStatus.EXPIRED)


class CommandError(ClaireError):
    pass


@dataclass(frozen=True, slots=True)
class Command:
    command_id: int
    run_id: str
    kind: CommandKind
    note: str
    requested_by: str
    requested_at: datetime
    status: CommandStatus
    taken_at: datetime | None = None
    finished_at: datetime | None = None
    market_ts: datetime | None = None
    result: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Command:
        return cls(
            command_id=int(row["command_id"]),
            run_id=row["run_id"],
            kind=CommandKind(row["command"]),
            note=row["note"],
            requested_by=row["requested_by"],
            requested_at=_utc(row["requested_at"]),
            status=CommandStatus(row["status"]),
            taken_at=_utc(row.get("taken_at")),
            finished_at=_utc(row.get("finished_at")),
            market_ts=_utc(row.get("market_ts")),
            result=dict(row.get("result") or {}),
        )

    def as_json(self) -> dict[str, Any]:
        return plain_dict(
            {
                "command_id": self.command_id,
                "run_id": self.run_id,
                "command": self.kind.value,
                "note": self.note,
                "requested_by": self.requested_by,
                "requested_at": self.requested_at,
                "status": self.status.value,
                "taken_at": self.taken_at,
                "finished_at": self.finished_at,
                "market_ts": self.market_ts,
                "result": dict(self.result),
            }
        )


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


@cache
def ops_queries(file_name: str) -> MappingProxyType[str, str]:
    """Named queries from one of engine/ops' .sql files (the style of engine/store)."""
    text = resources.files("engine.ops").joinpath(file_name).read_text(encoding="utf-8")
    return MappingProxyType(parse_queries(text))


def operator_name() -> str:
    """Who gives a command: the account and the machine, like `ops@host`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"[:200]


def check_note(note: str, what: str = "--note") -> str:
    text = note.strip()
    if not text:
        raise CommandError(f"{what} is empty; say why, it is kept with the command.")
    if len(text) > MAX_NOTE:
        raise CommandError(f"{what} is {len(text)} characters long; keep it under {MAX_NOTE}.")
    return text


class ControlChannel:
    """Both ends of the channel over one store: send and wait, or take and finish."""

    def __init__(
        self,
        store: Store,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.clock = clock or WallClock()
        self._sleep = sleep
        self._monotonic = monotonic
        self._q = ops_queries("control.sql")

    # --- the operator's side --------------------------------------------------------

    def send(self, run_id: str, kind: CommandKind, note: str, requested_by: str) -> int:
        row = self.store.db.fetch_one(
            self._q["insert_command"],
            {
                "run_id": run_id,
                "command": CommandKind(kind).value,
                "note": note[:MAX_NOTE],
                "requested_by": requested_by[:200],
                "requested_at": self.clock.now(),
            },
        )
        assert row is not None
        return int(row["command_id"])

    def get(self, command_id: int) -> Command | None:
        row = self.store.db.fetch_one(self._q["get_command"], {"command_id": command_id})
        return Command.from_row(row) if row else None

    def wait(
        self,
        command_id: int,
        timeout_s: float,
        *,
        until_taken: bool = False,
        still_alive: Callable[[], bool] | None = None,
    ) -> Command:
        """The command once it is final (or taken, with `until_taken`), or as it is when
        `timeout_s` passed or `still_alive` says the run is gone."""
        deadline = self._monotonic() + timeout_s
        while True:
            command = self.get(command_id)
            if command is None:
                raise CommandError(f"command {command_id} is not in the database.")
            reached = command.status.final or (
                until_taken and command.status is CommandStatus.TAKEN
            )
            if reached or self._monotonic() >= deadline:
                return command
            if still_alive is not None and not still_alive():
                # The run ended: one last look, in case it finished the command on its way out.
                return self.get(command_id) or command
            self._sleep(POLL_S)

    def expire(self, command_id: int, why: str) -> bool:
        """Withdraw a command nobody took; False when the run took it first."""
        return bool(
            self.store.db.execute(
                self._q["expire_command"],
                {"command_id": command_id, "now": self.clock.now(), "result": _json({"why": why})},
            )
        )

    def take_one(self, command_id: int) -> bool:
        """Take a pending command away from the run (to deliver it another way)."""
        return bool(
            self.store.db.execute(
                self._q["take_command"], {"command_id": command_id, "now": self.clock.now()}
            )
        )

    def recent(self, run_id: str, limit: int = 10) -> list[Command]:
        rows = self.store.db.fetch_all(
            self._q["recent_commands"], {"run_id": run_id, "limit": limit}
        )
        return [Command.from_row(r) for r in rows]

    # --- the run's side --------------------------------------------------------------

    def take(self, run_id: str, timeout_s: float | None = None) -> list[Command]:
        """Every pending command of the run, oldest first, now taken by the caller.

        `timeout_s` bounds the wait for a connection (a run polling through an outage).
        """
        with self.store.db.session(timeout_s) as session:
            rows = session.fetch_all(
                self._q["take_commands"], {"run_id": run_id, "now": self.clock.now()}
            )
        return sorted((Command.from_row(r) for r in rows), key=lambda c: c.command_id)

    def finish(
        self,
        command_id: int,
        status: CommandStatus,
        market_ts: datetime | None,
        result: Mapping[str, Any],
    ) -> bool:
        if not CommandStatus(status).final:
            raise CommandError(f"a command ends done, refused or expired, not {status}.")
        return bool(
            self.store.db.execute(
                self._q["finish_command"],
                {
                    "command_id": command_id,
                    "status": CommandStatus(status).value,
                    "now": self.clock.now(),
                    "market_ts": market_ts,
                    "result": _json(result),
                },
            )
        )


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(plain(dict(value)), sort_keys=True, default=str)


__all__ = [
    "Command",
    "CommandError",
    "CommandKind",
    "CommandStatus",
    "ControlChannel",
    "check_note",
    "operator_name",
    "ops_queries",
]
