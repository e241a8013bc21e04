"""A stack's run operated by the runbook through its steward, without Docker.

The stack's PostgreSQL and Redis are embedded stand-ins; `claire stack init-run`
records the run as `cdb_init` does, each service runs as `claire engine run NAME`
with no supervisor (as each container runs it), and `claire stack steward` attends
the run as `cdb_steward` does. The operator's commands come from the command line
with the stack's database named, as `--stack` names it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.bus.redis import RedisBus
from engine.services.host import SERVICES, stream_prefix
from engine.services.run_stop import feed_stopped, stop_requested
from engine.store import RunStatus, Store
from tests.cli.support import invoke, ok_json
from tests.conftest import MARKET

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.services]

RUN = "stack"
FILES = "ETH_BTC-5m.csv,LTC_BTC-5m.csv"
REPO = Path(__file__).resolve().parents[2]


class Stack:
    """The stack's processes: its services and its steward, each logging to a file."""

    def __init__(self, env: dict[str, str], home: Path, logs: Path) -> None:
        self.env, self.home, self.logs = env, home, logs
        self.base = int(os.environ["CLAIRE_SERVICE_PORT_BASE"])
        self.services: dict[str, subprocess.Popen[bytes]] = {}
        self.steward: subprocess.Popen[bytes] | None = None
        logs.mkdir(exist_ok=True)

    def claire(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "claire_cli.main", *args],
                env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
            )  # fmt: skip

    def start(self) -> None:
        for n, name in enumerate(SERVICES):
            args = ["engine", "run", name, "--run", RUN, "--data-dir", str(self.home),
                    "--port", str(self.base + n)]  # fmt: skip
            self.services[name] = self.claire(name, args)
        self.start_steward()

    def start_steward(self) -> None:
        args = ["stack", "steward", "--run", RUN, "--data-dir", str(self.home), "--poll", "0.1"]
        self.steward = self.claire("steward", args)

    def stop_steward(self) -> None:
        assert self.steward is not None
        self.steward.send_signal(signal.SIGTERM)
        assert self.steward.wait(60) == 0, self.log("steward")
        self.steward = None

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]

    def all_up(self) -> None:
        for name, child in {**self.services, "steward": self.steward}.items():
            assert child is not None and child.poll() is None, (name, self.log(name))

    def close(self) -> None:
        children = [*self.services.values(), *([self.steward] if self.steward else [])]
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


