"""A run's backups fall due on the operator's wall clock, every BACKUP_INTERVAL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.clock import EventClock
from engine.config import load_settings, parse_duration
from engine.errors import ConfigError
from engine.ops.backups.scheduler import BackupTimer

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def test_a_live_run_is_due_at_once_then_every_interval_of_wall_time() -> None:
    clock = EventClock(T0)
    timer = BackupTimer(timedelta(hours=24), clock, at_start=True)
    assert timer.due()
    timer.taken()
    clock.advance(T0 + timedelta(hours=23, minutes=59, seconds=59))
    assert not timer.due()
    clock.advance(T0 + timedelta(hours=24))
    assert timer.due()
    clock.advance(T0 + timedelta(hours=25))  # taken an hour late: the next is a day on
    timer.taken()
    assert timer.next_at == T0 + timedelta(hours=49)
    clock.advance(T0 + timedelta(hours=48))
    assert not timer.due()


def test_a_replay_is_first_due_one_interval_after_its_start() -> None:
    clock = EventClock(T0)
    timer = BackupTimer(timedelta(minutes=90), clock, at_start=False)
    assert not timer.due()
    clock.advance(T0 + timedelta(minutes=89))
    assert not timer.due()
    clock.advance(T0 + timedelta(minutes=90))
    assert timer.due()


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("24h", timedelta(hours=24)),
        (" 90M ", timedelta(minutes=90)),
        ("3600s", timedelta(hours=1)),
        ("7d", timedelta(days=7)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_durations_are_read_with_their_unit(text: str, span: timedelta) -> None:
    assert parse_duration(text) == span


def test_the_interval_setting_defaults_to_a_day_and_refuses_a_bare_number() -> None:
    assert load_settings().backup_interval_delta() == timedelta(days=1)
    assert load_settings(backup_interval="6h").backup_interval_delta() == timedelta(hours=6)
    for bad in ("24", "0s", "366d", "-1h", "1w", ""):
        with pytest.raises(ConfigError, match="BACKUP_INTERVAL"):
            load_settings(backup_interval=bad)
