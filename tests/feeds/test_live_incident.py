"""A data-stop incident on a live run: the feed drops its sockets, reconnects and
backfills, through the run's control channel; and the feed's reconnect on its own."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from engine.config import load_settings
from engine.events import Alert, Candle, Trade
from engine.feeds.exchange import LiveFeed
from tests.cli.support import invoke
from tests.feeds.conftest import collect, serving, settings
from tests.mexc_server import MexcServer
from tests.mexc_server.data import load_trades

pytestmark = pytest.mark.integration


async def test_reconnect_drops_the_sockets_and_loses_or_doubles_nothing(
    server: MexcServer,
) -> None:
    dropped: list[int] = []

    async def reconnect_once(events: list[Trade | Candle | Alert]) -> None:
        if not dropped and sum(isinstance(e, Trade) for e in events) >= 80:
            dropped.append(feed.reconnect("operator: data-stop incident"))

    async with LiveFeed(settings("XRPETH", candle_timeframe=None)) as feed:
        events = await collect(feed, trades=300, on_event=reconnect_once)
        stats = feed.stats
    trades = [e for e in events if isinstance(e, Trade)]
    assert [t.trade_id for t in trades] == [str(r.trade_id) for r in load_trades()[:300]]
    assert dropped == [1] and stats.reconnects == 1 and server.connections_total == 2


@pytest.fixture
async def endless(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MexcServer]:
    """A server whose tape lasts (12,000 trades at 100 a second), for a run to watch."""
    async with serving(MexcServer(tick_s=0.05, trade_limit=None).start(), monkeypatch) as srv:
        yield srv


async def test_a_data_stop_incident_reconnects_a_running_live_run(
    endless: MexcServer, claire_home: Path
) -> None:
    from engine.home.database import open_store

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "claire_cli.main", "papertest", "start", "--exchange", "mexc",
        "--market", "spot", "--symbols", "XRPETH", "--timeframe", "none", "--json",
        env={**os.environ, **endless.env()},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip

    def events_written() -> int:
        try:
            with open_store(load_settings(), claire_home) as (store, _):
                row = store.db.fetch_one("SELECT max(market_events) AS n FROM run_checkpoints")
                return int(row["n"] or 0) if row else 0
        except Exception:
            return 0

    try:
        deadline = asyncio.get_running_loop().time() + 60
        while await asyncio.to_thread(events_written) < 20:
            assert proc.returncode is None, await proc.communicate()
            assert asyncio.get_running_loop().time() < deadline, "the live run never started"
            await asyncio.sleep(0.2)
        before = endless.connections_total
        result = await asyncio.to_thread(
            invoke, "incident", "open", "data-stop", "--note", "quiet feed", "--json"
        )
        assert result.exit_code == 0, result.output
        body: dict[str, Any] = json.loads(result.stdout)
        while endless.connections_total == before:  # the feed's new socket
            assert asyncio.get_running_loop().time() < deadline, "no new connection"
            await asyncio.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 143, err.decode()
    action = body["detail"]["first_action"]
    assert action["taken"] is True and action["detail"]["sockets"] >= 1, action
    assert "reconnects, resubscribes and backfills" in action["result"]
    assert endless.connections_total > before
    with open_store(load_settings(), claire_home) as (store, _):
        [command] = store.db.fetch_all("SELECT command, status, note FROM run_commands", ())
    assert command == {
        "command": "reconnect",
        "status": "done",
        "note": f"incident {body['incident_id']}: quiet feed",
    }
