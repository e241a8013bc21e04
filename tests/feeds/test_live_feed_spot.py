"""The live feed against the local MEXC server, spot market, over real sockets."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from engine.errors import ExchangeError
from engine.events import Alert, Candle, Side, Trade
from engine.feeds.exchange import LiveFeed, SubscriptionRefusedError
from tests.feeds.conftest import collect, settings
from tests.mexc_server import MexcServer
from tests.mexc_server.data import TapeCandle, TapeTrade, load_candles, load_trades

pytestmark = pytest.mark.integration


def assert_same_trades(events: list[Trade], tape: tuple[TapeTrade, ...]) -> None:
    assert len(events) == len(tape)
    for event, row in zip(events, tape, strict=True):
        assert event.symbol == "XRPETH"
        assert event.trade_id == str(row.trade_id)
        assert event.price == Decimal(row.price) and str(event.price) == row.price
        assert event.qty == Decimal(row.amount)
        assert event.side is Side(row.side)
        assert event.ts == datetime.fromtimestamp(row.time_ms / 1000, UTC)
        assert int(event.ts.timestamp() * 1000) == row.time_ms


def trades_of(events: list[Trade | Candle | Alert]) -> list[Trade]:
    return [e for e in events if isinstance(e, Trade)]


async def test_trades_become_events_with_exact_values(server: MexcServer) -> None:
    async with LiveFeed(settings("XRPETH", candle_timeframe=None)) as feed:
        events = await collect(feed, trades=300)
    assert_same_trades(trades_of(events), load_trades()[:300])
    assert feed.stats.duplicates_dropped == 0 and feed.stats.malformed_frames == 0
    assert len({e.event_id for e in trades_of(events)}) == 300


async def test_dropped_connection_reconnects_without_loss_or_doubles(server: MexcServer) -> None:
    server.faults.overlap_on_subscribe = 10  # the resubscription re-sends recent trades
    dropped = False

    async def drop_once(events: list[Trade | Candle | Alert]) -> None:
        nonlocal dropped
        if not dropped and len(trades_of(events)) >= 80:
            dropped = True
            assert await server.drop_connections() == 1

    async with LiveFeed(settings("XRPETH", candle_timeframe=None)) as feed:
        events = await collect(feed, trades=300, on_event=drop_once)
        stats = feed.stats
    assert_same_trades(trades_of(events), load_trades()[:300])
    assert stats.reconnects == 1
    assert server.connections_total == 2
    assert server.subscriptions.count("spot@public.aggre.deals.v3.api.pb@100ms@XRPETH") == 2
    assert stats.duplicates_dropped >= 1  # the re-sent overlap was seen and dropped
    assert stats.backfilled > 0  # trades played while disconnected came over REST


async def test_trade_id_gap_is_backfilled_over_rest(server: MexcServer) -> None:
    async def make_gap(events: list[Trade | Candle | Alert]) -> None:
        if len(events) == 50:
            server.faults.skip_next_trades = 23

    async with LiveFeed(settings("XRPETH", candle_timeframe=None)) as feed:
        events = await collect(feed, trades=300, on_event=make_gap)
        stats = feed.stats
    assert_same_trades(trades_of(events), load_trades()[:300])
    # The REST window includes the trade that revealed the gap, so at least 23.
    assert stats.backfilled >= 23
    assert stats.gaps_detected >= 1
    assert any(r.path == "/api/v3/aggTrades" for r in server.requests)


async def test_malformed_frame_is_skipped_counted_and_its_trades_recovered(
    server: MexcServer,
) -> None:
    async def corrupt(events: list[Trade | Candle | Alert]) -> None:
        if len(events) == 40:
            server.faults.malformed_next = 1

    async with LiveFeed(settings("XRPETH", candle_timeframe=None)) as feed:
        events = await collect(feed, trades=300, on_event=corrupt)
        stats = feed.stats
    assert stats.malformed_frames == 1
    assert stats.reconnects == 0  # skipped in place: the socket stayed up
    assert_same_trades(trades_of(events), load_trades()[:300])
    assert stats.backfilled >= 5  # the lost frame carried one tick of 5 trades


async def test_silence_raises_a_data_stop_alert_after_the_threshold(server: MexcServer) -> None:
    silenced_at: list[float] = []

    async def go_silent(events: list[Trade | Candle | Alert]) -> None:
        if len(events) == 20:
            server.faults.silent = True
            silenced_at.append(time.monotonic())

    cfg = settings("XRPETH", candle_timeframe=None, silence_threshold_s=0.6)
    async with LiveFeed(cfg) as feed:
        events = await collect(feed, until_alert="data_stop", on_event=go_silent, timeout_s=10)
        elapsed = time.monotonic() - silenced_at[0]
        server.faults.silent = False
        resumed = await collect(feed, until_alert="data_resumed", timeout_s=10)
    alert = events[-1]
    assert isinstance(alert, Alert) and alert.rule == "data_stop"
    assert alert.severity.value == "critical"
    assert alert.detail["symbol"] == "XRPETH"
    assert "XRPETH" in alert.message and "0.6 s" in alert.message
    assert 0.6 <= elapsed < 3.0
    assert float(alert.detail["silent_s"]) >= 0.6
    assert isinstance(resumed[-1], Alert) and resumed[-1].severity.value == "info"
    # Trades after the silence continue the sequence without a hole or a double.
    everything = trades_of(events) + trades_of(resumed)
    ids = [int(t.trade_id) for t in everything]
    assert ids == list(range(ids[0], ids[0] + len(ids)))


async def test_429_waits_for_retry_after_then_succeeds(server: MexcServer) -> None:
    server.faults.rate_limit_next = 1
    server.faults.retry_after_s = 1
    async with LiveFeed(settings("XRPETH", candle_timeframe=None)) as feed:
        await collect(feed, trades=10)
        stats = feed.stats
    assert stats.rate_limited == 1
    limited = [r for r in server.requests if r.status == 429]
    assert len(limited) == 1
    after = [r for r in server.requests if r.at > limited[0].at]
    assert after and after[0].path == limited[0].path and after[0].status == 200
    assert after[0].at - limited[0].at >= 1.0


async def test_418_is_treated_as_a_rate_limit_too(server: MexcServer) -> None:
    server.faults.rate_limit_next = 1
    server.faults.rate_limit_status = 418
    server.faults.retry_after_s = 1
    async with LiveFeed(settings("XRPETH", candle_timeframe=None)) as feed:
        await collect(feed, trades=5)
        assert feed.stats.rate_limited == 1
    limited = next(r for r in server.requests if r.status == 418)
    assert min(r.at for r in server.requests if r.at > limited.at) - limited.at >= 1.0


async def test_refused_subscription_is_a_clear_error(server: MexcServer) -> None:
    server.faults.refuse = {"XRPETH"}
    async with LiveFeed(settings("XRPETH", candle_timeframe=None)) as feed:
        with pytest.raises(SubscriptionRefusedError) as info:
            await collect(feed, trades=1, timeout_s=5)
    message = str(info.value)
    assert isinstance(info.value, ExchangeError)
    assert "spot@public.aggre.deals.v3.api.pb@100ms@XRPETH" in message
    assert "Not Subscribed successfully!" in message and "Blocked!" in message


async def test_unknown_symbol_is_a_clear_error(server: MexcServer) -> None:
    with pytest.raises(ExchangeError, match="NOPEUSDT not listed on mexc spot"):
        async with LiveFeed(settings("NOPEUSDT", candle_timeframe=None)):
            pass


def assert_candles_match_file(events: list[Candle], rows: tuple[TapeCandle, ...]) -> None:
    """Each candle equals the file's row for its window, digit for digit, with no holes."""
    by_open = {row.open_time_ms: row for row in rows}
    opens = [int(e.open_time.timestamp() * 1000) for e in events]
    assert opens == [opens[0] + 300_000 * i for i in range(len(opens))], "not contiguous"
    for event, open_ms in zip(events, opens, strict=True):
        row = by_open[open_ms]
        assert event.symbol == "ETHBTC" and event.interval_s == 300
        assert event.ts == datetime.fromtimestamp(open_ms / 1000 + 300, UTC)
        # ETH_BTC has values like 0.09946999000000001 (17 digits): still exact.
        assert (event.open, event.high, event.low, event.close, event.volume) == tuple(
            Decimal(v) for v in (row.open, row.high, row.low, row.close, row.volume)
        )


