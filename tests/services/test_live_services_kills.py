"""A live run as services, fed by the local MEXC server, with each of its seven
services SIGKILLed once at a random moment: every trade the server sent is on
`market_data` once, no fill is stored twice, and every fill meets a trade the
server sent (the tape's invariant: engine-side timing decides a live run's market
times, so two live runs need not fill alike; tests/services/test_live_services.py)."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from engine.config import load_settings
from engine.events import derive_id
from engine.home.database import open_store
from engine.services.host import SERVICES
from tests.mexc_server import MexcServer
from tests.services.test_live_services import (
    _assert_fills_on_the_tape,
    _run_id,
    _written,
    audited_bus,
    exchange,  # noqa: F401 - the fixture
    published_trades,
    run_redis,  # noqa: F401 - the fixture
    start_live,
    wait,
)
from tests.services.test_services_run import _service_pid, finish, service_events

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.services]

PERIODIC = '''
from decimal import Decimal
from engine.events import Side
from engine.signal.base import Intent, Strategy


class Periodic(Strategy):
    """Buys on every 30th trade and sells 15 trades later: fills all through the run."""

    name = "test-periodic-live"

    def __init__(self) -> None:
        self.seen = 0

    def on_trade(self, trade, context):
        self.seen += 1
        if self.seen % 30 == 0:
            return (Intent(trade.symbol, Side.BUY, Decimal(1), "periodic buy"),)
        if self.seen % 30 == 15:
            return (Intent(trade.symbol, Side.SELL, Decimal(1), "periodic sell"),)
        return ()

    def export_state(self):
        return {"seen": self.seen}

    def import_state(self, state):
        self.seen = int(state["seen"])
'''


def test_a_live_services_run_keeps_every_trade_and_fill_once_through_every_service_killed(
    exchange: MexcServer,  # noqa: F811 - the fixture imported above
    claire_home: Path,
    tmp_path: Path,
    run_redis: str,  # noqa: F811 - the fixture imported above
) -> None:
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    child = start_live(exchange, tmp_path, PERIODIC, "Periodic")
    order = chance.sample(list(SERVICES), len(SERVICES))
    try:
        run_id = _run_id(child, claire_home)
        bus = audited_bus(run_redis, run_id)
        wait("the first 40 trades", lambda: len(published_trades(bus)) >= 40, child)
        for name in order:
            pid = wait_pid(run_id, name, child)
            time.sleep(chance.uniform(0.2, 1.5))
            os.kill(pid, signal.SIGKILL)
            wait(f"{name} started again", lambda n=name, p=pid: _restarted(run_id, n, p), child)
        tape = exchange.spot_trades["XRPETH"]
        upto = tape.cursor + 40  # every trade sent while the services were killed, and more
        wait("40 more trades", lambda: tape.cursor >= upto, child)
        sent = {
            derive_id("mkt", "mexc", "spot", "XRPETH", "trade", f"id:{t.trade_id}"): t
            for t in tape.released[:upto]
        }
        wait("every trade", lambda: set(sent) <= {t.event_id for t in published_trades(bus)},
             child, timeout_s=120)  # fmt: skip
        wait("the writer", lambda: _written(bus), child, timeout_s=120)
    finally:
        child.send_signal(signal.SIGTERM)
    code, out, err = finish(child, timeout=120)
    assert code == 128 + signal.SIGTERM, (seed, order, err[-3000:])
    assert json.loads(out)["status"] == "stopped"
    trades = published_trades(bus)
    ids = [t.event_id for t in trades]
    assert len(ids) == len(set(ids)), ("a trade published twice", seed, order)
    assert set(sent) <= set(ids), ("a trade the server sent is missing", seed, order)
    killed = {
        e["service"]
        for e in service_events(claire_home, run_id)
        if e["kind"] == "exit" and e["exit_code"] == -signal.SIGKILL
    }
    assert killed == set(SERVICES), (seed, order)
    with open_store(load_settings(), claire_home) as (store, _):
        doubled = store.db.fetch_all(
            "SELECT order_id, market_event_id, count(*) AS n FROM trades WHERE run_id = %(r)s"
            " GROUP BY order_id, market_event_id HAVING count(*) > 1",
            {"r": run_id},
        )
        fills = store.db.fetch_one(
            "SELECT count(*) AS n FROM trades WHERE run_id = %(r)s", {"r": run_id}
        )
    assert doubled == [], ("a fill stored twice", seed, order, doubled)
    assert fills is not None and fills["n"] >= 4, (seed, order)
    _assert_fills_on_the_tape(claire_home, run_id, {t.event_id: t for t in trades})
    bus.close()


def wait_pid(run_id: str, name: str, child: object) -> int:
    found: list[int] = []

    def up() -> bool:
        pid = _service_pid(run_id, name)
        if pid is not None:
            found.append(pid)
        return pid is not None

    wait(f"{name} up", up, child)  # type: ignore[arg-type]
    return found[-1]


def _restarted(run_id: str, name: str, old: int) -> bool:
    pid = _service_pid(run_id, name)
    return pid is not None and pid != old
