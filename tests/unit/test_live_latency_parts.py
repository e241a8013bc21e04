"""The parts the live latency benchmark rests on: the synthetic symbols' tapes, the
percentiles, and the feed's arrival notes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from engine.events import Watermark
from engine.services.arrivals import ArrivalNotes, percentiles
from tests.mexc_server.data import TapeTrade
from tests.mexc_server.synthetic import MINUTE_MS, minute_candles, synthetic_names, synthetic_trades

TAPE = tuple(
    TapeTrade(1_000 + 10_000 * i, 500 + i, "buy" if i % 2 else "sell", f"1.{i}", "2.0")
    for i in range(10)
)  # ten trades 10 s apart, prices 1.0 .. 1.9


def test_percentiles_are_nearest_rank_and_empty_without_values() -> None:
    assert percentiles([]) == {}
    values = [float(v) for v in range(100, 0, -1)]
    assert percentiles(values) == {"n": 100, "p50_ms": 51.0, "p99_ms": 100.0, "max_ms": 100.0}


def test_synthetic_names_share_one_quote() -> None:
    names = synthetic_names(200)
    assert len(set(names)) == 200 and all(n.endswith("ETH") for n in names)
    assert names[0] == "X001ETH" and names[-1] == "X200ETH"


def test_each_symbol_plays_the_tape_from_its_own_offset_moved_to_the_start() -> None:
    start = 1_700_000_000_000
    first = synthetic_trades(TAPE, 0, 2, start, start + 10**6)
    second = synthetic_trades(TAPE, 1, 2, start, start + 10**6)
    assert [t.time_ms - start for t in first] == [10_000 * i for i in range(10)]
    assert [t.price for t in first] == [t.price for t in TAPE]
    # Half way through the tape first, then wrapping round to its beginning.
    assert second[0].price == "1.5" and second[0].time_ms >= start
    assert sorted(t.price for t in second) == sorted(t.price for t in TAPE)
    assert [t.trade_id for t in second] == list(range(1, 11))
    assert [t.time_ms for t in second] == sorted(t.time_ms for t in second)
    assert len(synthetic_trades(TAPE, 0, 2, start, start + 25_000)) == 3


def test_minute_candles_are_made_of_the_trades_and_carry_the_close_over_quiet_minutes() -> None:
    start = 1_700_000_040_000  # a minute's start
    trades = synthetic_trades(TAPE, 0, 1, start, start + 10**6)
    candles = minute_candles(trades, start, start + 3 * MINUTE_MS)
    assert [c.open_time_ms - start for c in candles] == [0, MINUTE_MS, 2 * MINUTE_MS, 3 * MINUTE_MS]
    one = candles[0]
    assert (one.open, one.high, one.low, one.close) == ("1.0", "1.5", "1.0", "1.5")
    assert Decimal(one.volume) == Decimal("12.0")
    assert (candles[1].open, candles[1].close) == ("1.6", "1.9")
    quiet = candles[2]
    assert (quiet.open, quiet.high, quiet.low, quiet.close, quiet.volume) == (
        "1.9", "1.9", "1.9", "1.9", "0",
    )  # fmt: skip


def test_the_feed_hands_over_each_arrival_once() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    events = [Watermark(f"wm-{i}", at, None) for i in range(3)]
    notes = ArrivalNotes()
    notes.note(events[:2])
    taken = notes.take(events)
    assert set(taken) == {"wm-0", "wm-1"} and all(v > 0 for v in taken.values())
    assert notes.take(events) == {}
