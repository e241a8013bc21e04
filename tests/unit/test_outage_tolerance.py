"""Riding out a database outage: retry what a retry can fix, for a bounded time only."""

from __future__ import annotations

import logging

import pytest

from engine.store import ConstraintViolation, DatabaseUnavailable
from engine.store.retry import DatabaseOutage, OutageTolerance


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def flaky(failures: int, error: Exception, clock: FakeTime, cost_s: float = 0.0):  # type: ignore[no-untyped-def]
    calls = {"n": 0}

    def action() -> str:
        calls["n"] += 1
        clock.now += cost_s
        if calls["n"] <= failures:
            raise error
        return "written"

    return action, calls


def unavailable() -> DatabaseUnavailable:
    return DatabaseUnavailable(
        "cannot reach PostgreSQL", detail="terminating connection due to administrator command"
    )


def test_a_short_outage_is_retried_with_growing_waits_until_it_passes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeTime()
    tolerance = OutageTolerance(60, sleep=clock.sleep, monotonic=clock.monotonic)
    action, calls = flaky(4, unavailable(), clock)

    assert tolerance.call(action, "writing run r") == "written"

    assert calls["n"] == 5
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8])
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(messages) == 2  # one line when it starts, one when it is over
    assert "terminating connection" in messages[0] and "60 s" in messages[0]
    assert "back after" in messages[1]


def test_waits_never_exceed_the_cap() -> None:
    clock = FakeTime()
    tolerance = OutageTolerance(600, sleep=clock.sleep, monotonic=clock.monotonic)
    action, _ = flaky(12, unavailable(), clock)

    tolerance.call(action, "writing")

    assert max(clock.sleeps) == 5.0


def test_an_outage_longer_than_the_tolerance_gives_up_on_time() -> None:
    clock = FakeTime()
    tolerance = OutageTolerance(3, sleep=clock.sleep, monotonic=clock.monotonic)
    action, calls = flaky(1000, unavailable(), clock, cost_s=0.05)

    with pytest.raises(DatabaseOutage) as gave_up:
        tolerance.call(action, "writing run r")

    assert 3 <= clock.now < 3.2
    assert calls["n"] < 20
    assert "unreachable for 3 s while writing run r" in str(gave_up.value)
    assert "terminating connection" in str(gave_up.value)
    assert "\n" not in str(gave_up.value)


def test_zero_tolerance_gives_up_at_the_first_failure() -> None:
    clock = FakeTime()
    tolerance = OutageTolerance(0, sleep=clock.sleep, monotonic=clock.monotonic)
    action, calls = flaky(1, unavailable(), clock)

    with pytest.raises(DatabaseOutage):
        tolerance.call(action, "writing")
    assert calls["n"] == 1 and clock.sleeps == []


def test_errors_a_retry_would_repeat_are_not_retried() -> None:
    clock = FakeTime()
    tolerance = OutageTolerance(60, sleep=clock.sleep, monotonic=clock.monotonic)
    action, calls = flaky(1, ConstraintViolation("a row was refused"), clock)

    with pytest.raises(ConstraintViolation):
        tolerance.call(action, "writing")
    assert calls["n"] == 1 and clock.sleeps == []
