"""The run control channel in PostgreSQL: a command is taken once, answered once, kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.ops.control import (
    CommandError,
    CommandKind,
    CommandStatus,
    ControlChannel,
    check_note,
)
from engine.store import ConstraintViolation, Store
from tests.store.factories import T0


class Ticking:
    """A clock that moves one second per call."""

    def __init__(self) -> None:
        self.n = 0

    def now(self) -> datetime:
        self.n += 1
        return datetime(2026, 1, 5, 0, 0, self.n, tzinfo=UTC)


def test_a_command_is_taken_once_and_answered_with_its_result(store: Store, run_id: str) -> None:
    channel = ControlChannel(store, Ticking())
    first = channel.send(run_id, CommandKind.RESUME, "feed checked", "ops@host")
    second = channel.send(run_id, CommandKind.HALT, "again", "ops@host")
    taken = channel.take(run_id)
    assert [c.command_id for c in taken] == [first, second]
    assert all(c.status is CommandStatus.TAKEN for c in taken)
    assert channel.take(run_id) == []  # nobody takes them twice
    assert channel.finish(first, CommandStatus.DONE, T0, {"trading_state": "active"})
    assert not channel.finish(first, CommandStatus.REFUSED, T0, {})  # answered once
    answer = channel.get(first)
    assert answer is not None and answer.status is CommandStatus.DONE
    assert answer.note == "feed checked" and answer.requested_by == "ops@host"
    assert answer.market_ts == T0 and answer.result == {"trading_state": "active"}
    assert answer.requested_at < answer.taken_at < answer.finished_at  # type: ignore[operator]
    assert [c.command_id for c in channel.recent(run_id)] == [second, first]


def test_a_command_nobody_took_can_be_withdrawn_but_not_one_taken(
    store: Store, run_id: str
) -> None:
    channel = ControlChannel(store)
    waiting = channel.send(run_id, CommandKind.STOP, "planned", "ops@host")
    assert channel.expire(waiting, "not taken in time")
    assert channel.take(run_id) == []
    expired = channel.get(waiting)
    assert expired is not None and expired.status is CommandStatus.EXPIRED
    assert expired.result == {"why": "not taken in time"}
    taken = channel.send(run_id, CommandKind.STOP, "planned", "ops@host")
    assert [c.command_id for c in channel.take(run_id)] == [taken]
    assert not channel.expire(taken, "too late")
    assert not channel.take_one(taken)


def test_waiting_ends_when_answered_taken_timed_out_or_the_run_is_gone(
    store: Store, run_id: str
) -> None:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    channel = ControlChannel(store, sleep=sleep, monotonic=lambda: now[0])
    command_id = channel.send(run_id, CommandKind.RESUME, "go", "ops@host")
    assert channel.wait(command_id, 1.0).status is CommandStatus.PENDING
    assert now[0] >= 1.0
    gone = channel.wait(command_id, 60.0, still_alive=lambda: False)
    assert gone.status is CommandStatus.PENDING and now[0] < 2.0
    channel.take(run_id)
    assert channel.wait(command_id, 60.0, until_taken=True).status is CommandStatus.TAKEN
    channel.finish(command_id, CommandStatus.REFUSED, None, {"reason": "not halted"})
    assert channel.wait(command_id, 60.0).result == {"reason": "not halted"}


def test_only_final_statuses_end_a_command_and_the_database_knows_the_commands(
    store: Store, run_id: str
) -> None:
    channel = ControlChannel(store)
    command_id = channel.send(run_id, CommandKind.HALT, "x", "ops@host")
    with pytest.raises(CommandError):
        channel.finish(command_id, CommandStatus.TAKEN, None, {})
    with pytest.raises(ConstraintViolation):
        store.db.execute(
            "INSERT INTO run_commands (run_id, command, requested_at) VALUES (%s, 'reboot', now())",
            (run_id,),
        )


def test_a_note_must_say_something_and_not_too_much() -> None:
    assert check_note("  breaker tripped on a bad tick  ") == "breaker tripped on a bad tick"
    with pytest.raises(CommandError, match="--note is empty"):
        check_note("   ")
    with pytest.raises(CommandError, match="keep it under 2000"):
        check_note("x" * 2001)
