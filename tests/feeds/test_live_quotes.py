"""Best bid and ask from MEXC's book ticker, spot (protobuf) and perpetual (JSON), over
real sockets to the local server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest

from engine.events import Quote, Trade
from engine.feeds.exchange import FeedEvent, LiveFeed
from tests.feeds.conftest import collect_until, settings
from tests.mexc_server import MexcServer
from tests.mexc_server.data import load_trades
from tests.mexc_server.tapes import TapeBook, book_after

pytestmark = pytest.mark.integration

MARKETS = pytest.mark.parametrize(
    ("market", "symbol", "channel"),
    [
        ("spot", "XRPETH", "spot@public.aggre.bookTicker.v3.api.pb@100ms@XRPETH"),
        ("futures", "XRPUSDT", "sub.depth.full:XRP_USDT"),
    ],
    ids=["spot", "perp"],
)


def feed_for(market: str, symbol: str, **overrides: object) -> LiveFeed:
    extra: dict[str, object] = {"rest_rate_limit_ms": 1} if market == "futures" else {}
    return LiveFeed(settings(symbol, market=market, candle_timeframe=None, **extra, **overrides))


def quotes_of(events: list[FeedEvent]) -> list[Quote]:
    return [e for e in events if isinstance(e, Quote)]


def books_played(trades: int, per_tick: int = 5) -> list[tuple[int, TapeBook]]:
    """(time of the trade that left it, book) after each batch the server played."""
    tape = load_trades()[:trades]
    return [(tape[i].time_ms, book_after(tape[i])) for i in range(per_tick - 1, trades, per_tick)]


def same_book(quote: Quote, book: TapeBook) -> bool:
    return (quote.bid, quote.bid_qty, quote.ask, quote.ask_qty) == tuple(
        Decimal(v) for v in (book.bid, book.bid_qty, book.ask, book.ask_qty)
    )


@MARKETS
async def test_quotes_carry_the_book_exactly_and_end_on_the_latest_book(
    server: MexcServer, market: str, symbol: str, channel: str
) -> None:
    server.quotes = True
    played = books_played(300)
    final = played[-1][1]

    def done(events: list[FeedEvent]) -> bool:
        trades = sum(isinstance(e, Trade) for e in events)
        quotes = quotes_of(events)
        last = (quotes[-1].bid, quotes[-1].ask) if quotes else None
        return trades >= 300 and last == (Decimal(final.bid), Decimal(final.ask))

    async with feed_for(market, symbol) as feed:
        events = await collect_until(feed, done)
        stats = feed.stats
    quotes = quotes_of(events)
    assert channel in server.subscriptions
    assert stats.malformed_frames == 0 and stats.quotes == len(quotes)
    # Every quote is a book the exchange sent, in the order it sent them, digit for
    # digit; a book is not repeated, and the last one standing is the latest.
    position = 0
    for quote in quotes:
        while not same_book(quote, played[position][1]):
            position += 1  # coalesced: at most one quote per 100 ms, the latest book
        traded_ms, book = played[position]
        assert quote.symbol == symbol
        if market == "spot":  # strings on the wire: kept verbatim
            assert (str(quote.bid), str(quote.ask)) == (book.bid, book.ask)
        traded = datetime.fromtimestamp(traded_ms / 1000, UTC)
        assert traded <= quote.ts < traded + timedelta(seconds=5)  # the exchange's stamp
    assert all((a.bid, a.ask) != (b.bid, b.ask) for a, b in pairwise(quotes))
    assert len({q.event_id for q in quotes}) == len(quotes)
    assert len(quotes) < len(played)  # 20 ms ticks, at most one quote per 100 ms


@MARKETS
async def test_crossed_or_garbled_book_ticker_is_skipped_and_counted(
    server: MexcServer, market: str, symbol: str, channel: str
) -> None:
    server.quotes = True
    server.tick_s = 0.05  # one book per 50 ms: none is coalesced away unread
    seen_at_fault: list[int] = []

    async def break_two(events: list[FeedEvent]) -> None:
        if not seen_at_fault and len(quotes_of(events)) == 5:
            seen_at_fault.append(len(events))
            server.faults.crossed_book_next = 1  # the next book, then the one after
            server.faults.garbled_book_next = 1

    def done(events: list[FeedEvent]) -> bool:
        return bool(seen_at_fault) and len(quotes_of(events[seen_at_fault[0] :])) >= 5

    async with feed_for(market, symbol, quote_min_interval_ms=0) as feed:
        events = await collect_until(feed, done, on_event=break_two)
        stats = feed.stats
    assert stats.malformed_frames == 2  # one crossed, one not a number: both refused
    assert stats.reconnects == 0
    quotes = quotes_of(events)
    assert all(q.bid <= q.ask for q in quotes)  # a Quote cannot be crossed
    assert len(quotes) >= 10  # and the stream went on


@MARKETS
async def test_reconnect_resubscribes_the_book_ticker(
    server: MexcServer, market: str, symbol: str, channel: str
) -> None:
    server.quotes = True
    dropped_at: list[int] = []

    async def drop_once(events: list[FeedEvent]) -> None:
        if not dropped_at and len(quotes_of(events)) == 3:
            dropped_at.append(len(events))
            assert await server.drop_connections() == 1

    def done(events: list[FeedEvent]) -> bool:
        return bool(dropped_at) and len(quotes_of(events[dropped_at[0] :])) >= 3

    async with feed_for(market, symbol) as feed:
        await collect_until(feed, done, on_event=drop_once)
        stats = feed.stats
    assert stats.reconnects == 1
    assert server.subscriptions.count(channel) == 2
