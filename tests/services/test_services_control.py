"""Operator commands in a services run: risk applies them at a market time, once."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from engine.bus.redis import RedisBus
from engine.clock import EventClock
from engine.config import load_settings
from engine.events import Event, RiskEvent, TradingState
from engine.markets import SymbolSpec
from engine.risk.service import RiskService
from engine.run.steward import STOP_WAIT_MARKET, PlannedStop
from engine.runtime.redis import EmbeddedRedis
from engine.services.control import (
    Applied,
    Closing,
    RiskControl,
    apply_command,
    closing_of,
    read_closing,
    read_outcomes,
    relay,
)
from engine.services.host import create_groups, drained, stream_lag
from engine.services.worker import SERVICE_STREAMS

D = Decimal
T0 = datetime(2024, 1, 2, 3, 5, tzinfo=UTC)
SPECS = {
    "ETHBTC": SymbolSpec("ETHBTC", "ETH", "BTC", D("0.00000001"), D("0.001"), D(0), D("0.0005"))
}


def risk_service(published: list[Event], action: str = "freeze") -> tuple[RiskService, EventClock]:
    settings = load_settings(circuit_breaker_action=action)
    clock = EventClock()
    clock.advance(T0)
    return RiskService(settings, SPECS, clock, published.append), clock


def state_changes(published: list[Event]) -> list[RiskEvent]:
    return [e for e in published if isinstance(e, RiskEvent) and e.kind == "state_change"]


def test_a_halt_and_a_resume_are_the_state_changes_of_one_process_with_the_note() -> None:
    published: list[Event] = []
    risk, _ = risk_service(published)
    assert apply_command(risk, "halt", "checking the feed", T0) == (
        True,
        {"trading_state": "halted"},
    )
    assert risk.state is TradingState.HALTED
    done, result = apply_command(risk, "halt", "again", T0)
    assert not done and result["reason"] == "trading is halted already"
    assert apply_command(risk, "resume", "feed is fine", T0)[0]
    changes = state_changes(published)
    assert [(c.reason, c.detail["note"], c.ts) for c in changes] == [
        ("operator_halt", "checking the feed", T0),
        ("operator_resume", "feed is fine", T0),
    ]
    done, result = apply_command(risk, "resume", "twice", T0)
    assert not done and "nothing to resume" in result["reason"]


def test_a_planned_stop_halts_with_flatten_whatever_the_breaker_action_says() -> None:
    published: list[Event] = []
    risk, _ = risk_service(published, action="freeze")
    done, result = apply_command(risk, "stop", "end of test", T0)
    assert done and result == {"trading_state": "halted", "closing": True}
    assert risk.settings.circuit_breaker_action == "flatten"
    assert state_changes(published)[0].detail["note"] == "planned stop: end of test"
    risk.positions = {"ETHBTC": D("-2")}
    closing = closing_of(risk, T0)
    assert (closing.held, closing.open_positions, closing.flat) == (D(2), ("ETHBTC",), False)
    risk.positions = {}
    assert closing_of(risk, T0).flat


def test_outcomes_and_progress_travel_as_json_unchanged() -> None:
    applied = Applied(7, "halt", True, T0, {"trading_state": "halted"})
    assert Applied.from_json(applied.to_json()) == applied
    closing = Closing(T0, D("0.123"), ("A", "B"), False)
    assert Closing.from_json(closing.to_json()) == closing


def test_the_wait_for_flat_is_the_one_process_rule() -> None:
    stop = PlannedStop(None, T0, 0.0)  # type: ignore[arg-type]
    assert not stop.waited_too_long(D(3), T0, 1.0)
    assert not stop.waited_too_long(D(2), T0 + STOP_WAIT_MARKET, 2.0)  # a closing fill
    assert stop.waited_too_long(D(2), T0 + 2 * STOP_WAIT_MARKET, 3.0)


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedRedis]:
    home = Path(tempfile.mkdtemp(prefix="claire-redis-"))
    server = EmbeddedRedis(home)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.integration
def test_risk_applies_a_relayed_command_once_even_when_its_step_is_redone(
    embedded: EmbeddedRedis,
) -> None:
    bus = RedisBus(embedded.url, prefix="control-test")
    published: list[Event] = []
    risk, clock = risk_service(published)
    control = RiskControl(bus, risk, clock)
    assert control.apply() == []
    relay(bus, 11, "halt", "first")
    relay(bus, 12, "stop", "then stop")
    saved = control.state()  # as committed before this step
    applied = control.apply()
    assert [(a.command_id, a.done, a.market_ts) for a in applied] == [
        (11, True, T0),
        (12, True, T0),
    ]
    # The step is lost (a crash before its transaction): restarted, risk applies them again.
    again, again_clock = risk_service([])
    redo = RiskControl(bus, again, again_clock)
    redo.restore(saved)
    assert [a.command_id for a in redo.apply()] == [11, 12]
    pipe = bus.redis.pipeline(transaction=True)
    redo.commit(pipe)
    pipe.execute()
    outcomes = read_outcomes(bus, [11, 12, 13])
    assert sorted(outcomes) == [11, 12] and outcomes[11].result == {"trading_state": "halted"}
    closing = read_closing(bus)
    assert closing is not None and closing.flat and closing.market_ts == T0
    # Committed: a later step applies nothing twice, and a restart keeps the stop's flatten.
    clock.advance(T0 + timedelta(minutes=5))
    assert redo.apply() == []
    restarted, restarted_clock = risk_service([])
    RiskControl(bus, restarted, restarted_clock).restore(redo.state())
    assert restarted.settings.circuit_breaker_action == "flatten"
    bus.close()


def test_a_detached_services_start_starts_its_daemon_as_services() -> None:
    from engine.run.request import RunRequest

    request = RunRequest(replay=(Path("a.csv"),), runtime="services", speed="600x", detach=True)
    args = request.child_args(Path("/data"))
    assert "--services" in args and args[args.index("--speed") + 1] == "600x"
    assert "--services" not in RunRequest(replay=(Path("a.csv"),)).child_args(Path("/data"))


def test_restarts_are_counted_per_service_from_the_service_events() -> None:
    from engine.ops.service_health import restarts

    events = [
        {"service": "risk", "kind": "start"},
        {"service": "risk", "kind": "exit"},
        {"service": "risk", "kind": "restart"},
        {"service": "risk", "kind": "restart"},
        {"service": "feed", "kind": "start"},
    ]
    assert restarts(events) == {"risk": 2}


def test_a_service_port_nobody_answers_on_is_no_answer_and_no_lag() -> None:
    from engine.ops.service_health import probe
    from engine.runtime.files import free_port

    health, lag = probe(free_port())
    assert health.startswith("no answer") and lag is None


def test_a_day_is_reported_once_the_written_market_time_is_well_past_its_end() -> None:
    from engine.run.services_reports import MARGIN, finished_days

    start = datetime(2018, 1, 10, 0, 5, tzinfo=UTC)
    day_two = datetime(2018, 1, 11, tzinfo=UTC)
    assert list(finished_days(start, day_two, 0)) == []  # day 1's last events may be in flight
    assert list(finished_days(start, day_two + MARGIN, 0)) == [1]
    assert list(finished_days(start, day_two + timedelta(days=2) + MARGIN, 1)) == [2, 3]
    assert list(finished_days(start, day_two + timedelta(days=2) + MARGIN, 3)) == []


@pytest.mark.integration
def test_a_run_is_drained_only_when_every_group_read_and_acknowledged_everything(
    embedded: EmbeddedRedis,
) -> None:
    bus = RedisBus(embedded.url, prefix="drained-test")
    create_groups(bus)
    assert drained(bus)  # nothing published yet
    stream = SERVICE_STREAMS[0]
    groups = [g["name"].decode() for g in bus.redis.xinfo_groups(bus.key(stream))]
    assert groups
    for n in range(3):
        bus.publish_raw(stream, f'{{"n": {n}}}')
    assert not drained(bus)
    assert all(stream_lag(bus, stream, g) == 3 for g in groups)
    read: dict[str, list[str]] = {}
    for group in groups:
        reply = bus.redis.xreadgroup(group, "c", {bus.key(stream): ">"}, count=10)
        read[group] = [msg_id for msg_id, _ in reply[0][1]]
    assert not drained(bus)  # read, not yet acknowledged
    assert all(stream_lag(bus, stream, g) == 3 for g in groups)  # pending counts
    for group in groups[:-1]:
        bus.redis.xack(bus.key(stream), group, *read[group])
    assert not drained(bus)  # one group still has them pending
    bus.redis.xack(bus.key(stream), groups[-1], *read[groups[-1]])
    assert drained(bus)
    assert all(stream_lag(bus, stream, g) == 0 for g in groups)
    bus.publish_raw(stream, '{"n": 3}')
    assert not drained(bus)
    bus.close()
