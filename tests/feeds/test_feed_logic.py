"""Pure logic of the feed: dedupe without ids, candle closing and gaps, backoff."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.events import Side
from engine.feeds.exchange.backoff import backoff_delay_s
from engine.feeds.exchange.candles import CandleAssembler
from engine.feeds.exchange.client import RawKline
from engine.feeds.exchange.dedupe import TradeDeduper, TradeRecord
from engine.feeds.exchange.numbers import exact_decimal
from engine.feeds.exchange.settings import FeedSettings


def deal(ms: int, price: str = "1.5", qty: str = "2") -> TradeRecord:
    return TradeRecord(ms, Decimal(price), Decimal(qty), Side.BUY, None)


def test_identical_trades_in_one_ms_are_kept_and_redelivery_is_dropped() -> None:
    dedupe = TradeDeduper()
    first = dedupe.delivery()
    keys = [first.accept(t) for t in (deal(1), deal(2), deal(2), deal(3, qty="2.0"))]
    assert None not in keys and len(set(keys)) == 4
    again = dedupe.delivery()  # a reconnect re-sends from ms 2, then continues
    assert [again.accept(t) for t in (deal(2), deal(2), deal(3))] == [None, None, None]
    assert again.accept(deal(3)) is not None  # a genuinely new second copy at ms 3
    assert dedupe.duplicates == 3


def test_numeric_ids_reveal_gaps() -> None:
    dedupe = TradeDeduper()
    d = dedupe.delivery()
    d.accept(TradeRecord(1, Decimal(1), Decimal(1), Side.SELL, "10"))
    gap = dedupe.gap_before(TradeRecord(2, Decimal(1), Decimal(1), Side.SELL, "14"))
    assert gap is not None and (gap.after_id, gap.before_id) == (10, 14)
    assert d.accept(TradeRecord(1, Decimal(1), Decimal(1), Side.SELL, "9")) is None


def k(open_ms: int, close: str = "1") -> RawKline:
    return RawKline("X", "1m", open_ms, "1", "2", "0.5", close, "3")


def test_candle_closes_on_next_window_and_gaps_ask_for_rest() -> None:
    a = CandleAssembler(60_000)
    assert a.push(k(0)).closed is None
    assert a.push(k(0, "1.5")).closed is None
    step = a.push(k(60_000))
    assert step.closed == k(0, "1.5") and step.backfill_from_ms is None
    step = a.push(k(240_000))  # windows 120 000 and 180 000 never came
    assert step.closed is None and (step.backfill_from_ms, step.backfill_to_ms) == (60_000, 240_000)
    a.reconnected()
    step = a.push(k(300_000))
    assert (step.backfill_from_ms, step.backfill_to_ms) == (240_000, 300_000)


def test_backoff_doubles_caps_and_jitters() -> None:
    cfg = FeedSettings(symbols=("BTCUSDT",), reconnect_initial_ms=100, reconnect_max_ms=1000)
    assert [backoff_delay_s(n, cfg, lambda: 0.5) for n in range(6)] == [
        0.1, 0.2, 0.4, 0.8, 1.0, 1.0,
    ]  # fmt: skip
    assert backoff_delay_s(0, cfg, lambda: 0.0) == pytest.approx(0.08)
    assert backoff_delay_s(0, cfg, lambda: 1.0) == pytest.approx(0.12)


def test_float_values_from_json_come_back_exact() -> None:
    assert exact_decimal(0.00141342, "p") == Decimal("0.00141342")
    assert exact_decimal(3153694.607359, "v") == Decimal("3153694.607359")
    assert exact_decimal("0.09946999000000001", "o") == Decimal("0.09946999000000001")
