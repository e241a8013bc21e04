"""Preflight's data-source check against the local exchange: reachable, symbols, clock skew."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from engine.config import load_settings
from engine.feeds.exchange import FeedSettings
from engine.ops.preflight import CheckStatus, ExchangeSource, PreflightContext, check_data_source
from tests.feeds.conftest import settings
from tests.mexc_server import MexcServer

pytestmark = pytest.mark.integration


async def checked(feed: FeedSettings, home: Path, **chosen: str) -> tuple[CheckStatus, str, str]:
    ctx = PreflightContext(load_settings(**chosen), home, ExchangeSource(feed))
    # The check runs its own event loop, as it does under `claire preflight`.
    result = await asyncio.to_thread(check_data_source, ctx)
    return result.status, result.value, result.fix


async def test_the_exchange_answers_lists_the_symbols_and_keeps_time(
    server: MexcServer, claire_home: Path
) -> None:
    status, value, _ = await checked(settings("XRPETH"), claire_home)
    assert status is CheckStatus.OK and "mexc spot answers in" in value
    assert "1 symbols listed" in value


async def test_a_missing_symbol_and_a_clock_far_off_are_no_go(
    server: MexcServer, claire_home: Path
) -> None:
    status, value, fix = await checked(settings("XRPETH,NOPEUSDT"), claire_home)
    assert status is CheckStatus.FAIL and value == "mexc spot does not list NOPEUSDT"
    assert "--symbols" in fix
    server.faults.clock_offset_ms = 2_500
    status, value, fix = await checked(settings("XRPETH"), claire_home)
    assert status is CheckStatus.FAIL and "beyond 1000 ms" in value and "chrony" in fix
    status, _, _ = await checked(settings("XRPETH"), claire_home, max_clock_skew_ms="5000")
    assert status is CheckStatus.OK


async def test_an_unreachable_exchange_is_no_go(claire_home: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"CLAIRE_MEXC_SPOT_REST_URL": f"http://127.0.0.1:{port}"}
    feed = FeedSettings.from_env("BTCUSDT", env=env, rest_timeout_ms=1_000,
                                 reconnect_initial_ms=10, reconnect_max_ms=20)  # fmt: skip
    status, value, fix = await checked(feed, claire_home)
    assert status is CheckStatus.FAIL and value.startswith("mexc spot is unreachable")
    assert "CLAIRE_MEXC_*" in fix


async def test_a_clock_skew_reads_in_seconds_and_blames_no_one(
    server: MexcServer, claire_home: Path
) -> None:
    server.faults.clock_offset_ms = 12_500
    status, value, fix = await checked(settings("XRPETH"), claire_home)
    assert status is CheckStatus.FAIL
    skew = value.split("clock skew ", 1)[1].split(" s", 1)[0]
    assert skew.startswith("+12.") and len(skew.split(".")[1]) == 3, value
    assert "(the exchange's clock is ahead)" in value
    assert "synchronise this machine's clock" not in fix
    assert "this machine's clock is synchronised" in fix and "exchange's status" in fix
