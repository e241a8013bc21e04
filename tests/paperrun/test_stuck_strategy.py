"""A strategy that hangs, swallows interruptions or calls sys.exit never holds a run:
the watchdog fails it past STRATEGY_TIMEOUT_SECONDS, a SIGTERM or an emergency stop
ends it within seconds, and a stopped run resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.config import load_settings
from engine.home.database import open_store
from engine.ops import commands
from engine.ops.commands import Operator
from engine.ops.control import CommandError
from engine.run.watchdog import StrategyWatchdog
from engine.signal.watch import CallbackWatch, StrategyTimeout
from tests.cli.support import ETH, invoke, ok_json, one_line

STRATEGIES = """\
import os
import sys
import time

from engine.signal.base import Strategy


def stuck(n):
    return n > 3 and not os.environ.get("UNSTUCK")


class Spin(Strategy):
    def __init__(self):
        self.n = 0

    def on_candle(self, candle, context):
        self.n += 1
        while stuck(self.n):
            pass
        return []


class Swallow(Spin):
    def on_candle(self, candle, context):
        self.n += 1
        while stuck(self.n):
            try:
                time.sleep(0.01)
            except BaseException:
                pass
        return []


class Forever(Spin):
    def __init__(self):
        while not os.environ.get("UNSTUCK"):
            pass


class ExitsEarly(Spin):
    def __init__(self):
        sys.exit(3)


class Exits(Spin):
    def on_candle(self, candle, context):
        sys.exit(0)