def candles_of(events: list[Trade | Candle | Alert]) -> list[Candle]:
    return [e for e in events if isinstance(e, Candle)]


async def test_warmup_then_live_candles_are_exact(server: MexcServer) -> None:
    rows = load_candles("market/ETH_BTC-5m.csv")
    async with LiveFeed(settings("ETHBTC", trades=False, candle_timeframe="5m")) as feed:
        history = await feed.warmup(20)
        events = await collect(feed, candles=1)
        last_open = rows[78].open_time_ms
        while int(events[-1].open_time.timestamp() * 1000) < last_open:  # type: ignore[union-attr]
            events += await collect(feed, candles=1)
    assert len(history) == 20
    # Warm-up and live candles join without a hole or a double, up to window 78,
    # which the first push of window 79 closed (79 itself closes on the exchange's
    # clock after the grace; test_live_candles_on_time covers that).
    assert_candles_match_file(history + candles_of(events), rows)
    assert int(events[-1].open_time.timestamp() * 1000) == last_open  # type: ignore[union-attr]


async def test_candle_gap_is_backfilled(server: MexcServer) -> None:
    rows = load_candles("market/ETH_BTC-5m.csv")

    async def skip(events: list[Trade | Candle | Alert]) -> None:
        if len(events) == 5:
            server.faults.skip_next_candle_pushes = 7  # several whole windows vanish

    async with LiveFeed(settings("ETHBTC", trades=False, candle_timeframe="5m")) as feed:
        events = await collect(feed, candles=20, on_event=skip)
        stats = feed.stats
    assert_candles_match_file(candles_of(events), rows)
    assert stats.backfilled >= 3 and stats.gaps_detected >= 1


async def test_candles_survive_a_reconnect_mid_window(server: MexcServer) -> None:
    rows = load_candles("market/ETH_BTC-5m.csv")

    async def drop(events: list[Trade | Candle | Alert]) -> None:
        if len(events) == 8:
            await server.drop_connections()

    async with LiveFeed(settings("ETHBTC", trades=False, candle_timeframe="5m")) as feed:
        events = await collect(feed, candles=20, on_event=drop)
        assert feed.stats.reconnects == 1
    assert_candles_match_file(candles_of(events), rows)


async def test_spot_specs_come_from_exchange_info(server: MexcServer) -> None:
    async with LiveFeed(settings("XRPETH", candle_timeframe=None)) as feed:
        spec = (await feed.specs())["XRPETH"]
        with pytest.raises(ExchangeError, match="spot symbol"):
            await feed.funding_rate("XRPETH")
    assert (spec.base, spec.quote, spec.exchange_id) == ("XRP", "ETH", "XRPETH")
    assert spec.tick_size == Decimal("1E-8") and spec.lot_size == Decimal("0.1")
    assert spec.min_qty == Decimal("0.1") and spec.min_notional == Decimal("0.0001")
    assert spec.maker_fee == Decimal(0) and spec.taker_fee == Decimal("0.0005")
    assert spec.contract_size == 1 and spec.active
