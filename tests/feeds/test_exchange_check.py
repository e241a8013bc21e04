"""Preflight check against the local server, and against a port nobody listens on."""

from __future__ import annotations

import socket

import pytest

from engine.feeds.exchange import FeedSettings, check_exchange
from tests.feeds.conftest import settings
from tests.mexc_server import MexcServer

pytestmark = pytest.mark.integration


async def test_reachable_with_symbols_and_clock_skew(server: MexcServer) -> None:
    server.faults.clock_offset_ms = 1_500  # the exchange's clock runs 1.5 s ahead
    result = await check_exchange(settings("XRPETH,BTCUSDT,NOPEUSDT"))
    assert result.reachable and result.error is None
    assert result.missing_symbols == ("NOPEUSDT",) and not result.ok
    assert result.clock_skew_ms is not None and result.round_trip_ms is not None
    # The server read its clock somewhere within the request, so the estimate taken at
    # the request's middle is off by at most half the round trip (and a millisecond
    # of rounding on each side).
    assert abs(result.clock_skew_ms - 1_500) <= result.round_trip_ms / 2 + 2
    assert result.round_trip_ms < 1_000


async def test_futures_check_uses_contract_ping(server: MexcServer) -> None:
    result = await check_exchange(settings("XRPUSDT", market="futures"))
    assert result.ok and result.clock_skew_ms is not None and result.round_trip_ms is not None
    assert abs(result.clock_skew_ms) <= result.round_trip_ms / 2 + 2  # no offset set
    assert any(r.path == "/api/v1/contract/ping" for r in server.requests)


async def test_unreachable_exchange_is_reported_not_raised() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"CLAIRE_MEXC_SPOT_REST_URL": f"http://127.0.0.1:{port}"}
    cfg = FeedSettings.from_env("BTCUSDT", env=env, rest_timeout_ms=1_000,
                                reconnect_initial_ms=10, reconnect_max_ms=20)  # fmt: skip
    result = await check_exchange(cfg)
    assert not result.reachable and result.clock_skew_ms is None
    assert result.error
