"""A strategy that hangs in a run of one process per service fails it, or gives way to a
stop, within the bound of one process (engine.run.watchdog): the signal service runs
its strategy under the same watchdog, and every service builds it under it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import load_settings
from engine.home.database import open_store
from engine.ops.commands import Operator
from engine.run.watchdog import HARD_END_S, RECORD_S, STOP_GRACE_S
from tests.cli.support import one_line
from tests.paperrun.test_stuck_strategy import PATIENT, STRATEGIES, _started, finish, only_run
from tests.paperrun.test_stuck_strategy import start as start_run
from tests.services.test_services_run import service_events, wait_for_service

pytestmark = [pytest.mark.integration, pytest.mark.services]

TIMEOUT = {"STRATEGY_TIMEOUT_SECONDS": "0.5"}
# What a failure may take past the timeout, or a stop past its signal, in one process
# (engine.run.watchdog), plus the supervisor's stop of the other services.
BOUND_S = STOP_GRACE_S + HARD_END_S + RECORD_S + 5.0


# Built fine where the run is checked, hangs where a service builds it.
HANGS_IN_A_SERVICE = """

class ForeverInService(Spin):
    def __init__(self):
        super().__init__()
        while os.environ.get("CLAIRE_SUPERVISOR_PID"):
            pass
"""


@pytest.fixture
def strategies(tmp_path: Path) -> Path:
    path = tmp_path / "stuck.py"
    path.write_text(STRATEGIES + HANGS_IN_A_SERVICE)
    return path


@pytest.fixture(autouse=True)
def nothing_left() -> Iterator[None]:
    yield
    while _started:
        child = _started.pop()
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()


def start(strategy: str, home: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    child = start_run(strategy, home, "--services", env=env)
    return child, wait_for_service(child, home, "signal")


def stuck_signal_service(home: Path, run_id: str) -> None:
    """Wait until the signal service has handled a few market times and hangs in the 4th."""
    time.sleep(3.0)
    assert only_run(home)["status"] == "running"
    events = service_events(home, run_id)
    assert not [e for e in events if e["kind"] == "exit"], events


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("Spin", "strategy Spin did not return from on_candle for ETHBTC at 2018-01-10"),
        ("Swallow", "strategy Swallow did not return from on_candle for ETHBTC at 2018-01-10"),
        ("ForeverInService", "strategy ForeverInService did not return from __init__"),
    ],
)
def test_a_stuck_strategy_fails_a_services_run_with_where(
    strategies: Path, claire_home: Path, name: str, said: str
) -> None:
    child = start_run(f"{strategies}:{name}", claire_home, "--services", env=TIMEOUT)
    began = time.monotonic()
    _, err = finish(child, 120)
    took = time.monotonic() - began
    assert child.returncode == 1, err
    line = one_line(err)
    assert said in line and "within 0.5 s (STRATEGY_TIMEOUT_SECONDS)" in line, line
    run = only_run(claire_home)
    assert run["status"] == "failed" and said in run["end_reason"]
    events = service_events(claire_home, run["run_id"])
    assert not [e for e in events if e["kind"] == "restart"], events  # failed, not retried
    assert took < 60, f"the run took {took:.0f} s to fail"


def test_sigterm_ends_a_services_run_whose_strategy_swallows_every_interruption(
    strategies: Path, claire_home: Path
) -> None:
    child, run_id = start(f"{strategies}:Swallow", claire_home, PATIENT)
    stuck_signal_service(claire_home, run_id)
    sent = time.monotonic()
    child.send_signal(signal.SIGTERM)
    _, err = finish(child, 60)
    assert time.monotonic() - sent < BOUND_S, err
    assert child.returncode == 128 + signal.SIGTERM, err
    run = only_run(claire_home)
    assert run["status"] == "stopped" and "SIGTERM" in run["end_reason"]
    stops = {e["service"]: e for e in service_events(claire_home, run_id) if e["kind"] == "stop"}
    assert stops["signal"]["exit_code"] is not None


def test_an_emergency_stop_ends_a_services_run_whose_strategy_is_stuck(
    strategies: Path, claire_home: Path
) -> None:
    child, run_id = start(f"{strategies}:Spin", claire_home, PATIENT)
    stuck_signal_service(claire_home, run_id)
    sent = time.monotonic()
    with open_store(load_settings(), claire_home) as (store, _):
        answer = Operator(store, claire_home).stop("stuck", emergency=True, grace_s=0.5)
    assert time.monotonic() - sent < BOUND_S + 0.5
    assert answer.status.value == "done" and answer.result["status"] == "stopped"
    finish(child, 30)
    assert only_run(claire_home)["status"] == "stopped"
