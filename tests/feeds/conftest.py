"""Fixtures for the live-feed tests: a local MEXC server on a real socket, and settings
that reach it through the CLAIRE_MEXC_* environment variables, as production would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from engine.events import Alert, Candle, Trade
from engine.feeds.exchange import FeedEvent, FeedSettings, LiveFeed
from tests.mexc_server import MexcServer

FAST = {
    "silence_threshold_s": 5.0,
    "watchdog_interval_s": 0.1,
    "reconnect_initial_ms": 50,
    "reconnect_max_ms": 400,
    "keepalive_ms": 2_000,
    "rest_timeout_ms": 3_000,
    "rest_rate_limit_ms": 5,  # ccxt weights kept, 10x faster: exchangeInfo (25) costs 0.125 s
}


@contextlib.asynccontextmanager
async def serving(
    started: Awaitable[MexcServer], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[MexcServer]:
    """A local MEXC server, started, reached through the CLAIRE_MEXC_* variables, and
    stopped after."""
    srv = await started
    for name, value in srv.env().items():
        monkeypatch.setenv(name, value)
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MexcServer]:
    async with serving(MexcServer().start(), monkeypatch) as srv:
        yield srv


def settings(symbols: str, **overrides: Any) -> FeedSettings:
    return FeedSettings.from_env(symbols, **{**FAST, **overrides})


async def collect(
    feed: LiveFeed,
    *,
    trades: int = 0,
    candles: int = 0,
    timeout_s: float = 15.0,
    on_event: Callable[[list[Trade | Candle | Alert]], Awaitable[None]] | None = None,
    until_alert: str | None = None,
) -> list[Trade | Candle | Alert]:
    """Events until `trades` trades and `candles` candles (or the alert rule) arrived."""
    out: list[Trade | Candle | Alert] = []

    async def run() -> None:
        async for event in feed.events():
            out.append(event)
            if on_event is not None:
                await on_event(out)
            if until_alert and isinstance(event, Alert) and event.rule == until_alert:
                return
            n_trades = sum(isinstance(e, Trade) for e in out)
            n_candles = sum(isinstance(e, Candle) for e in out)
            if not until_alert and n_trades >= trades and n_candles >= candles:
                return

    await asyncio.wait_for(run(), timeout_s)
    return out


async def collect_until(
    feed: LiveFeed,
    done: Callable[[list[FeedEvent]], bool],
    *,
    timeout_s: float = 15.0,
    on_event: Callable[[list[FeedEvent]], Awaitable[None]] | None = None,
) -> list[FeedEvent]:
    """Events until `done(events)` is true; TimeoutError after `timeout_s`."""
    out: list[FeedEvent] = []

    async def run() -> None:
        async for event in feed.events():
            out.append(event)
            if on_event is not None:
                await on_event(out)
            if done(out):
                return

    await asyncio.wait_for(run(), timeout_s)
    return out


async def collect_for(feed: LiveFeed, seconds: float) -> list[FeedEvent]:
    """Every event that arrives within `seconds`."""
    out: list[FeedEvent] = []

    async def run() -> None:
        async for event in feed.events():
            out.append(event)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), seconds)
    return out
