"""A spot feed of more symbols than one MEXC connection takes (30 channels, three a
symbol): its channels are spread over connections, against the local server that
refuses a connection's 31st subscription as MEXC does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.feeds.exchange import FeedEvent, LiveFeed
from engine.feeds.exchange.client import ChannelShards
from tests.feeds.conftest import collect_until, serving, settings
from tests.mexc_server.synthetic import PacedMexcServer

pytestmark = pytest.mark.integration

SYMBOLS = 12  # 36 channels: two connections


@pytest.fixture
async def paced(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[PacedMexcServer]:
    server = PacedMexcServer(SYMBOLS, minutes=2)
    async with serving(server.start(), monkeypatch):
        yield server


async def test_twelve_symbols_subscribe_on_two_connections_and_all_are_heard(
    paced: PacedMexcServer,
) -> None:
    assert paced.max_subscriptions == 30  # as MEXC
    names = paced.names
    heard: set[str] = set()

    def every_symbol_heard(events: list[FeedEvent]) -> bool:
        # a trade, a quote, a candle or a heartbeat: every minute opens with a kline push
        heard.update(str(getattr(e, "symbol", "")) for e in events[-1:])
        return heard >= set(names)

    quiet_ok = settings(",".join(names), candle_timeframe="1m", silence_threshold_s=300.0)
    async with LiveFeed(quiet_ok) as feed:
        await collect_until(feed, every_symbol_heard, timeout_s=90)
        stats = feed.stats
    assert heard >= set(names)
    channels = paced.subscriptions
    assert len(channels) == len(set(channels)) == 3 * SYMBOLS  # none refused, none twice
    assert paced.connections_total == 2
    assert stats.reconnects == 0


def test_channels_fill_each_connection_before_the_next_and_keep_it() -> None:
    shards = ChannelShards(3)
    base = "wss://host/ws"
    urls = [shards.url(base, f"c{n}") for n in range(7)]
    assert urls == [base] * 3 + [f"{base}#claire-1"] * 3 + [f"{base}#claire-2"]
    assert shards.url(base, "c4") == f"{base}#claire-1"  # a resubscription stays put
    assert shards.used == [3, 3, 1]
