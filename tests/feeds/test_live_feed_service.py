"""The live feed service against the local MEXC server, onto a real embedded Redis:
market times closed by the exchange's clock, candle closes as market times of their
own, and a feed stopped dead and started again that publishes every trade the server
sent exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.bus.redis import RedisBus
from engine.config import load_settings
from engine.events import Alert, Candle, Event, Trade, Watermark, derive_id, from_json
from engine.feeds.exchange import LiveFeed
from engine.runtime.redis import EmbeddedRedis
from engine.services.live_feed import LiveFeedService
from engine.services.live_run import WARMUP_KEY, save_warmup, warm_up
from engine.services.market_times import to_ms
from engine.services.worker import build_components
from engine.signal.base import Intent, Strategy, StrategyContext
from tests.feeds.conftest import settings
from tests.mexc_server import MexcServer

pytestmark = pytest.mark.integration

INTERVAL_MS = 100


@pytest.fixture
def bus(claire_home: Path) -> Iterator[RedisBus]:
    server = EmbeddedRedis(claire_home)
    bus = RedisBus(server.start(), prefix="claire:live-test")
    try:
        yield bus
    finally:
        bus.close()
        server.stop()


def stream(bus: RedisBus) -> list[Event]:
    return [from_json(f[b"e"]) for _, f in bus.redis.xrange(bus.key("market_data"))]


def groups(events: list[Event]) -> list[tuple[list[Event], Watermark]]:
    out: list[tuple[list[Event], Watermark]] = []
    current: list[Event] = []
    for event in events:
        if isinstance(event, Watermark):
            out.append((current, event))
            current = []
        else:
            current.append(event)
    assert not current, "every market time ends with its watermark"
    return out


def service(bus: RedisBus, symbols: str, **overrides: Any) -> LiveFeedService:
    feed = LiveFeed(settings(symbols, **overrides))
    return LiveFeedService(bus, feed, {}, watermark_ms=INTERVAL_MS, funding_default_rate=Decimal(0))


async def run_until(svc: LiveFeedService, done: Callable[[], bool], timeout_s: float) -> None:
    """Run the service until `done()`, then stop it as a crash would (no goodbye)."""
    task = asyncio.create_task(svc.run(lambda: False))
    try:
        async with asyncio.timeout(timeout_s):
            while not done():
                await asyncio.sleep(0.05)
                if task.done():
                    task.result()
    finally:
        task.cancel()
        async with asyncio.timeout(10):  # a lost cancellation fails, never hangs, the test
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await svc.feed.close()


def tape_ids(server: MexcServer) -> list[str]:
    released = server.spot_trades["XRPETH"].released
    return [
        derive_id("mkt", "mexc", "spot", "XRPETH", "trade", f"id:{t.trade_id}") for t in released
    ]


def tape_done(server: MexcServer) -> bool:
    tape = server.spot_trades["XRPETH"]
    return tape.started and tape.cursor >= tape.end


async def test_trades_go_out_in_market_times_closed_by_the_exchange_clock(
    server: MexcServer, bus: RedisBus
) -> None:
    server.quotes = True
    svc = service(bus, "XRPETH", candle_timeframe=None)
    quiet: list[int] = []

    def done() -> bool:
        if tape_done(server):
            quiet.append(0)
        return len(quiet) > 30  # 1.5 s of a quiet market after the tape

    await run_until(svc, done, 30)
    published = groups(stream(bus))
    closes = [to_ms(w.ts) for _, w in published]
    assert all(c % INTERVAL_MS == 0 for c in closes)
    assert closes == sorted(set(closes)), "market times never go back nor repeat"
    for events, mark in published:
        assert all(e.ts <= mark.ts for e in events), "an event only in a market time at or after it"
    trades = [e.event_id for events, _ in published for e in events if isinstance(e, Trade)]
    assert sorted(trades) == sorted(tape_ids(server)) and len(trades) == len(set(trades))
    # The quiet tail: the exchange's clock runs at the wall's rate, a watermark each interval.
    last_trade = max(to_ms(e.ts) for events, _ in published for e in events)
    tail = [c for c in closes if c > last_trade + 300]
    assert len(tail) >= 5
    assert {b - a for a, b in itertools.pairwise(tail)} == {INTERVAL_MS}
    assert bus.redis.get(bus.key(WARMUP_KEY)) is not None


async def test_candles_that_end_together_close_a_market_time_of_their_own(
    server: MexcServer, bus: RedisBus
) -> None:
    svc = service(bus, "ETHBTC,LTCBTC", candle_timeframe="5m", trades=False, book_ticker=False)

    def candles_out() -> bool:
        return sum(isinstance(e, Candle) for e in stream(bus)) >= 10

    await run_until(svc, candles_out, 30)
    seen = 0
    for events, mark in groups(stream(bus)):
        candles = [e for e in events if isinstance(e, Candle)]
        if not candles:
            continue
        seen += len(candles)
        assert {c.ts for c in candles} == {candles[0].ts}, "one close per market time"
        assert events[-len(candles) :] == candles, "the candles close their market time"
        assert mark.ts >= candles[0].ts
        assert [c.symbol for c in candles] == sorted(c.symbol for c in candles)
    assert seen >= 10


@pytest.mark.parametrize("market_ends_while_away", [False, True])
async def test_a_feed_stopped_dead_and_started_again_publishes_each_trade_once(
    server: MexcServer, bus: RedisBus, market_ends_while_away: bool
) -> None:
    server.trades_per_tick = 2
    first = service(bus, "XRPETH", candle_timeframe=None)

    def some_trades() -> bool:
        return sum(isinstance(e, Trade) for e in stream(bus)) >= 40

    await run_until(first, some_trades, 30)  # cancelled mid-stream: its queue is lost
    await asyncio.sleep(0.5)  # the tape plays on while no feed runs
    for _ in range(600 if market_ends_while_away else 0):
        if tape_done(server):
            break  # no live trade will come to start a backfill
        await asyncio.sleep(0.05)
    before = len(server.spot_trades["XRPETH"].released)
    second = service(bus, "XRPETH", candle_timeframe=None)
    await run_until(second, lambda: tape_done(server) and _all_out(bus, server), 40)
    trades = [e.event_id for e in stream(bus) if isinstance(e, Trade)]
    assert len(trades) == len(set(trades)), "no trade published twice"
    assert sorted(trades) == sorted(tape_ids(server)), "none the server sent is missing"
    assert before > 40 and second.feed.stats.backfilled > 0


def _all_out(bus: RedisBus, server: MexcServer) -> bool:
    published = {e.event_id for e in stream(bus) if isinstance(e, Trade)}
    return set(tape_ids(server)) <= published


def tape_contents(server: MexcServer) -> list[tuple[int, Decimal, Decimal, str]]:
    return sorted(
        (t.time_ms, Decimal(t.price).normalize(), Decimal(t.amount).normalize(), t.side)
        for t in server.futures_trades["XRP_USDT"].released
    )


def trade_contents(events: list[Event]) -> list[tuple[int, Decimal, Decimal, str]]:
    return sorted(
        (to_ms(e.ts), e.price.normalize(), e.qty.normalize(), e.side.value)
        for e in events
        if isinstance(e, Trade)
    )


async def test_a_perpetual_feed_stopped_dead_continues_its_deals_without_ids_exactly(
    server: MexcServer, bus: RedisBus
) -> None:
    """MEXC's futures deals carry no id: the restarted feed must key them as before."""
    tape = server.futures_trades["XRP_USDT"]
    tape.limit = 120  # 1 deal every 50 ms: the REST backfill (latest 100) covers the gap
    server.tick_s, server.trades_per_tick = 0.05, 1
    overrides: dict[str, Any] = {"market": "futures", "candle_timeframe": None}
    first = service(bus, "XRPUSDT", rest_rate_limit_ms=1, **overrides)

    def some() -> bool:
        return sum(isinstance(e, Trade) for e in stream(bus)) >= 30

    await run_until(first, some, 30)
    second = service(bus, "XRPUSDT", rest_rate_limit_ms=1, **overrides)

    def all_out() -> bool:
        return tape.cursor >= tape.end and len(trade_contents(stream(bus))) >= tape.end

    with contextlib.suppress(TimeoutError):
        await run_until(second, all_out, 30)
    events = stream(bus)
    ids = [e.event_id for e in events if isinstance(e, Trade)]
    assert len(ids) == len(set(ids))
    assert trade_contents(events) == tape_contents(server), "each deal once, none missing"
    assert second.feed.stats.backfilled > 0


