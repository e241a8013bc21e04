"""The writer: every event type lands in its table exactly, and re-delivery changes nothing."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import InvalidEventError
from engine.events import Event, OrderStatus, OrderType
from engine.store import ConstraintViolation, EventWriter, Store
from tests.store import factories as f

pytestmark = pytest.mark.integration

TABLES = (
    "runs",
    "market_cursors",
    "candles",
    "signals",
    "orders",
    "trades",
    "order_results",
    "portfolio_snapshots",
    "positions",
    "risk_events",
    "alerts",
)


def dump(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Full contents of every table, in a stable order, for before/after comparisons."""
    return {
        table: store.db.fetch_all(f"SELECT * FROM {table} ORDER BY 1, 2, 3") for table in TABLES
    }


def test_write_stores_each_event_type_in_its_table(store: Store, run_id: str) -> None:
    written = EventWriter(store, run_id).write(f.one_of_each())

    counts = store.count_rows(run_id)
    assert counts == {
        "candles": 2,
        "signals": 1,
        "orders": 2,
        "trades": 1,
        "order_results": 3,
        "portfolio_snapshots": 1,
        "positions": 2,
        "risk_events": 1,
        "alerts": 1,
        "incidents": 0,
    }
    assert written == sum(counts.values())


def test_fill_round_trips_exactly(store: Store, run_id: str) -> None:
    event = f.fill(0)

    EventWriter(store, run_id).write([event])

    row = store.db.fetch_one("SELECT * FROM trades")
    assert row is not None
    assert row["trade_id"] == event.trade_id == event.event_id
    assert (row["qty"], row["price"], row["fee"]) == (event.qty, event.price, event.fee)
    assert str(row["price"]) == "42060.123456789"  # scale kept: NUMERIC, not float
    assert row["requested_price"] == event.requested_price
    assert row["slippage_bps"] == event.slippage_bps
    assert (row["side"], row["status"], row["liquidity"]) == ("buy", "filled", "taker")
    assert row["ts"] == event.ts and row["ts"].utcoffset() == timedelta(0)
    assert row["notional"] == event.qty * event.price


@pytest.mark.parametrize(
    "status", [OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.EXPIRED]
)
def test_result_without_fill_never_creates_a_trade(
    store: Store, run_id: str, status: OrderStatus
) -> None:
    EventWriter(store, run_id).write([f.order(0), f.no_fill(0, status=status)])

    assert store.db.fetch_all("SELECT * FROM trades") == []
    row = store.db.fetch_one("SELECT status, reason FROM order_results")
    assert row == {"status": status.value, "reason": "max exposure"}
    assert store.db.fetch_one("SELECT status FROM order_status") == {"status": status.value}


def test_partial_fill_is_a_trade(store: Store, run_id: str) -> None:
    partial = f.fill(0, status=OrderStatus.PARTIALLY_FILLED, remaining_qty=Decimal("0.1"))

    EventWriter(store, run_id).write([partial])

    assert store.db.fetch_one("SELECT status, remaining_qty FROM trades") == {
        "status": "partially_filled",
        "remaining_qty": Decimal("0.1"),
    }


def test_market_order_keeps_price_null_and_limit_order_keeps_its_price(
    store: Store, run_id: str
) -> None:
    market = f.order(0)
    limit = f.order(1, order_type=OrderType.LIMIT, limit_price=Decimal("41000.5"))

    EventWriter(store, run_id).write([market, limit])

    rows = store.db.fetch_all("SELECT order_id, order_type, price FROM orders ORDER BY order_id")
    assert rows == [
        {"order_id": "ord0", "order_type": "market", "price": None},
        {"order_id": "ord1", "order_type": "limit", "price": Decimal("41000.5")},
    ]


def test_snapshot_writes_its_positions_open_and_closed(store: Store, run_id: str) -> None:
    EventWriter(store, run_id).write([f.snapshot(0)])

    rows = store.db.fetch_all(
        "SELECT symbol, status, realized_pnl FROM latest_positions ORDER BY symbol"
    )
    assert rows == [
        {"symbol": "BTCUSDT", "status": "open", "realized_pnl": Decimal("0")},
        {"symbol": "ETHUSDT", "status": "closed", "realized_pnl": Decimal("-12.5")},
    ]
    snap = store.db.fetch_one("SELECT open_positions, equity FROM portfolio_snapshots")
    assert snap == {"open_positions": 1, "equity": Decimal("99999.99")}


def test_redelivery_leaves_every_table_unchanged(store: Store, run_id: str) -> None:
    writer = EventWriter(store, run_id)
    events = f.one_of_each()
    writer.write(events)
    before = dump(store)

    again = writer.write(events)
    shuffled = list(events)
    random.Random(7).shuffle(shuffled)
    in_pieces = sum(writer.write(shuffled[i : i + 3]) for i in range(0, len(shuffled), 3))

    assert (again, in_pieces) == (0, 0)
    assert dump(store) == before


def test_duplicates_within_one_batch_are_written_once(store: Store, run_id: str) -> None:
    assert EventWriter(store, run_id).write([f.signal(0), f.signal(0), f.snapshot(0)] * 2) == 4


