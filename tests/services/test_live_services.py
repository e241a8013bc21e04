"""A live run as one process per service, fed by the local MEXC server over real sockets.

The invariant checked on the fills is the tape's, not a one-process run's: a live
run's market times depend on when messages arrive, so two live runs on the same
server need not group (nor fill) alike. Every fill stored meets a trade the server
sent, at that trade's time, on the taker's side of its price (a buy at or above the
print, a sell at or below), within the participation cap of its size.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.bus.redis import RedisBus
from engine.config import load_settings
from engine.events import Trade, derive_id, from_json
from engine.home.database import open_store
from engine.runtime.redis import EmbeddedRedis
from engine.services.host import stream_lag, stream_prefix
from tests.mexc_server import MexcServer
from tests.paperrun.runs import claire_process
from tests.services.test_services_run import _newest_run, _service_pid, finish, service_events

pytestmark = pytest.mark.integration

STRATEGY = '''
from decimal import Decimal
from engine.events import Side
from engine.signal.base import Intent, Strategy


class Scheduled(Strategy):
    """Buys on the 5th and 100th trade, sells on the 60th: fills are certain."""

    name = "test-scheduled-live"

    def __init__(self) -> None:
        self.seen = 0

    def on_trade(self, trade, context):
        self.seen += 1
        if self.seen in (5, 100):
            return (Intent(trade.symbol, Side.BUY, Decimal(1), "scheduled buy"),)
        if self.seen == 60:
            return (Intent(trade.symbol, Side.SELL, Decimal(1), "scheduled sell"),)
        return ()

    def export_state(self):
        return {"seen": self.seen}

    def import_state(self, state):
        self.seen = int(state["seen"])
'''


class ServerThread:
    """The local MEXC server on its own event loop, beside a synchronous test."""

    def __init__(self, *, candles_from_ms: int | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        # 2 trades every 50 ms, on and on: the first SENT of them are checked.
        server = MexcServer(tick_s=0.05, trades_per_tick=2, trade_limit=None)
        if candles_from_ms is not None:  # candles on and on too, from then on
            server.candles_from(candles_from_ms)
            for tape in server.spot_klines.values():
                tape.limit = None
        self.server = self.call(server.start())
        self.server.quotes = True

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def exchange() -> Iterator[MexcServer]:
    running = ServerThread()
    try:
        yield running.server
    finally:
        running.close()


@pytest.fixture
def run_redis(claire_home: Path) -> Iterator[str]:
    """The run's Redis in its data folder, started before the run and shared with the
    test (the supervisor uses the one it finds running); stopped whatever happens."""
    server = EmbeddedRedis(claire_home)
    try:
        yield server.start()
    finally:
        server.stop()


SENT = 300  # about 7.5 s of trading: time enough to kill the feed in the middle


def tape_trade_ids(server: MexcServer) -> dict[str, Any]:
    """The first SENT trades the server sent (over its sockets or REST)."""
    return {
        derive_id("mkt", "mexc", "spot", "XRPETH", "trade", f"id:{t.trade_id}"): t
        for t in server.spot_trades["XRPETH"].released[:SENT]
    }


def published_trades(bus: RedisBus) -> list[Trade]:
    out = []
    for _, fields in bus.redis.xrange(bus.key("market_data")):
        event = from_json(fields[b"e"])
        if isinstance(event, Trade):
            out.append(event)
    return out


def wait(what: str, done: Any, child: subprocess.Popen[str], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout_s:.0f} s"
        time.sleep(0.1)


@pytest.mark.services
@pytest.mark.slow
def test_a_live_services_run_keeps_every_trade_once_through_a_killed_feed(
    exchange: MexcServer, claire_home: Path, tmp_path: Path, run_redis: str
) -> None:
    child = start_live(exchange, tmp_path, STRATEGY, "Scheduled")
    try:
        run_id = _run_id(child, claire_home)
        bus = audited_bus(run_redis, run_id)
        wait("the first 40 trades", lambda: len(published_trades(bus)) >= 40, child)
        feed = _service_pid(run_id, "feed")
        assert feed is not None
        os.kill(feed, signal.SIGKILL)
        tape = exchange.spot_trades["XRPETH"]
        wait("the first trades", lambda: tape.cursor >= SENT + 20, child)
        sent = tape_trade_ids(exchange)
        try:
            wait(
                "every trade",
                lambda: set(sent) <= {t.event_id for t in published_trades(bus)},
                child,
            )
        except AssertionError:
            missing = set(sent) - {t.event_id for t in published_trades(bus)}
            ms = sorted(sent[m].time_ms for m in missing)
            log = (claire_home / "logs" / "feed.log").read_text(encoding="utf-8")[-4000:]
            raise AssertionError(f"{len(missing)} missing, {ms[:3]}..{ms[-3:]}\n{log}") from None
        wait("the writer", lambda: _written(bus), child)
    finally:
        child.send_signal(signal.SIGTERM)
    code, out, err = finish(child, timeout=120)
    assert code == 128 + signal.SIGTERM, err
    assert json.loads(out)["status"] == "stopped"
    trades = published_trades(bus)
    ids = [t.event_id for t in trades]
    assert len(ids) == len(set(ids)), "no trade published twice"
    assert set(sent) <= set(ids), "every trade the server sent"
    tape_ids = {derive_id("mkt", "mexc", "spot", "XRPETH", "trade", f"id:{t.trade_id}")
                for t in exchange.spot_trades["XRPETH"].released}  # fmt: skip
    assert set(ids) <= tape_ids, "and no other"
    kinds = [(e["service"], e["kind"], e["exit_code"]) for e in service_events(claire_home, run_id)]
    assert ("feed", "exit", -signal.SIGKILL) in kinds
    assert ("feed", "restart", None) in [(s, k, None) for s, k, _ in kinds]
    _assert_fills_on_the_tape(claire_home, run_id, {t.event_id: t for t in trades})
    bus.close()


def start_live(
    exchange: MexcServer,
    folder: Path,
    strategy: str,
    name: str,
    *,
    market: str = "spot",
    symbols: str = "XRPETH",
    capital: str = "10",
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """A live run as services on the local server, trading with the test's `strategy`
    (class `name`), in the foreground."""
    (folder / "strategy.py").write_text(strategy, encoding="utf-8")
    env = {
        **exchange.env(),  # CLAIRE_MEXC_*_URL: they must reach the feed service's process
        "FEED_WATERMARK_MS": "100",
        "STALE_DATA_SECONDS": "3600",
        "PARTICIPATION_CAP_PCT": "0.5",
        **(env or {}),
    }
    args = ["papertest", "start", "--services", "--exchange", "mexc", "--market", market,
            "--symbols", symbols, "--timeframe", "none", "--capital", capital,
            "--strategy", f"{folder / 'strategy.py'}:{name}", "--json"]  # fmt: skip
    return claire_process(args, env)


def audited_bus(url: str, run_id: str) -> RedisBus:
    """The run's bus, with a group of the test's own that keeps `market_data` whole."""
    bus = RedisBus(url, prefix=stream_prefix(run_id))
    bus.create_group("market_data", "audit")
    return bus


def _run_id(child: subprocess.Popen[str], home: Path) -> str:
    found: list[str] = []

    def started() -> bool:
        run_id = found[0] if found else _newest_run(home)
        if run_id and not found:
            found.append(run_id)
        return bool(found) and _service_pid(found[0], "feed") is not None

    wait("the feed service's start", started, child)
    return found[0]


def _written(bus: RedisBus) -> bool:
    streams = ("market_data", "orders", "order_results", "portfolio_snapshots")
    return all(stream_lag(bus, s, "writer") == 0 for s in streams)


def _assert_fills_on_the_tape(home: Path, run_id: str, trades: dict[str, Trade]) -> None:
    with open_store(load_settings(), home) as (store, _):
        fills = store.db.fetch_all(
            "SELECT side, qty, price, ts, market_event_id FROM trades WHERE run_id = %(r)s",
            {"r": run_id},
        )
    assert fills, "the scheduled strategy must have filled"
    for fill in fills:
        trade = trades[fill["market_event_id"]]  # a trade the server sent
        price = Decimal(fill["price"])
        assert fill["ts"] == trade.ts
        if fill["side"] == "buy":
            assert price >= trade.price
        else:
            assert price <= trade.price
        assert abs(price - trade.price) <= trade.price * Decimal("0.02")
        assert Decimal(fill["qty"]) <= trade.qty * Decimal("0.5")


def test_a_live_services_run_without_symbols_is_refused_in_one_sentence() -> None:
    child = claire_process(["papertest", "start", "--services", "--exchange", "mexc"])
    _out, err = child.communicate(timeout=120)
    assert child.returncode != 0
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "--symbols" in lines[0] and "Traceback" not in err
    for never_given in ("--replay", "--no-persist"):
        assert never_given not in err