async def test_funding_is_settled_when_market_time_passes_a_settle_time(
    server: MexcServer,
) -> None:
    from datetime import UTC, datetime, timedelta

    from engine.kernel.live import live_specs
    from engine.services.live_feed import LiveFundingClock

    async with LiveFeed(settings("XRPUSDT", market="futures", rest_rate_limit_ms=1)) as feed:
        specs = await live_specs(feed)
        clock = LiveFundingClock(feed, specs, Decimal("0.0001"))
        at = datetime(2024, 5, 1, 8, tzinfo=UTC)
        step = timedelta(milliseconds=INTERVAL_MS)
        assert await clock.due(None, at) == []  # nothing behind the first market time
        assert await clock.due(at - 2 * step, at - step) == []
        (settled,) = await clock.due(at - step, at)
        assert settled.ts == at and settled.symbol == "XRPUSDT"
        assert settled.rate == Decimal(server.funding[-1].rate)
        assert await clock.due(at, at + step) == []  # once


async def test_a_silent_symbol_raises_the_data_stop_alert_and_market_time_goes_on(
    server: MexcServer, bus: RedisBus
) -> None:
    svc = service(bus, "XRPETH", candle_timeframe=None, silence_threshold_s=0.6)

    def alerts() -> list[Event]:
        return [from_json(f[b"e"]) for _, f in bus.redis.xrange(bus.key("alerts"))]

    def silenced() -> bool:
        if sum(isinstance(e, Trade) for e in stream(bus)) >= 20:
            server.faults.silent = True
        return any(getattr(a, "rule", "") == "data_stop" for a in alerts())

    await run_until(svc, silenced, 20)
    server.faults.silent = False
    (alert,) = [a for a in alerts() if isinstance(a, Alert) and a.rule == "data_stop"]
    assert isinstance(alert, Alert) and alert.detail["symbol"] == "XRPETH"
    published = groups(stream(bus))
    last_trade = max(e.ts for events, _ in published for e in events if isinstance(e, Trade))
    quiet = [w for events, w in published if w.ts > last_trade and not events]
    assert len(quiet) >= 3, "watermarks go on while the symbol is silent"


