"""Live candles close on the exchange's clock, leave in groups, and heartbeats fill the
quiet: the spot feed against the local server, over real sockets.

The server's clock follows the candles it plays (5-minute windows, one push every
20 ms), so "the exchange's clock passed the window's end by the grace" happens in
wall time only once the server stops pushing.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise

import pytest

from engine.events import Candle, Heartbeat, derive_id
from engine.feeds.exchange import FeedEvent, LiveFeed
from tests.feeds.conftest import collect_for, collect_until, settings
from tests.feeds.test_live_feed_spot import assert_candles_match_file
from tests.mexc_server import MexcServer
from tests.mexc_server.data import TapeCandle, load_candles

pytestmark = pytest.mark.integration

GRACE_MS = 300
ETH = load_candles("market/ETH_BTC-5m.csv")
LTC = load_candles("market/LTC_BTC-5m.csv")
LAST_WINDOW = 79  # the server plays windows 50..79, then stops


def candles_feed(symbols: str) -> LiveFeed:
    return LiveFeed(
        settings(symbols, trades=False, candle_timeframe="5m", candle_close_grace_ms=GRACE_MS)
    )


def candles_of(events: list[FeedEvent], symbol: str | None = None) -> list[Candle]:
    return [e for e in events if isinstance(e, Candle) and symbol in (None, e.symbol)]


def open_ms(candle: Candle) -> int:
    return int(candle.open_time.timestamp() * 1000)


def values(candle: Candle) -> tuple[Decimal, ...]:
    return (candle.open, candle.high, candle.low, candle.close, candle.volume)


def row_values(row: TapeCandle) -> tuple[Decimal, ...]:
    return tuple(Decimal(v) for v in (row.open, row.high, row.low, row.close, row.volume))


async def test_last_window_closes_on_the_exchange_clock_without_a_later_push(
    server: MexcServer,
) -> None:
    arrived: dict[int, float] = {}

    async def note_arrival(events: list[FeedEvent]) -> None:
        if isinstance(events[-1], Candle):
            arrived[open_ms(events[-1])] = time.monotonic()

    def done(events: list[FeedEvent]) -> bool:
        candles = candles_of(events)
        return bool(candles) and open_ms(candles[-1]) == ETH[LAST_WINDOW].open_time_ms

    async with candles_feed("ETHBTC") as feed:
        events = await collect_until(feed, done, on_event=note_arrival)
        stats = feed.stats
    candles = candles_of(events)
    # The last window's candle is exact: its final push came, then nothing at all.
    assert_candles_match_file(candles, ETH)
    assert values(candles[-1]) == row_values(ETH[LAST_WINDOW])
    assert candles[-1].ts == datetime.fromtimestamp(ETH[LAST_WINDOW + 1].open_time_ms / 1000, UTC)
    assert stats.candles_closed_by_clock == 1
    # Window 78 closed when 79's first push came; 79 waited for its end plus the grace.
    waited = arrived[ETH[LAST_WINDOW].open_time_ms] - arrived[ETH[LAST_WINDOW - 1].open_time_ms]
    assert waited >= (GRACE_MS - 30) / 1000


async def test_update_after_the_close_is_counted_and_the_first_candle_stays_final(
    server: MexcServer,
) -> None:
    last = ETH[LAST_WINDOW]

    def done(events: list[FeedEvent]) -> bool:
        candles = candles_of(events)
        return bool(candles) and open_ms(candles[-1]) == last.open_time_ms

    async with candles_feed("ETHBTC") as feed:
        await collect_until(feed, done)
        late = TapeCandle(last.open_time_ms, last.open, last.high, last.low, last.low, "1")
        await server.push_kline(("ETHBTC", "Min5"), late, futures=False)
        for _ in range(100):  # bounded: the push is seen within a second
            if feed.stats.late_candle_updates:
                break
            await collect_for(feed, 0.01)
        after = await collect_for(feed, 0.3)
        stats = feed.stats
    assert stats.late_candle_updates == 1
    assert candles_of(after) == []  # no second candle for the window


async def test_symbols_close_together_and_a_thin_one_closes_on_the_clock_in_its_group(
    server: MexcServer,
) -> None:
    muted: list[int] = []

    async def mute_ltc_after_three_groups(events: list[FeedEvent]) -> None:
        if not muted and len(candles_of(events, "LTCBTC")) == 3:
            server.faults.muted_klines = {"LTCBTC"}  # LTC's pushes stop; ETH's go on
            muted.append(len(events))

    def done(events: list[FeedEvent]) -> bool:
        return bool(muted) and len(candles_of(events[muted[0] :], "ETHBTC")) >= 6

    async with candles_feed("ETHBTC,LTCBTC") as feed:
        events = await collect_until(feed, done, on_event=mute_ltc_after_three_groups)
        stats = feed.stats
    candles = candles_of(events)
    eth, ltc = candles_of(events, "ETHBTC"), candles_of(events, "LTCBTC")
    assert_candles_match_file(eth, ETH)
    # LTC's candles are in groups with ETH's, right after them (sorted by symbol).
    for candle in ltc:
        at = candles.index(candle)
        assert at > 0 and candles[at - 1].symbol == "ETHBTC" and candles[at - 1].ts == candle.ts
    # LTC's last window had no later push: it closed on the clock with the values it
    # was last pushed, in time for its group.
    last_sent = server.last_kline_sent[("LTCBTC", "Min5")]
    assert open_ms(ltc[-1]) == last_sent.open_time_ms
    assert values(ltc[-1]) == row_values(last_sent)
    assert stats.candles_closed_by_clock >= 1
    # Every LTC candle before it is the file's, with no hole.
    rows = {r.open_time_ms: r for r in LTC}
    opens = [open_ms(c) for c in ltc]
    assert opens == [opens[0] + 300_000 * i for i in range(len(opens))]
    assert all(values(c) == row_values(rows[open_ms(c)]) for c in ltc[:-1])
    # ETH's later candles leave alone, on time, without waiting for LTC each window.
    assert all(c.symbol == "ETHBTC" for c in candles[candles.index(ltc[-1]) + 1 :])


async def test_heartbeats_fill_the_quiet_between_candles(server: MexcServer) -> None:
    def done(events: list[FeedEvent]) -> bool:
        return len(candles_of(events)) >= 8

    async with candles_feed("ETHBTC") as feed:
        events = await collect_until(feed, done)
        stats = feed.stats
    beats = [e for e in events if isinstance(e, Heartbeat)]
    # Each window's last push changes nothing the pipeline sees: a heartbeat says the
    # feed is alive. At most one per second of exchange time after any market event.
    assert len(beats) >= 7 and stats.heartbeats == len(beats)
    market = [e for e in events if isinstance(e, Candle | Heartbeat)]
    for before, beat in pairwise(market):
        if isinstance(beat, Heartbeat):
            assert (beat.ts - before.ts).total_seconds() >= 1
    for beat in beats:
        at_ms = int(beat.ts.timestamp() * 1000)
        assert beat.symbol == "ETHBTC" and beat.cause_id is None
        assert beat.event_id == derive_id("mkt", "mexc", "spot", "ETHBTC", "heartbeat", at_ms)