def test_same_event_ids_in_two_runs_do_not_clash(store: Store, run_id: str) -> None:
    store.create_run("run-2", config={}, data_source="replay:test", started_at=f.T0)

    first = EventWriter(store, run_id).write(f.one_of_each())
    second = EventWriter(store, "run-2").write(f.one_of_each())

    assert first == second > 0


def test_market_cursor_moves_forward_only(store: Store, run_id: str) -> None:
    writer = EventWriter(store, run_id)
    writer.write([f.candle(0), f.candle(1), f.tick(5, symbol="ETHUSDT")])

    writer.write([f.candle(0)])  # a late re-delivery of an older candle

    point = store.resume_point(run_id)
    assert point.cursors["BTCUSDT"].event_id == "BTCUSDT-c1"
    assert point.cursors["ETHUSDT"].event_id == "ETHUSDT-t5"
    assert point.last_event_id == "BTCUSDT-c1"  # 10:00 after the 00:05 tick
    assert point.last_event_ts == f.candle(1).ts


def test_ticks_advance_the_cursor_but_are_not_stored(store: Store, run_id: str) -> None:
    written = EventWriter(store, run_id).write([f.tick(0), f.tick(1)])

    assert written == 0
    assert store.resume_point(run_id).cursors["BTCUSDT"].event_id == "BTCUSDT-t1"


def _tampered(event: Event, **changes: object) -> Event:
    """An event whose fields were forced past validation, as a buggy producer could."""
    forged = dataclasses.replace(event)
    for name, value in changes.items():
        object.__setattr__(forged, name, value)
    return forged


@pytest.mark.parametrize(
    ("event", "changes"),
    [
        (f.fill(0), {"price": Decimal("NaN")}),
        (f.fill(0), {"price": Decimal("0")}),
        (f.fill(0), {"qty": Decimal("-1")}),
        (f.fill(0), {"fee": Decimal("Infinity")}),
        (f.order(0), {"qty": Decimal("0")}),
        (f.candle(0), {"symbol": "BTC'); DROP TABLE trades; --"}),
        (f.signal(0), {"confidence": Decimal("1.5")}),
    ],
    ids=["nan-price", "zero-price", "negative-qty", "infinite-fee", "zero-qty", "sql-symbol",
         "confidence"],
)  # fmt: skip
def test_invalid_event_refuses_the_whole_batch_before_the_database(
    shared_store: Store, event: Event, changes: dict[str, object]
) -> None:
    before = dump(shared_store)

    with pytest.raises(InvalidEventError, match=f"event {event.event_id!r} refused"):
        EventWriter(shared_store, f.RUN_ID).write([f.signal(1), _tampered(event, **changes)])

    assert dump(shared_store) == before


def test_writer_refuses_non_events(shared_store: Store) -> None:
    with pytest.raises(InvalidEventError, match="cannot store a dict"):
        EventWriter(shared_store, f.RUN_ID).write([{"type": "trade"}])  # type: ignore[list-item]


def test_writing_to_an_unknown_run_is_refused_by_the_database(shared_store: Store) -> None:
    with pytest.raises(ConstraintViolation, match="rather than retrying"):
        EventWriter(shared_store, "no-such-run").write([f.signal(0)])


def test_a_batch_the_database_refused_leaves_the_next_one_writable(
    store: Store, run_id: str
) -> None:
    # The first batch makes the connection's staging tables inside a transaction that
    # rolls back; the next batch on the same connection must make them again.
    with pytest.raises(ConstraintViolation):
        EventWriter(store, "no-such-run").write([f.signal(0), f.candle(0)])

    assert EventWriter(store, run_id).write([f.signal(1), f.candle(1)]) == 2
    assert store.count_rows(run_id)["signals"] == 1


def test_sql_text_in_free_text_is_stored_verbatim(store: Store, run_id: str) -> None:
    nasty = "x'); DROP TABLE signals; -- %s %(name)s \\ \\N \\. \t\n\r\x7f ünïcode"

    EventWriter(store, run_id).write([f.signal(0, reason=nasty, strategy=nasty)])

    assert store.db.fetch_one("SELECT reason, strategy FROM signals") == {
        "reason": nasty,
        "strategy": nasty,
    }


def test_snapshot_listing_a_symbol_twice_is_refused(shared_store: Store) -> None:
    snap = f.snapshot(0)
    doubled = dataclasses.replace(snap, positions=(snap.positions[0], snap.positions[0]))

    with pytest.raises(InvalidEventError, match="lists a symbol twice"):
        EventWriter(shared_store, f.RUN_ID).write([doubled])


money = st.decimals(
    min_value=Decimal("0.00000001"), max_value=Decimal("1e12"), places=8, allow_nan=False
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(qty=money, price=money, fee=money)
def test_decimals_round_trip_exactly(
    store: Store, run_id: str, qty: Decimal, price: Decimal, fee: Decimal
) -> None:
    event = f.fill(0, event_id=f"fill-{qty}-{price}-{fee}", qty=qty, price=price, fee=fee)

    EventWriter(store, run_id).write([event])

    row = store.db.fetch_one(
        "SELECT qty, price, fee FROM trades WHERE trade_id = %s", (event.event_id,)
    )
    assert row == {"qty": qty, "price": price, "fee": fee}
