"""Pure logic of the feed: dedupe without ids, candle closing and gaps, backoff,
book tickers, heartbeats and settings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import ConfigError, DataSourceError, InvalidEventError
from engine.events import Side
from engine.feeds.exchange.backoff import backoff_delay_s
from engine.feeds.exchange.candles import CandleAssembler
from engine.feeds.exchange.client import RawBookTicker, RawKline, futures_depth_top
from engine.feeds.exchange.dedupe import TradeDeduper, TradeRecord
from engine.feeds.exchange.numbers import exact_decimal
from engine.feeds.exchange.parse import heartbeat_event, quote_event
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


def book(bid: object, ask: object, bid_qty: object = "2", ask_qty: object = "3") -> RawBookTicker:
    return RawBookTicker("XRPETH", 1_570_752_011_620, bid, bid_qty, ask, ask_qty, "41")


def test_book_ticker_becomes_a_quote_with_exact_values_and_a_stable_id() -> None:
    quote = quote_event(
        "mexc", "spot", "XRPETH", book("0.00141342", "0.00141352"), 1_570_752_011_620, Decimal(1)
    )
    assert (str(quote.bid), str(quote.ask), quote.bid_qty, quote.ask_qty) == (
        "0.00141342", "0.00141352", Decimal(2), Decimal(3),
    )  # fmt: skip
    assert quote.ts == datetime(2019, 10, 11, 0, 0, 11, 620_000, tzinfo=UTC)
    again = quote_event(
        "mexc", "spot", "XRPETH", book("0.00141342", "0.00141352"), 1_570_752_011_620, Decimal(1)
    )
    assert again.event_id == quote.event_id


def test_futures_book_sizes_in_contracts_become_base_units() -> None:
    quote = quote_event(
        "mexc", "futures", "BTCUSDT", book(91847.4, 91847.5, 49, 7), 1, Decimal("0.0001")
    )
    assert (quote.bid, quote.ask) == (Decimal("91847.4"), Decimal("91847.5"))
    assert (quote.bid_qty, quote.ask_qty) == (Decimal("0.0049"), Decimal("0.0007"))


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (book("0.0015", "0.0014"), InvalidEventError),  # crossed
        (book("not-a-price", "0.0014"), DataSourceError),
        (book(None, "0.0014"), DataSourceError),  # no bids at all
        (book("0.0014", "0.0015", bid_qty="0"), InvalidEventError),
    ],
    ids=["crossed", "garbled", "empty side", "zero size"],
)
def test_unusable_book_ticker_is_refused(raw: RawBookTicker, error: type[Exception]) -> None:
    with pytest.raises(error):
        quote_event("mexc", "spot", "XRPETH", raw, 1, Decimal(1))


def test_futures_depth_gives_the_best_level_of_each_side() -> None:
    message = {
        "channel": "push.depth.full", "symbol": "XRP_USDT", "ts": 1_763_645_012_047,
        "data": {"asks": [[1.0802, 10, 1], [1.0801, 7, 2]], "bids": [[1.0799, 5, 1], [1.08, 3, 1]],
                 "version": 96801927},
    }  # fmt: skip
    top = futures_depth_top("XRP_USDT", message)
    assert (top.bid, top.bid_qty, top.ask, top.ask_qty) == (1.08, 3, 1.0801, 7)
    assert (top.time_ms, top.version) == (1_763_645_012_047, "96801927")
    empty = futures_depth_top(
        "XRP_USDT", {"channel": "push.depth.full", "data": {"asks": [], "bids": []}}
    )
    assert (empty.bid, empty.ask, empty.time_ms) == (None, None, None)


def test_heartbeat_id_depends_on_symbol_and_exchange_time_only() -> None:
    beat = heartbeat_event("mexc", "spot", "ETHBTC", 1_515_575_399_999)
    assert beat.event_id == heartbeat_event("mexc", "spot", "ETHBTC", 1_515_575_399_999).event_id
    assert beat.event_id != heartbeat_event("mexc", "spot", "LTCBTC", 1_515_575_399_999).event_id
    assert beat.ts == datetime(2018, 1, 10, 9, 9, 59, 999_000, tzinfo=UTC)


@pytest.mark.parametrize(("text", "grace_ms"), [(None, 2_000), ("0", 0), (" 30000 ", 30_000)])
def test_candle_close_grace_comes_from_the_environment(text: str | None, grace_ms: int) -> None:
    env = {} if text is None else {"CANDLE_CLOSE_GRACE_MS": text}
    assert FeedSettings.from_env("BTCUSDT", env=env).candle_close_grace_ms == grace_ms


@pytest.mark.parametrize("text", ["-1", "30001", "2s", "1.5"])
def test_candle_close_grace_out_of_range_is_a_clear_error(text: str) -> None:
    with pytest.raises(
        ConfigError, match=r"CANDLE_CLOSE_GRACE_MS=\S+ is invalid: it must be whole"
    ):
        FeedSettings.from_env("BTCUSDT", env={"CANDLE_CLOSE_GRACE_MS": text})


def test_feed_variables_come_from_dotenv_below_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "CANDLE_CLOSE_GRACE_MS=1500\nCLAIRE_MEXC_SPOT_WS_URL=ws://127.0.0.1:9/ws\n"
    )
    cfg = FeedSettings.from_env("BTCUSDT")
    assert (cfg.candle_close_grace_ms, cfg.spot_ws_url) == (1500, "ws://127.0.0.1:9/ws")
    monkeypatch.setenv("CANDLE_CLOSE_GRACE_MS", "700")
    assert FeedSettings.from_env("BTCUSDT").candle_close_grace_ms == 700