"""


PATIENT = {"STRATEGY_TIMEOUT_SECONDS": "300"}  # only a stop ends these runs


def test_the_watchdog_interrupts_a_call_past_its_timeout() -> None:
    watch = CallbackWatch()
    ended: list[str] = []
    caught: list[BaseException] = []

    def strategy() -> None:
        try:
            with watch.running("Spin", "on_candle"):
                while True:
                    pass
        except StrategyTimeout as exc:
            caught.append(exc)

    thread = threading.Thread(target=strategy)
    thread.start()
    assert thread.ident is not None
    dog = StrategyWatchdog(
        watch, 0.2, stop=None, end=lambda c, why, f: ended.append(why), thread_id=thread.ident
    )
    dog.start()
    thread.join(timeout=5)
    dog.close()
    assert not thread.is_alive() and len(caught) == 1 and not ended
    assert "did not return from on_candle within 0.2 s" in watch.timeout_message


@pytest.fixture
def strategies(tmp_path: Path) -> Path:
    path = tmp_path / "stuck.py"
    path.write_text(STRATEGIES)
    return path


_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def nothing_left() -> Iterator[None]:
    yield
    while _started:
        child = _started.pop()
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()


def start(
    strategy: str, home: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "claire_cli.main", "papertest", "start", "--replay", str(ETH)]
    args += ["--days", "1", "--capital", "10", "--speed", "max", "--data-dir", str(home)]
    args += ["--strategy", strategy, *extra]
    child = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})}, start_new_session=True,
    )  # fmt: skip
    _started.append(child)
    return child


def stuck_in_on_candle(home: Path, child: subprocess.Popen[str]) -> None:
    """Wait until the run is recorded and its strategy is looping."""
    deadline = time.monotonic() + 90
    while True:
        assert child.poll() is None, child.communicate()
        shown = invoke("papertest", "status", "--data-dir", str(home), "--json")
        runs = json.loads(shown.stdout) if shown.exit_code == 0 else []
        if runs and runs[0]["status"] == "running":
            time.sleep(1.0)
            return
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.5)


def finish(child: subprocess.Popen[str], timeout_s: float) -> tuple[str, str]:
    try:
        return child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        raise


def only_run(home: Path) -> Any:
    [run] = ok_json("papertest", "status", "--data-dir", str(home))
    return run


@pytest.mark.integration
def test_a_strategy_stuck_in_on_candle_fails_the_run_with_where(
    strategies: Path, claire_home: Path
) -> None:
    child = start(f"{strategies}:Spin", claire_home, env={"STRATEGY_TIMEOUT_SECONDS": "0.5"})
    _, err = finish(child, 120)
    assert child.returncode == 1, err
    line = one_line(err)
    assert "strategy Spin did not return from on_candle for ETHBTC at 2018-01-10" in line
    assert "within 0.5 s (STRATEGY_TIMEOUT_SECONDS)" in line
    run = only_run(claire_home)
    assert run["status"] == "failed" and "did not return from on_candle" in run["end_reason"]


@pytest.mark.integration
def test_sys_exit_in_a_strategy_is_a_strategy_failure(strategies: Path, claire_home: Path) -> None:
    child = start(f"{strategies}:Exits", claire_home)
    _, err = finish(child, 120)
    assert child.returncode == 1, err
    line = one_line(err)
    assert line.startswith("error: strategy Exits called sys.exit(0) in on_candle for ETHBTC")
    assert only_run(claire_home)["status"] == "failed"


@pytest.mark.integration
def test_sigterm_ends_a_run_whose_strategy_swallows_every_interruption_and_it_resumes(
    strategies: Path, claire_home: Path
) -> None:
    child = start(f"{strategies}:Swallow", claire_home, env=PATIENT)
    stuck_in_on_candle(claire_home, child)
    sent = time.monotonic()
    os.kill(child.pid, signal.SIGTERM)
    _, err = finish(child, 30)
    assert time.monotonic() - sent < 10
    assert child.returncode == 128 + signal.SIGTERM, err
    run = only_run(claire_home)
    assert run["status"] == "stopped" and "stuck in on_candle" in run["end_reason"]

    resume = [sys.executable, "-m", "claire_cli.main", "papertest", "start", "--resume"]
    resumed = subprocess.Popen(
        [*resume, "--data-dir", str(claire_home)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "UNSTUCK": "1"},
    )  # fmt: skip
    _, err = finish(resumed, 120)
    assert resumed.returncode == 0, err
    run = only_run(claire_home)
    assert run["status"] == "completed" and run["progress_frac"] == "1"


@pytest.mark.integration
def test_an_emergency_stop_ends_a_run_whose_strategy_is_stuck(
    strategies: Path, claire_home: Path
) -> None:
    child = start(f"{strategies}:Spin", claire_home, env=PATIENT)
    stuck_in_on_candle(claire_home, child)
    sent = time.monotonic()
    with open_store(load_settings(), claire_home) as (store, _):
        answer = Operator(store, claire_home).stop("stuck", emergency=True, grace_s=0.5)
    assert time.monotonic() - sent < 15
    assert answer.status.value == "done" and answer.result["via"] == "SIGTERM"
    assert answer.result["status"] == "stopped"
    finish(child, 30)
    assert child.returncode == 128 + signal.SIGTERM


@pytest.mark.integration
def test_an_emergency_stop_of_a_stuck_run_stops_it_or_says_it_did_not(
    strategies: Path, claire_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    child = start(f"{strategies}:Spin", claire_home, env=PATIENT)
    stuck_in_on_candle(claire_home, child)
    monkeypatch.setattr(commands, "SIGTERM_WAIT_S", 2.0)
    os.kill(child.pid, signal.SIGSTOP)  # not even the watchdog can act
    try:
        with (
            open_store(load_settings(), claire_home) as (store, _),
            pytest.raises(CommandError, match="did not stop: its process"),
        ):
            Operator(store, claire_home).stop("stuck", emergency=True, grace_s=0.5)
    finally:
        os.kill(child.pid, signal.SIGCONT)
    _, err = finish(child, 30)  # the SIGTERM it was sent ends it once it runs again
    assert child.returncode == 128 + signal.SIGTERM, err
    assert only_run(claire_home)["status"] == "stopped"


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("Forever", "strategy Forever did not return from __init__ within 0.5 s"),
        ("ExitsEarly", "strategy ExitsEarly called sys.exit(3) while it was loaded or built"),
    ],
)
def test_a_strategy_whose_constructor_hangs_or_exits_is_a_strategy_error(
    strategies: Path, claire_home: Path, name: str, said: str
) -> None:
    child = start(f"{strategies}:{name}", claire_home, env={"STRATEGY_TIMEOUT_SECONDS": "0.5"})
    _, err = finish(child, 60)
    assert child.returncode == 1, err
    assert one_line(err).startswith(f"error: {said}")
