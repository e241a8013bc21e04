"""A live perpetual-futures run as services, fed by the local MEXC server's contract
feed over real sockets: the feed service publishes the contract's trades once each,
and every fill meets a trade the server sent (the tape's invariant, as for spot:
tests/services/test_live_services.py), with its margin held in the portfolio."""

from __future__ import annotations

import json
import signal
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.config import load_settings
from engine.home.database import open_store
from tests.mexc_server import MexcServer
from tests.mexc_server.data import TapeTrade
from tests.services.test_live_services import (
    STRATEGY,
    _run_id,
    _written,
    audited_bus,
    exchange,  # noqa: F401 - the fixture
    published_trades,
    run_redis,  # noqa: F401 - the fixture
    start_live,
    wait,
)
from tests.services.test_services_run import finish

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.services]


def test_a_live_futures_run_as_services_trades_the_contracts_tape(
    exchange: MexcServer,  # noqa: F811 - the fixture imported above
    claire_home: Path,
    tmp_path: Path,
    run_redis: str,  # noqa: F811 - the fixture imported above
) -> None:
    child = start_live(
        exchange, tmp_path, STRATEGY, "Scheduled", market="futures", symbols="XRPUSDT",
        capital="1000",
    )  # fmt: skip
    try:
        run_id = _run_id(child, claire_home)
        bus = audited_bus(run_redis, run_id)
        tape = exchange.futures_trades["XRP_USDT"]
        wait("150 contract trades", lambda: tape.cursor >= 150, child)
        # A contract deal carries no id: the trades are compared by what they say, every
        # one the server sent before the 150th's millisecond, as many times as it sent it.
        before = tape.released[149].time_ms
        sent = Counter(_said(t) for t in tape.released if t.time_ms < before)

        def published_before() -> Counter[tuple[Any, ...]]:
            return Counter(
                (int(t.ts.timestamp() * 1000), t.price, t.qty, t.side.value)
                for t in published_trades(bus)
                if t.ts.timestamp() * 1000 < before
            )

        wait("every trade", lambda: published_before() == sent, child)
        wait("the writer", lambda: _written(bus), child)
    finally:
        child.send_signal(signal.SIGTERM)
    code, out, err = finish(child, timeout=120)
    assert code == 128 + signal.SIGTERM, err
    body = json.loads(out)
    assert body["status"] == "stopped"
    assert published_before() == sent, "every trade sent once, none twice"
    trades = {t.event_id: t for t in published_trades(bus)}
    with open_store(load_settings(), claire_home) as (store, _):
        run = store.get_run(run_id)
        fills = store.db.fetch_all(
            "SELECT side, qty, price, ts, market_event_id FROM trades WHERE run_id = %(r)s",
            {"r": run_id},
        )
        margin = store.db.fetch_all(
            "SELECT sum(margin) AS margin FROM positions WHERE run_id = %(r)s", {"r": run_id}
        )
    assert run is not None and run.config["live"]["market"] == "futures"
    assert len(fills) >= 2, "the scheduled strategy must have filled"
    for fill in fills:
        trade = trades[fill["market_event_id"]]  # a contract trade the server sent
        price = Decimal(fill["price"])
        assert fill["ts"] == trade.ts
        assert price >= trade.price if fill["side"] == "buy" else price <= trade.price
        assert Decimal(fill["qty"]) <= trade.qty * Decimal("0.5")
    assert margin and margin[0]["margin"] is not None and Decimal(margin[0]["margin"]) > 0
    bus.close()


def _said(t: TapeTrade) -> tuple[Any, ...]:
    return (t.time_ms, Decimal(t.price), Decimal(t.amount), t.side)
