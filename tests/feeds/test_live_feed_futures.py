"""The live feed against the local MEXC server, USDT perpetuals, over real sockets."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from engine.events import Candle, Side, Trade
from engine.feeds.exchange import LiveFeed, SubscriptionRefusedError
from tests.feeds.conftest import collect, settings
from tests.mexc_server import MexcServer
from tests.mexc_server.data import load_candles, load_funding, load_trades

pytestmark = pytest.mark.integration


def futures(symbol: str = "XRPUSDT", **overrides: object) -> LiveFeed:
    # contract/detail weighs 100: at 1 ms per unit the start-up debt is 0.1 s, so a
    # backfill soon after start is not delayed past MEXC's 100-deal REST window.
    return LiveFeed(settings(symbol, market="futures", rest_rate_limit_ms=1, **overrides))


def assert_same_deals(events: list[Trade], count: int) -> None:
    tape = load_trades()[:count]
    assert len(events) == count
    for event, row in zip(events, tape, strict=True):
        assert event.symbol == "XRPUSDT"
        assert event.price == Decimal(row.price)  # JSON number -> exact Decimal
        assert event.qty == Decimal(row.amount)  # contracts x contract size 1
        assert event.side is Side(row.side)
        assert event.ts == datetime.fromtimestamp(row.time_ms / 1000, UTC)


async def test_deals_become_trades_with_exact_values(server: MexcServer) -> None:
    async with futures(candle_timeframe=None) as feed:
        events = await collect(feed, trades=300)
    trades = [e for e in events if isinstance(e, Trade)]
    assert_same_deals(trades, 300)
    assert len({t.event_id for t in trades}) == 300  # identical deals keep distinct ids


async def test_reconnect_without_trade_ids_loses_and_doubles_nothing(server: MexcServer) -> None:
    server.faults.overlap_on_subscribe = 10
    server.trades_per_tick = 2  # slower, so the drop happens mid-stream
    dropped = False

    async def drop(events: list[object]) -> None:
        nonlocal dropped
        if not dropped and len(events) >= 60:
            dropped = True
            await server.drop_connections()

    async with futures(candle_timeframe=None) as feed:
        events = await collect(feed, trades=300, on_event=drop)
        stats = feed.stats
    assert_same_deals([e for e in events if isinstance(e, Trade)], 300)
    assert stats.reconnects == 1 and stats.duplicates_dropped >= 1 and stats.gaps_detected >= 1
    assert any(r.path == "/api/v1/contract/deals/XRP_USDT" for r in server.requests)


async def test_malformed_json_frame_is_skipped_and_counted(server: MexcServer) -> None:
    async def corrupt(events: list[object]) -> None:
        if len(events) == 30:
            server.faults.malformed_next = 1

    async with futures(candle_timeframe=None) as feed:
        events = await collect(feed, trades=300, on_event=corrupt)
        stats = feed.stats
    assert stats.malformed_frames == 1 and stats.reconnects == 0
    assert_same_deals([e for e in events if isinstance(e, Trade)], 300)


async def test_refused_futures_subscription_is_a_clear_error(server: MexcServer) -> None:
    server.faults.refuse = {"XRP_USDT"}
    async with futures(candle_timeframe=None) as feed:
        with pytest.raises(SubscriptionRefusedError, match="Contract doesn't exist!") as info:
            await collect(feed, trades=1, timeout_s=5)
    assert "XRP/USDT:USDT" in str(info.value)


async def test_hourly_candles_warmup_and_stream_are_exact(server: MexcServer) -> None:
    rows = {r.open_time_ms: r for r in load_candles("market/futures/XRP_USDT-1h.csv")}
    async with futures(trades=False, candle_timeframe="1h") as feed:
        history = await feed.warmup(10)
        events = await collect(feed, candles=10)
    candles = history + [e for e in events if isinstance(e, Candle)]
    opens = [int(c.open_time.timestamp() * 1000) for c in candles]
    assert opens == [opens[0] + 3_600_000 * i for i in range(len(opens))]
    for candle, open_ms in zip(candles, opens, strict=True):
        row = rows[open_ms]
        assert candle.interval_s == 3600
        assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == tuple(
            Decimal(v) for v in (row.open, row.high, row.low, row.close, row.volume)
        )


async def test_contract_detail_and_funding_rate_are_parsed(server: MexcServer) -> None:
    async with futures("XRPUSDT,BTCUSDT", candle_timeframe=None) as feed:
        specs = await feed.specs()
        funding = await feed.funding_rate("XRPUSDT")
    xrp, btc = specs["XRPUSDT"], specs["BTCUSDT"]
    assert (xrp.exchange_id, xrp.ccxt_symbol, xrp.market) == (
        "XRP_USDT",
        "XRP/USDT:USDT",
        "futures",
    )
    assert xrp.tick_size == Decimal("0.0001") and xrp.contract_size == 1
    assert xrp.maker_fee == 0 and xrp.taker_fee == Decimal("0.0002")
    assert xrp.maintenance_margin_rate == Decimal("0.005")
    assert xrp.initial_margin_rate == Decimal("0.01")
    # BTC_USDT: one contract is 0.0001 BTC, so the minimum of 1 contract is 0.0001 BTC.
    assert btc.contract_size == Decimal("0.0001")
    assert btc.lot_size == btc.min_qty == Decimal("0.0001")
    assert btc.maintenance_margin_rate == Decimal("0.004")
    last = load_funding()[-1]
    assert funding.rate == Decimal(last.rate) and funding.interval_h == 8
    assert funding.next_settle_time == datetime.fromtimestamp(last.time_ms / 1000 + 8 * 3600, UTC)
    assert funding.max_rate == Decimal("0.003") and funding.min_rate == Decimal("-0.003")