@pytest.fixture
def stack(
    backing: dict[str, str], claire_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    env = {**backing, "STALE_DATA_SECONDS": "86400"}
    recorded = subprocess.run(
        [sys.executable, "-m", "claire_cli.main", "stack", "init-run", "--run", RUN,
         "--market-dir", str(MARKET), "--files", FILES, "--days", "7", "--speed", "2000x",
         "--data-dir", str(claire_home)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=180, cwd=REPO,
    )  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr
    # The operator's commands go to the stack's database, as `--stack` resolves it.
    monkeypatch.setenv("CLAIRE_POSTGRES_URL", backing["CLAIRE_POSTGRES_URL"])
    running = Stack(env, claire_home, tmp_path / "logs")
    try:
        running.start()
        yield running
    finally:
        running.close()


def wait_until(test: Any, what: str, stack: Stack, timeout_s: float = 120) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = test()
        if found:
            return found
        stack.all_up()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def store_of(backing: dict[str, str]) -> Store:
    return Store.open(backing["CLAIRE_POSTGRES_URL"], external=True)


def market_time(backing: dict[str, str]) -> datetime | None:
    with store_of(backing) as store:
        run = store.get_run(RUN)
    return run.last_event_ts if run else None


def published(bus: RedisBus) -> int:
    return int(bus.redis.xlen(bus.key("market_data")))


def test_the_runbook_reaches_a_stacks_run_through_its_steward(
    stack: Stack, backing: dict[str, str], claire_home: Path
) -> None:
    attended(stack, backing)
    # The stack's run is attended: status shows it running, not interrupted.
    status = invoke("status", "--run", RUN, "--json")
    assert status.exit_code in (0, 1), status.output
    shown = json.loads(status.stdout)
    assert (shown["run_id"], shown["status"]) == (RUN, "running"), shown

    halted = ok_json("risk", "halt", "--note", "checking the feed", "--run", RUN)
    assert halted["status"] == "done" and halted["result"]["trading_state"] == "halted"
    halt_ts = datetime.fromisoformat(halted["market_ts"])
    wait_until(
        lambda: (market_time(backing) or halt_ts) > halt_ts + timedelta(hours=3), "3 h", stack
    )
    resumed = ok_json("risk", "resume", "--note", "the feed is fine", "--run", RUN)
    assert resumed["status"] == "done" and resumed["result"]["trading_state"] == "active"
    resume_ts = datetime.fromisoformat(resumed["market_ts"])
    with store_of(backing) as store:
        entries = store.db.fetch_all(
            "SELECT t.trade_id FROM trades t JOIN orders o ON o.run_id = t.run_id"
            " AND o.order_id = t.order_id WHERE t.run_id = %(r)s AND o.intent = 'entry'"
            " AND t.ts > %(a)s AND t.ts <= %(u)s",
            {"r": RUN, "a": halt_ts, "u": resume_ts},
        )
        changes = store.db.fetch_all(
            "SELECT reason, detail->>'note' AS note FROM risk_events WHERE run_id = %(r)s"
            " AND kind = 'state_change' AND reason LIKE 'operator%%' ORDER BY ts",
            {"r": RUN},
        )
    assert entries == []  # no entry filled while halted
    assert [(c["reason"], c["note"]) for c in changes] == [
        ("operator_halt", "checking the feed"),
        ("operator_resume", "the feed is fine"),
    ]

    # The risk-limit incident's first action halts the stack's run, as in one process.
    incident = ok_json("incident", "open", "risk-limit", "--note", "drawdown", "--run", RUN)
    assert incident["detail"]["run_alive"] is True
    first = incident["detail"]["first_action"]
    assert first["taken"] is True and "trading halted" in first["result"], first
    again = ok_json("risk", "resume", "--note", "limit checked", "--run", RUN)
    assert again["status"] == "done" and again["result"]["trading_state"] == "active"

    backup = ok_json("backup", "create")
    assert Path(backup["file"]).is_file() and backup["run_id"] == RUN
    [verified] = ok_json("backup", "verify", backup["name"])
    assert verified["ok"] is True

    # The steward stopped: a command is refused at once, naming what attends the run.
    stack.stop_steward()
    refused = invoke("risk", "halt", "--note", "x", "--run", RUN, "--timeout", "5")
    assert refused.exit_code == 1 and "cdb_steward" in refused.stderr, refused.output
    with store_of(backing) as store:
        assert (
            store.db.fetch_all(
                "SELECT command_id FROM run_commands WHERE run_id = %(r)s AND note = 'x'",
                {"r": RUN},
            )
            == []
        )  # nothing was sent
    stack.start_steward()
    with store_of(backing) as store:
        wait_until(lambda: store.steward_alive(RUN, 30), "the steward back", stack)

    stopped = ok_json("papertest", "stop", "--reason", "end of the test", "--run", RUN)
    assert stopped["status"] == "done", stopped
    result = stopped["result"]
    assert result["status"] == "stopped" and result["open_positions"] == []
    assert Path(result["backup"]).is_file() and Path(result["report"]).is_file()
    with store_of(backing) as store:
        run = store.get_run(RUN)
        assert run is not None and run.status is RunStatus.STOPPED
        assert "planned stop" in (run.end_reason or "")
        assert not store.steward_alive(RUN, 30)
        last = store.db.fetch_one(
            "SELECT count(*) AS n FROM trades WHERE run_id = %(r)s", {"r": RUN}
        )
    # Every service stays up, idle: the feed publishes nothing more, nothing is filled.
    assert_idle(stack, backing, feed_noted=True)
    with store_of(backing) as store:
        again = store.db.fetch_one(
            "SELECT count(*) AS n FROM trades WHERE run_id = %(r)s", {"r": RUN}
        )
    assert last == again
    for n, name in enumerate(SERVICES):
        body = _health(stack.base + n)
        assert body.get("state") == "stopped", (name, body)


def test_an_emergency_stop_of_a_stacks_run_stops_every_service_now(
    stack: Stack, backing: dict[str, str]
) -> None:
    attended(stack, backing)
    stopped = ok_json(
        "papertest", "stop", "--emergency", "--reason", "exchange outage", "--run", RUN
    )
    assert stopped["status"] == "done", stopped
    assert stopped["result"]["status"] == "stopped"
    assert Path(stopped["result"]["backup"]).is_file()
    with store_of(backing) as store:
        run = store.get_run(RUN)
    assert run is not None and run.status is RunStatus.STOPPED
    assert "emergency stop" in (run.end_reason or "")
    assert_idle(stack, backing, feed_noted=False)


def attended(stack: Stack, backing: dict[str, str]) -> None:
    """Until the steward beats and the services have written a market time."""
    with store_of(backing) as store:
        wait_until(lambda: store.steward_alive(RUN, 30), "the steward's first beat", stack)
    wait_until(lambda: market_time(backing), "the first market time", stack)


def assert_idle(stack: Stack, backing: dict[str, str], *, feed_noted: bool) -> None:
    """Every service told to stop, and still up; nothing more is published."""
    bus = RedisBus(backing["CLAIRE_REDIS_URL"], prefix=stream_prefix(RUN))
    try:
        assert all(stop_requested(bus, name) for name in SERVICES)
        if feed_noted:  # a planned stop waited for the feed to say it stopped
            assert feed_stopped(bus)
        time.sleep(1)  # each service looks at the stop at most every half second
        before = published(bus)
        time.sleep(2)
        assert published(bus) == before
    finally:
        bus.close()
    stack.all_up()


def _health(port: int) -> dict[str, Any]:
    """A service's own figures (`/status`), its state among them."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as answer:
        return dict(json.loads(answer.read()))
