"""A live run as services through its Redis killed and its PostgreSQL down for 30 s:
the run goes on, every trade the server sent is on `market_data` once, no fill is
stored twice, every fill meets a trade on the tape, and the writer's `/health` gives
the reason while the database is away."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
import redis

from engine.events import derive_id
from engine.runtime import EmbeddedPostgres
from engine.runtime.files import free_port
from engine.services.host import SERVICES
from tests.mexc_server import MexcServer
from tests.paperrun.runs import claire_process  # noqa: F401 - start_live's
from tests.services.test_live_services import (
    _written,
    audited_bus,
    exchange,  # noqa: F401 - the fixture
    published_trades,
    run_redis,  # noqa: F401 - the fixture
    start_live,
    wait,
)
from tests.services.test_live_services_kills import PERIODIC
from tests.services.test_services_run import _health, _newest_run, _service_pid, finish

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.services]


@pytest.fixture
def postgres() -> Iterator[tuple[EmbeddedPostgres, str]]:
    """The services' PostgreSQL, a server of its own (as in a stack), and its URL."""
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="claire-pg-")))
    os.chmod(server.data_dir, 0o711)
    try:
        yield server, server.start()
    finally:
        server.shutdown()
        shutil.rmtree(server.data_dir, ignore_errors=True)


def test_a_live_services_run_rides_out_redis_killed_and_a_30_second_database_outage(
    exchange: MexcServer,  # noqa: F811 - the fixture imported above
    claire_home: Path,
    tmp_path: Path,
    run_redis: str,  # noqa: F811 - the fixture imported above
    postgres: tuple[EmbeddedPostgres, str],
) -> None:
    server, url = postgres
    base = free_port()
    env = {"CLAIRE_POSTGRES_URL": url, "CLAIRE_SERVICE_PORT_BASE": str(base)}
    writer_port = base + SERVICES.index("writer")
    child = start_live(exchange, tmp_path, PERIODIC, "Periodic", env=env)
    try:
        run_id = _run_id_of(child, url)
        bus = audited_bus(run_redis, run_id)
        wait("the first 40 trades", lambda: len(published_trades(bus)) >= 40, child)

        # Redis killed: the supervisor starts it again from its append-only file.
        [redis_pid] = [
            p.pid
            for p in psutil.process_iter(["name", "cwd"])
            if p.info["name"] == "redis-server" and p.info["cwd"] == str(claire_home / "redis")
        ]
        os.kill(redis_pid, signal.SIGKILL)
        tape = exchange.spot_trades["XRPETH"]
        mark = tape.cursor
        wait("trades after Redis came back", lambda: _count(bus) > mark + 20, child, 120)

        # PostgreSQL away for 30 s: the writer says why, the run goes on.
        server.shutdown()
        outage_began = time.monotonic()
        reasons: list[Any] = []
        while not reasons:
            assert time.monotonic() - outage_began < 25, "the writer's health stayed ok"
            code, body = _health(writer_port)
            if code == 503:
                reasons = list(body["reasons"])
            time.sleep(0.2)
        time.sleep(max(0.0, 30 - (time.monotonic() - outage_began)))
        assert child.poll() is None, "the run gave up during the outage"
        server.start()

        upto = tape.cursor + 40
        wait("40 more trades", lambda: tape.cursor >= upto, child, 120)
        sent = {
            derive_id("mkt", "mexc", "spot", "XRPETH", "trade", f"id:{t.trade_id}"): t
            for t in tape.released[:upto]
        }
        wait("every trade", lambda: set(sent) <= {t.event_id for t in published_trades(bus)},
             child, 120)  # fmt: skip
        wait("the writer", lambda: _written(bus), child, 120)
    finally:
        child.send_signal(signal.SIGTERM)
    try:
        code, out, err = finish(child, timeout=120)
        assert code == 128 + signal.SIGTERM, err[-3000:]
        assert json.loads(out)["status"] == "stopped"
        trades = published_trades(bus)
        ids = [t.event_id for t in trades]
        assert len(ids) == len(set(ids)), "no trade published twice"
        assert set(sent) <= set(ids), "every trade the server sent"
        assert any("database" in str(r) for r in reasons), reasons
        with psycopg.connect(url) as conn:
            doubled = conn.execute(
                "SELECT order_id, market_event_id FROM trades WHERE run_id = %s"
                " GROUP BY order_id, market_event_id HAVING count(*) > 1",
                (run_id,),
            ).fetchall()
            fills = conn.execute(
                "SELECT side, price, ts, market_event_id FROM trades WHERE run_id = %s",
                (run_id,),
            ).fetchall()
            events = conn.execute(
                "SELECT service, kind FROM service_events WHERE run_id = %s", (run_id,)
            ).fetchall()
        assert doubled == [], "no fill stored twice"
        assert len(fills) >= 4, "the periodic strategy filled through the faults"
        on_tape = {t.event_id: t for t in trades}
        for side, price, ts, market_event_id in fills:
            trade = on_tape[market_event_id]  # a trade the server sent
            assert ts == trade.ts
            assert price >= trade.price if side == "buy" else price <= trade.price
        assert ("redis", "restart") in [tuple(e) for e in events]
    finally:
        bus.close()


def _count(bus: Any) -> int:
    """Trades on `market_data`; none while Redis is down (the supervisor restarts it)."""
    try:
        return len(published_trades(bus))
    except redis.ConnectionError:
        return 0


def _run_id_of(child: Any, url: str) -> str:
    """The live run's id, once its feed service is up (the run is in the server at `url`)."""
    deadline = time.monotonic() + 90
    while True:
        assert child.poll() is None, child.communicate()
        newest = "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1"
        try:
            with psycopg.connect(url) as conn:
                row = conn.execute(newest).fetchone()
        except psycopg.Error:  # not migrated yet
            row = None
        if row is not None and _service_pid(row[0], "feed") is not None:
            return str(row[0])
        assert time.monotonic() < deadline, "the feed service never started"
        time.sleep(0.1)


__all__ = ["_newest_run"]
