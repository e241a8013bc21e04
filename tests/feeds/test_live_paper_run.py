"""A whole paper run driven by the local MEXC server: feed to fills, with the store.

The local server streams the recorded trades over real sockets; `LiveFeed` turns
them into events, `drive` feeds them through the whole pipeline (signal, risk,
paper execution, portfolio), and a persisted run writes everything to a real
embedded PostgreSQL. No mocks and no internet: only 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.config import Settings, load_settings
from engine.events import (
    ZERO,
    Event,
    Heartbeat,
    Liquidity,
    Order,
    OrderResult,
    OrderType,
    PortfolioSnapshot,
    Quote,
    Side,
    Trade,
)
from engine.feeds.exchange import LiveFeed
from engine.kernel.checkpoint import restore
from engine.kernel.live import build_live_pipeline, drive, live_specs
from engine.kernel.persisted import FINAL_SNAPSHOT_CAUSE, PersistedRun
from engine.kernel.pipeline import Pipeline, summarize
from engine.markets import SymbolSpec
from engine.runtime import EmbeddedPostgres
from engine.signal.base import Intent, Strategy, StrategyContext
from engine.store import RunStatus, Store
from tests.feeds.conftest import settings as feed_settings
from tests.mexc_server import MexcServer
from tests.mexc_server.data import load_trades

pytestmark = pytest.mark.integration

EVENTS = 150  # of the 300 trades the server plays: about 0.6 s of wall time
BUY_AT = (5, 100)  # 1-based trade numbers: the second entry is still open at the end
SELL_AT = (60,)
PG_FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class ScheduledTrades(Strategy):
    """Buys on the BUY_AT-th trade and sells on the SELL_AT-th: fills are guaranteed."""

    name = "test-scheduled"

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.seen = 0

    def on_trade(self, trade: Trade, context: StrategyContext) -> Iterable[Intent]:
        if trade.symbol != self.symbol:
            return ()
        self.seen += 1
        if self.seen in BUY_AT:
            return (Intent(self.symbol, Side.BUY, Decimal(1), f"scheduled buy #{self.seen}"),)
        if self.seen in SELL_AT:
            return (Intent(self.symbol, Side.SELL, Decimal(1), f"scheduled sell #{self.seen}"),)
        return ()

    def export_state(self) -> dict[str, Any]:
        return {"seen": self.seen}

    def import_state(self, state: dict[str, Any]) -> None:
        self.seen = int(state["seen"])


def run_settings() -> Settings:
    # A small account in the quote currency (ETH or USDT): 5 % of 10 is about 350 XRP,
    # which at 50 % participation takes a few trades to fill (at the default 10 % the
    # exit outlives its 900 s time to live on this tape). Risk compares event times
    # only (the tape is from 2019); the longest gap in the first 150 trades is 193 s,
    # so a generous stale-data limit keeps that out of the picture.
    return load_settings(initial_capital="10", stale_data_seconds=3600, participation_cap_pct="0.5")


def live_feed(market: str, symbol: str) -> LiveFeed:
    extra: dict[str, Any] = {"rest_rate_limit_ms": 1} if market == "futures" else {}
    return LiveFeed(feed_settings(symbol, market=market, candle_timeframe=None, **extra))


def fills_of(events: Iterable[Event]) -> list[OrderResult]:
    return [e for e in events if isinstance(e, OrderResult) and e.status.is_fill]


def assert_fills_match_the_tape(
    published: list[Event], pipeline: Pipeline, symbol: str, spec: SymbolSpec
) -> None:
    """Each fill meets a trade the feed delivered on its own side of the book, within its volume.

    A buy takes the ask: at or above the print, by the spread when the print was at the
    bid, and by the market impact; a sell takes the bid. Nothing is filled better.
    """
    settings = pipeline.settings
    trades = {e.event_id: e for e in published if isinstance(e, Trade)}
    orders = {e.order_id: e for e in published if isinstance(e, Order)}
    fills = fills_of(published)
    assert fills, "the scheduled strategy must have produced fills"
    assert {f.side for f in fills} == {Side.BUY, Side.SELL}
    latency = timedelta(milliseconds=settings.order_latency_ms)
    for fill in fills:
        assert fill.market_event_id in trades, f"{fill.event_id} filled against an unknown event"
        trade = trades[fill.market_event_id]
        order = orders[fill.order_id]
        assert fill.symbol == trade.symbol == order.symbol == symbol
        # The print is at the ask when buyer-initiated: the middle lies half a spread away.
        half = fill.requested_price * fill.spread_bps / 10000
        assert abs(fill.requested_price + trade.side.sign * half - trade.price) <= spec.tick_size
        if fill.side is Side.BUY:
            assert fill.price > trade.price or (
                trade.side is Side.BUY and fill.price >= trade.price
            )
        else:
            assert fill.price < trade.price or (
                trade.side is Side.SELL and fill.price <= trade.price
            )
        assert fill.spread_bps >= 0 and fill.slippage_bps >= settings.slippage_base_bps - 1
        assert fill.qty <= trade.qty * settings.participation_cap_pct
        assert fill.qty == spec.floor_qty(fill.qty) and fill.qty > 0
        assert fill.fee == fill.qty * fill.price * spec.taker_fee
        assert trade.ts >= order.ts + latency and fill.ts == trade.ts
        assert order.order_type is OrderType.MARKET and order.limit_price is None
    for order_id, order in orders.items():
        filled = sum((f.qty for f in fills if f.order_id == order_id), ZERO)
        assert filled <= order.qty

    stats = pipeline.stats
    assert stats.fills == len(fills)
    # Every order filled completely, most of them over several trades.
    done = len(BUY_AT) + len(SELL_AT)
    assert len(orders) == done and len(fills) > done
    assert dict(stats.results_by_status) == {
        "filled": done,
        "partially_filled": len(fills) - done,
    }
    assert dict(stats.refusals_by_reason) == {}
    assert stats.market_events == EVENTS

    p = pipeline.portfolio
    assert p.initial_capital == Decimal(10)
    assert p.fees == sum((f.fee for f in fills), ZERO) and p.fees > 0
    net = sum((f.qty * f.side.sign for f in fills), ZERO)
    assert net > 0, "the entry on trade 100 must still be open"
    assert {s: pos.qty for s, pos in p.positions.items()} == {symbol: net}
    assert p.marks[symbol] == list(trades.values())[-1].price
    assert p.unrealized() != 0 and p.realized != 0
    assert p.equity() == p.initial_capital + p.realized + p.unrealized() - p.fees
    # The paper exchange keeps its own books from the same fills.
    assert pipeline.exchange.account.cash == p.cash
    if spec.perpetual:  # a perpetual: a margin position, not holdings bought with cash
        assert pipeline.exchange.perps.qty(symbol) == net
        assert pipeline.exchange.account.holdings == {}
    else:
        assert pipeline.exchange.account.holdings == {symbol: net}
    assert not pipeline.exchange.working  # every order filled completely

    summary = summarize(pipeline, None, spec.quote)
    assert summary.equity == p.equity()
    assert summary.total_pnl == p.realized + p.unrealized() - p.fees
    assert summary.fills == len(fills) and summary.round_trips == 1


@pytest.mark.parametrize(
    ("market", "symbol"), [("spot", "XRPETH"), ("futures", "XRPUSDT")], ids=["spot", "perp"]
)
async def test_local_server_drives_a_paper_run_to_fills(
    server: MexcServer, market: str, symbol: str
) -> None:
    published: list[Event] = []
    async with live_feed(market, symbol) as feed:
        specs = await live_specs(feed)
        pipeline = build_live_pipeline(
            run_settings(), specs, ScheduledTrades(symbol), observers=[published.append]
        )
        count = await drive(feed, pipeline, max_events=EVENTS)
        feed_stats = feed.stats
    assert count == EVENTS
    assert feed_stats.duplicates_dropped == 0 and feed_stats.malformed_frames == 0
    assert list(specs) == [symbol]
    # Every trade of the tape went through the pipeline, in order, once.
    trades = [e for e in published if isinstance(e, Trade)]
    tape = load_trades()[:EVENTS]
    assert [t.price for t in trades] == [Decimal(row.price) for row in tape]
    assert [t.qty for t in trades] == [Decimal(row.amount) for row in tape]
    assert_fills_match_the_tape(published, pipeline, symbol, specs[symbol])


async def test_live_run_with_the_book_ticker_passes_quotes_and_charges_the_spread(
    server: MexcServer,
) -> None:
    """Quotes of the best bid and ask reach every service through `drive`, in the same
    stream as the trades, and every taker fill pays half the spread they show."""
    server.quotes = True  # the book each batch of trades leaves, 10 ticks wide
    published: list[Event] = []
    async with live_feed("spot", "XRPETH") as feed:
        specs = await live_specs(feed)
        pipeline = build_live_pipeline(
            run_settings(), specs, ScheduledTrades("XRPETH"), observers=[published.append]
        )
        count = await drive(feed, pipeline, max_events=EVENTS)
        feed_stats = feed.stats
    market = [e for e in published if isinstance(e, Trade | Quote | Heartbeat)]
    quotes = [e for e in market if isinstance(e, Quote)]
    assert count == EVENTS == len(market) == pipeline.stats.market_events
    assert len(quotes) >= 3 and feed_stats.malformed_frames == 0
    assert all(q.symbol == "XRPETH" and q.bid < q.ask for q in quotes)
    fills = fills_of(published)
    assert fills and {f.side for f in fills} == {Side.BUY, Side.SELL}
    for fill in fills:
        assert fill.liquidity is Liquidity.TAKER
        assert fill.spread_bps > 0, f"{fill.event_id} paid no spread with a 10-tick book"


# --- persisted -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_store() -> Iterator[Store]:
    """One embedded PostgreSQL for the module; each test uses its own run id."""
    # Under /tmp and 0711: short enough for a Unix socket, and enterable by the
    # account the server runs as when the tests run as root.
    base = Path(tempfile.mkdtemp(prefix="claire-lpr-"))
    os.chmod(base, 0o711)
    server = EmbeddedPostgres(base, settings=PG_FAST)
    try:
        url = server.start()
        with Store.open(url) as store:
            yield store
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


async def test_persisted_live_run_writes_the_fills_orders_and_checkpoint(
    server: MexcServer, pg_store: Store
) -> None:
    store, symbol, run_id = pg_store, "XRPETH", "run-live-paper-xrpeth"
    settings = run_settings()
    store.create_run(
        run_id,
        config={"settings": settings.redacted(), "live": {"market": "spot", "symbols": [symbol]}},
        data_source=f"mexc spot: {symbol}",
        started_at=datetime.now(UTC),
    )
    published: list[Event] = []
    async with live_feed("spot", symbol) as feed:
        specs = await live_specs(feed)
        run = PersistedRun(
            store,
            run_id,
            lambda observer: build_live_pipeline(
                settings, specs, ScheduledTrades(symbol), observers=[observer, published.append]
            ),
            flush_every_events=40,  # several batches, each with its checkpoint
            flush_every_s=3600.0,  # never by time: the batches are deterministic
        )
        count = await drive(feed, run.pipeline, run.process, max_events=EVENTS)
    run.finish()
    store.end_run(run_id, RunStatus.COMPLETED, datetime.now(UTC))
    pipeline = run.pipeline
    assert count == EVENTS
    assert_fills_match_the_tape(published, pipeline, symbol, specs[symbol])

    # trades: exactly the fills the pipeline published.
    fills = fills_of(published)
    rows = store.db.fetch_all(
        "SELECT trade_id, order_id, side, status, qty, price, fee, market_event_id "
        "FROM trades WHERE run_id = %(run_id)s ORDER BY ts, trade_id",
        {"run_id": run_id},
    )
    stored = {
        r["trade_id"]: (
            r["order_id"],
            r["side"],
            r["status"],
            Decimal(r["qty"]),
            Decimal(r["price"]),
            Decimal(r["fee"]),
            r["market_event_id"],
        )
        for r in rows
    }
    assert len(rows) == len(stored) == len(fills)
    assert stored == {
        f.trade_id: (
            f.order_id,
            f.side.value,
            f.status.value,
            f.qty,
            f.price,
            f.fee,
            f.market_event_id,
        )
        for f in fills
    }

    # orders: market orders, so no price; every published order is there.
    orders = {e.order_id: e for e in published if isinstance(e, Order)}
    assert len(orders) == len(BUY_AT) + len(SELL_AT)
    order_rows = store.db.fetch_all(
        "SELECT order_id, order_type, price, qty, side FROM orders WHERE run_id = %(run_id)s",
        {"run_id": run_id},
    )
    assert {r["order_id"] for r in order_rows} == set(orders)
    for r in order_rows:
        assert r["order_type"] == "market" and r["price"] is None
        assert Decimal(r["qty"]) == orders[r["order_id"]].qty
        assert r["side"] == orders[r["order_id"]].side.value

    counts = store.count_rows(run_id)
    assert counts["trades"] == len(fills) and counts["orders"] == len(orders)
    assert counts["order_results"] == 0 and counts["risk_events"] == 0
    snapshots = [e for e in published if isinstance(e, PortfolioSnapshot)]
    assert counts["portfolio_snapshots"] == len({s.event_id for s in snapshots})
    assert snapshots[-1].cause_id == FINAL_SNAPSHOT_CAUSE

    # The checkpoint is the state after the last market event.
    last_trade = [e for e in published if isinstance(e, Trade)][-1]
    checkpoint = store.load_checkpoint(run_id)
    assert checkpoint is not None
    assert checkpoint.market_events == EVENTS
    assert checkpoint.last_event_id == last_trade.event_id
    assert checkpoint.last_event_ts == last_trade.ts
    record = store.get_run(run_id)
    assert record is not None and record.status is RunStatus.COMPLETED
    assert record.last_event_id == last_trade.event_id

    # ... and restoring it gives back the same books.
    again = build_live_pipeline(settings, specs, ScheduledTrades(symbol))
    restore(again, dict(checkpoint.state))
    p, q = pipeline.portfolio, again.portfolio
    assert (q.cash, q.realized, q.fees, q.equity()) == (p.cash, p.realized, p.fees, p.equity())
    assert {s: x.qty for s, x in q.positions.items()} == {s: x.qty for s, x in p.positions.items()}
    assert again.strategy.export_state() == {"seen": EVENTS}


async def test_sigterm_stops_a_live_run_cleanly_recorded_as_stopped(
    server: MexcServer, claire_home: Path
) -> None:
    import signal
    import sys

    from engine.home.database import open_store

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "claire_cli.main", "papertest", "start", "--exchange", "mexc",
        "--market", "spot", "--symbols", "XRPETH", "--timeframe", "none", "--json",
        env={**os.environ, **server.env()},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip

    def runs() -> list[Any]:
        try:
            with open_store(load_settings(), claire_home) as (store, _):
                return store.list_runs()
        except Exception:
            return []

    deadline = asyncio.get_running_loop().time() + 60
    while not [r for r in await asyncio.to_thread(runs) if r.status.value == "running"]:
        assert proc.returncode is None, await proc.communicate()
        assert asyncio.get_running_loop().time() < deadline, "the live run never started"
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 143, err.decode()
    assert b"Traceback" not in err
    [run] = await asyncio.to_thread(runs)
    assert run.status.value == "stopped"
