"""A live feed's events cut into market times on the exchange's clock, and what a feed
started again after a crash knows it published already."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import pytest

from engine.contracts import ContractTerms
from engine.events import Candle, FundingSettlement, Heartbeat, Quote, Side, Trade
from engine.markets import SymbolSpec
from engine.services.live_run import specs_from_config, specs_to_config
from engine.services.market_times import (
    MAX_QUIET_CLOSES,
    MarketTimes,
    PublishedMarks,
    from_ms,
    to_ms,
)

T0 = 1_700_000_000_000  # a multiple of 250 ms


def trade(ms: int, n: int = 0, symbol: str = "XRPETH", price: str = "1.5") -> Trade:
    return Trade(
        f"t-{symbol}-{ms}-{n}", from_ms(ms), None, symbol, Decimal(price), Decimal(2),
        Side.BUY, str(1000 + n),
    )  # fmt: skip


def candle(end_ms: int, symbol: str = "ETHBTC") -> Candle:
    one = Decimal(1)
    return Candle(
        f"c-{symbol}-{end_ms}", from_ms(end_ms), None, symbol, from_ms(end_ms - 300_000), 300,
        one, one, one, one, one,
    )  # fmt: skip


def closes(times: MarketTimes, *now: int) -> list[int]:
    return [mt.close_ms for n in now for mt in times.tick(n)]


def test_a_quiet_market_gets_a_watermark_at_every_interval_of_exchange_time() -> None:
    times = MarketTimes(250)
    got = closes(times, T0 + 10, T0 + 260, T0 + 300, T0 + 510, T0 + 999, T0 + 1000)
    assert got == [T0, T0 + 250, T0 + 500, T0 + 750, T0 + 1000]


def test_the_interval_is_the_setting_not_a_constant() -> None:
    times = MarketTimes(1000)
    assert closes(times, T0, T0 + 250, T0 + 500, T0 + 999, T0 + 1000) == [T0, T0 + 1000]


def test_events_go_into_the_market_time_of_their_stamp_in_arrival_order() -> None:
    times = MarketTimes(250, closed_ms=T0)
    a, b, c = trade(T0 + 10, 1), trade(T0 + 250, 2), trade(T0 + 251, 3)
    assert times.add(a) == [] and times.add(b) == []
    out = times.add(c)  # its stamp shows the exchange's clock passed T0 + 250
    assert [(mt.close_ms, mt.events) for mt in out] == [(T0 + 250, (a, b))]
    (last,) = times.tick(T0 + 500)
    assert (last.close_ms, last.events) == (T0 + 500, (c,))


def test_an_event_later_than_its_watermark_goes_into_the_next_market_time() -> None:
    times = MarketTimes(250, closed_ms=T0 + 500)
    late = trade(T0 + 100)
    times.add(late)
    (mt,) = times.tick(T0 + 750)
    assert mt.close_ms == T0 + 750 and mt.events == (late,)


def test_boundaries_passed_together_each_close_in_order() -> None:
    times = MarketTimes(250, closed_ms=T0)
    a, b = trade(T0 + 300), trade(T0 + 800)
    assert [mt.close_ms for mt in times.add(a)] == [T0 + 250]  # its stamp closed T0 + 250
    times._pending.append((T0 + 800, b))  # arrived without a tick in between
    got = [(mt.close_ms, mt.events) for mt in times.tick(T0 + 1600)]
    assert got == [
        (T0 + 500, (a,)), (T0 + 750, ()), (T0 + 1000, (b,)),
        (T0 + 1250, ()), (T0 + 1500, ()),
    ]  # fmt: skip


def test_a_jump_of_the_exchange_clock_closes_only_what_has_events_and_the_latest() -> None:
    times = MarketTimes(250, closed_ms=T0)
    a = trade(T0 + 300)
    times.add(a)
    jump = T0 + 250 * (MAX_QUIET_CLOSES + 5)
    got = [(mt.close_ms, mt.events) for mt in times.tick(jump)]
    assert got == [(T0 + 500, (a,)), (jump, ())]


def test_a_candle_close_is_a_market_time_of_its_own_at_its_end() -> None:
    end = T0 + 300_000
    times = MarketTimes(250, closed_ms=end - 250)
    before, after = trade(end - 10), trade(end + 5)
    times.add(before)
    times._pending.append((end + 5, after))
    c1, c2 = candle(end, "ETHBTC"), candle(end, "LTCBTC")
    out = times.candles([c1, c2])
    assert [(mt.close_ms, mt.events) for mt in out] == [(end, (before, c1, c2))]
    assert times.closed_ms == end and times.pending == 1  # the later trade waits


def test_a_candle_closed_after_its_time_closed_goes_out_at_the_last_close() -> None:
    end = T0 + 300_000
    times = MarketTimes(250, closed_ms=end + 2000)  # the grace period had passed
    c = candle(end)
    (mt,) = times.candles([c])
    assert mt.close_ms == end + 2000 and mt.events == (c,)
    assert times.tick(end + 2100) == []  # nothing new: time never moves back


def test_a_non_positive_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        MarketTimes(0)


def test_marks_drop_what_was_published_and_keep_what_was_not() -> None:
    marks = PublishedMarks()
    published = [trade(T0, 1), trade(T0 + 5, 2), trade(T0 + 5, 3)]
    saved = marks.note(published)
    again = PublishedMarks(saved)  # as read back from Redis after a restart
    assert [again.fresh(t) for t in published] == [False, False, False]
    assert again.fresh(trade(T0 + 5, 4))  # same millisecond, not published yet
    assert again.fresh(trade(T0 + 6, 5))
    quote = Quote(
        "q-1", from_ms(T0), None, "XRPETH", Decimal(1), Decimal(2), Decimal(1), Decimal(1)
    )
    assert again.fresh(quote)  # another kind has its own mark
    beat = Heartbeat("h-1", from_ms(T0), None, "XRPETH")
    assert not PublishedMarks(PublishedMarks().note([beat])).fresh(beat)
    settle = FundingSettlement("s", from_ms(T0 - 9), None, "XRPETH", Decimal("0.0001"))
    assert again.fresh(settle)  # settlements follow the watermarks, not the marks


def test_marks_give_where_trades_continue_for_the_exchange_feed() -> None:
    assert PublishedMarks().note([]) == {}  # nothing published, nothing to store
    saved = PublishedMarks().note([trade(T0, 1), trade(T0 + 7, 2), trade(T0 + 7, 3, price="1.50")])
    resume = PublishedMarks(saved).trades_of("XRPETH")
    assert resume is not None
    assert resume.last_ms == T0 + 7 and resume.last_id == 1003
    assert resume.at_last_ms == Counter({("1.5", "2", "buy"): 2})
    assert PublishedMarks(saved).trades_of("ETHBTC") is None


def test_a_late_event_does_not_move_a_mark_back() -> None:
    marks = PublishedMarks()
    saved = marks.note([trade(T0 + 10, 1)])
    assert marks.note([trade(T0, 2)]) == {}
    assert not PublishedMarks(saved).fresh(trade(T0 + 9, 3))
    assert to_ms(from_ms(T0 + 10)) == T0 + 10


def test_live_specs_survive_the_run_record_exactly() -> None:
    spot = SymbolSpec(
        "XRPETH", "XRP", "ETH", Decimal("0.00000001"), Decimal("0.1"), Decimal("0.001"),
        Decimal("0.002"), min_notional=Decimal("0.0005"),
    )  # fmt: skip
    terms = ContractTerms(
        "USDT", Decimal(1), Decimal("0.004"), Decimal("0.008"), Decimal(125),
        risk_level_limit=5, funding_interval_h=4,
    )  # fmt: skip
    perp = SymbolSpec(
        "XRPUSDT", "XRP", "USDT", Decimal("0.0001"), Decimal(1), Decimal(0), Decimal("0.0002"),
        maintenance_margin_rate=Decimal("0.004"), contract=terms,
    )  # fmt: skip
    specs = {"XRPETH": spot, "XRPUSDT": perp}
    back = specs_from_config(json.loads(json.dumps(specs_to_config(specs))))
    assert back == specs
    assert back["XRPUSDT"].contract is not None
    assert back["XRPUSDT"].contract.funding_interval_h == 4