class CountingCandles(Strategy):
    name = "test-counting"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_candle(self, candle: Candle, context: StrategyContext) -> Iterable[Intent]:
        self.seen.append(candle.event_id)
        return ()


async def test_the_signal_service_warms_up_on_the_candles_the_feed_kept(
    server: MexcServer, bus: RedisBus
) -> None:
    async with LiveFeed(settings("ETHBTC,LTCBTC", candle_timeframe="5m")) as feed:
        specs = {s: m.symbol_spec() for s, m in (await feed.specs()).items()}
        candles = await feed.warmup(limit=20)
    assert save_warmup(bus, candles)
    assert not save_warmup(bus, candles[:3]), "kept once: a restarted feed keeps the first"
    strategy = CountingCandles()
    parts = build_components(load_settings(), specs, strategy, lambda event: None)
    assert warm_up("signal", bus, parts, lambda: False) == len(candles) == 40
    assert strategy.seen == [c.event_id for c in candles]
    assert warm_up("execution", bus, parts, lambda: False) == 0  # only signal and risk


def _history_requests(server: MexcServer) -> int:
    return sum(r.path in ("/api/v3/trades", "/api/v3/aggTrades") for r in server.requests)


async def test_a_feed_restarted_as_the_market_goes_quiet_publishes_its_last_trades(
    server: MexcServer, bus: RedisBus
) -> None:
    """Trades made between a restarted feed's REST catch-up and its subscription come in
    no live batch when the market goes quiet right then (here the tape ends): the feed
    asks REST once more rather than wait for a batch that never comes."""
    server.trades_per_tick = 2
    tape = server.spot_trades["XRPETH"]
    first = service(bus, "XRPETH", candle_timeframe=None)
    await run_until(first, lambda: sum(isinstance(e, Trade) for e in stream(bus)) >= 40, 30)
    tape.started = False  # the market pauses while no feed runs
    looked = _history_requests(server)
    made: list[int] = []

    def last_trades_out() -> bool:
        if not made and _history_requests(server) > looked:  # the catch-up asked REST
            # The market's last four trades, made now and carried by no push: for this
            # feed they happened before it listened.
            tape.limit = tape.cursor + 4
            server.faults.skip_next_trades = 4
            tape.started = True
            made.append(tape.limit)
        return bool(made) and tape_done(server) and _all_out(bus, server)

    second = service(bus, "XRPETH", candle_timeframe=None)
    await run_until(second, last_trades_out, 30)
    trades = [e.event_id for e in stream(bus) if isinstance(e, Trade)]
    assert len(trades) == len(set(trades)), "no trade published twice"
    assert sorted(trades) == sorted(tape_ids(server)), "none the server sent is missing"
    assert server.faults.skip_next_trades == 0  # the four were made, and never pushed
