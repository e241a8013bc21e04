"""A stack run's backups: the one-process schedule on the wall clock, kept 14 days,
taken from the stack's database (an embedded stand-in, no Docker needed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.bus.redis import RedisBus
from engine.clock import EventClock
from engine.config import Settings
from engine.run.stack_steward import StackSteward, attend
from engine.runtime.redis import EmbeddedRedis
from engine.services.host import stream_prefix
from engine.stack.backups import StackBackups
from engine.store import Store
from engine.store.runs import RunStatus
from tests.stack.conftest import STACK_PASSWORD

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(stack_port: int) -> Iterator[Store]:
    """The stand-in stack database, shared by this worker's tests: the runs a test
    records are ended after it, so no other test finds them running."""
    url = f"postgresql://claire:{STACK_PASSWORD}@127.0.0.1:{stack_port}/claire"
    with Store.open(url, external=True) as opened:
        yield opened
        for run_id in _made.pop(id(opened), []):
            record = opened.get_run(run_id)
            if record is not None and record.status is RunStatus.RUNNING:
                opened.end_run(run_id, RunStatus.COMPLETED, T0 + timedelta(days=30))


_made: dict[int, list[str]] = {}


def _run(store: Store, run_id: str) -> str:
    assert store.create_run(run_id, config={}, data_source="live:mexc", started_at=T0)
    _made.setdefault(id(store), []).append(run_id)
    return run_id


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.dump"))


def test_a_live_stack_run_is_backed_up_at_start_each_interval_and_at_its_end(
    store: Store, tmp_path: Path
) -> None:
    run_id = _run(store, f"stack-live-{tmp_path.name[-12:]}")
    clock = EventClock(T0)
    settings = Settings(backup_interval="24h", backup_retention_days=14, backup_dir=None)
    duty = StackBackups(store, run_id, tmp_path, settings, live=True, clock=clock)

    first = duty.step()
    assert first is not None and first.manifest.run_id == run_id
    assert duty.step() is None  # nothing due until the interval has passed
    clock.advance(T0 + timedelta(hours=23, minutes=59))
    assert duty.step() is None
    clock.advance(T0 + timedelta(hours=24))
    second = duty.step()
    assert second is not None and second.manifest.reason == "scheduled"
    assert len(_names(tmp_path / "backups")) == 2

    # Fifteen days on the run has ended: one last backup, and the 14-day retention
    # prunes the first (the newest is always kept).
    store.end_run(run_id, RunStatus.COMPLETED, T0 + timedelta(days=15))
    clock.advance(T0 + timedelta(days=15))
    last = duty.step()
    assert last is not None and last.manifest.reason == "run-end"
    kept = _names(tmp_path / "backups")
    assert first.dump.name not in kept and last.dump.name in kept
    assert duty.ended and duty.step() is None
    assert duty.failures == []


def test_a_replay_waits_one_interval_and_off_takes_none(store: Store, tmp_path: Path) -> None:
    run_id = _run(store, f"stack-replay-{tmp_path.name[-12:]}")
    clock = EventClock(T0)
    replay = StackBackups(
        store, run_id, tmp_path / "a", Settings(backup_interval="90m"), live=False, clock=clock
    )
    assert replay.step() is None
    clock.advance(T0 + timedelta(minutes=90))
    assert replay.step() is not None
    off = StackBackups(
        store, run_id, tmp_path / "b", Settings(backup_schedule="off"), live=True, clock=clock
    )
    assert off.step() is None
    assert not (tmp_path / "b" / "backups").exists()
    unknown = StackBackups(store, "no-such-run", tmp_path / "c", Settings(), live=True)
    assert unknown.step() is None and not (tmp_path / "c" / "backups").exists()


def test_the_steward_loop_beats_backs_up_stops_when_told_and_says_it_is_alive(
    store: Store, tmp_path: Path
) -> None:
    run_id = _run(store, f"stack-loop-{tmp_path.name[-12:]}")
    server = EmbeddedRedis(tmp_path / "redis")
    bus = RedisBus(server.start(), prefix=stream_prefix(run_id))
    try:
        steward = StackSteward(
            store, bus, run_id, tmp_path, Settings(), live=True, clock=EventClock(T0)
        )
        stop = threading.Event()
        looks: list[float] = []
        beating: list[bool] = []

        def wait(seconds: float) -> bool:
            looks.append(seconds)
            beating.append(store.steward_alive(run_id, 30))
            if len(looks) == 3:
                stop.set()
            return stop.wait(0)

        alive = tmp_path / "alive"
        attend(steward, wait, poll_s=0.01, alive=alive)
    finally:
        bus.close()
        server.stop()
    assert looks == [0.01, 0.01, 0.01] and alive.exists()
    assert beating == [True, True, True]
    assert not store.steward_alive(run_id, 30)  # it left when told to stop
    assert len(steward.backups.written) == 1  # at start; the next is a day of wall time away


def test_the_steward_beats_all_through_a_long_stop(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop's drain, dump and report can outlast the liveness window: the operator's
    wait must still see the steward alive until it answers."""
    import engine.run.stack_steward as stack_steward

    run_id = _run(store, f"stack-beat-{tmp_path.name[-12:]}")
    monkeypatch.setattr(stack_steward, "BEAT_S", 0.05)
    server = EmbeddedRedis(tmp_path / "redis")
    bus = RedisBus(server.start(), prefix=stream_prefix(run_id))
    try:
        steward = StackSteward(store, bus, run_id, tmp_path, Settings(), live=False)
        steward.alive = tmp_path / "alive"  # the container's health file
        assert not store.steward_alive(run_id, 30)
        with steward._beating():
            deadline = time.monotonic() + 10
            while not store.steward_alive(run_id, 30):
                assert time.monotonic() < deadline, "no beat during the stop"
                time.sleep(0.02)
            while not steward.alive.exists():
                assert time.monotonic() < deadline, "the health file went stale in the stop"
                time.sleep(0.02)
            touched = steward.alive.stat().st_mtime_ns
            while steward.alive.stat().st_mtime_ns == touched:
                assert time.monotonic() < deadline, "the health file went stale in the stop"
                time.sleep(0.02)
        # A backup's dump before the steward attends a run: the health file only.
        quiet = f"stack-quiet-{tmp_path.name[-12:]}"
        other = StackSteward(store, bus, quiet, tmp_path, Settings(), live=False)
        other.alive = tmp_path / "alive-2"
        with other._beating(db=False):
            deadline = time.monotonic() + 10
            while not other.alive.exists():
                assert time.monotonic() < deadline, "no health file during a dump"
                time.sleep(0.02)
        assert not store.steward_alive(quiet, 30)
    finally:
        bus.close()
        server.stop()
