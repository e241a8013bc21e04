"""Pure logic of the feed's time: the exchange clock, closing candles on it, candle groups."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.feeds.exchange.candle_groups import CandleGroups
from engine.feeds.exchange.candles import CandleAssembler
from engine.feeds.exchange.client import RawKline
from engine.feeds.exchange.clock import DRIFT_ALLOWANCE, ExchangeClock

MIN = 60_000


class FakeMonotonic:
    """Our local clock, in seconds, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def k(open_ms: int, close: str = "1", symbol: str = "X") -> RawKline:
    return RawKline(symbol, "1m", open_ms, "1", "2", "0.5", close, "3")


# --- the exchange clock ----------------------------------------------------------------


def test_clock_is_unknown_until_the_first_stamp_then_runs_with_the_local_clock() -> None:
    local = FakeMonotonic()
    clock = ExchangeClock(local)
    assert clock.now_ms() is None
    clock.observe(1_700_000_000_000)
    assert clock.now_ms() == 1_700_000_000_000
    local.now += 1.5
    aged_ms = 1500 * DRIFT_ALLOWANCE  # an old bound loses a little, in case we run fast
    assert clock.now_ms() == int(1_700_000_001_500 - aged_ms)


def test_clock_keeps_the_freshest_bound_and_ignores_late_messages() -> None:
    local = FakeMonotonic()
    clock = ExchangeClock(local)
    clock.observe(5_000_000)
    local.now += 1.0
    clock.observe(5_000_200)  # sent 800 ms ago, delayed on the way: an old bound
    assert clock.now_ms() == 5_001_000 - 1
    clock.observe(5_001_050)  # the exchange is further on than we thought
    assert clock.now_ms() == 5_001_050
    clock.observe(0)  # no stamp
    assert clock.now_ms() == 5_001_050


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=5_000),  # local ms until the next message
            st.integers(min_value=0, max_value=3_000),  # how long it was under way
        ),
        min_size=1,
        max_size=60,
    )
)
def test_clock_never_runs_ahead_of_the_exchange_nor_backwards(
    messages: list[tuple[int, int]],
) -> None:
    local = FakeMonotonic()
    clock = ExchangeClock(local)
    true_offset_ms = 1_600_000_000_000.0 - local.now * 1000  # the exchange's clock
    last = None
    for wait_ms, delay_ms in messages:
        local.now += wait_ms / 1000
        exchange_now = local.now * 1000 + true_offset_ms
        clock.observe(int(exchange_now - delay_ms))
        estimate = clock.now_ms()
        assert estimate is not None and estimate <= exchange_now
        assert last is None or estimate >= last
        last = estimate


# --- closing a window on the clock -----------------------------------------------------


def test_open_window_closes_at_end_plus_grace_not_before() -> None:
    a = CandleAssembler(MIN)
    a.emitted(0)  # the warm-up ended with the window at 0
    a.push(k(MIN, "1.1"))
    a.push(k(MIN, "1.2"))
    assert a.close_due(2 * MIN + 1_999, 2_000).closed is None
    step = a.close_due(2 * MIN + 2_000, 2_000)
    assert step.closed == k(MIN, "1.2") and step.backfill_from_ms is None
    assert a.pending is None and a.closed_through_ms == 2 * MIN
    assert a.close_due(10 * MIN, 2_000).closed is None  # nothing open any more


def test_update_after_a_close_by_the_clock_is_counted_and_not_emitted_again() -> None:
    a = CandleAssembler(MIN)
    a.push(k(0, "1.1"))
    assert a.close_due(MIN + 500, 500).closed == k(0, "1.1")
    for late in (k(0, "1.3"), k(0, "1.4")):
        step = a.push(late)
        assert step.closed is None and step.backfill_from_ms is None
    assert a.late_updates == 2 and a.pending is None
    step = a.push(k(MIN))  # the next window opens: no hole, nothing to fetch
    assert step.closed is None and step.backfill_from_ms is None
    assert a.push(k(2 * MIN)).closed == k(MIN)
    assert a.late_updates == 2


def test_window_open_across_a_reconnect_closes_on_the_clock_from_rest() -> None:
    a = CandleAssembler(MIN)
    a.push(k(0))
    a.reconnected()
    step = a.close_due(MIN + 2_000, 2_000)
    assert step.closed is None and (step.backfill_from_ms, step.backfill_to_ms) == (0, MIN)


def test_windows_that_never_came_are_fetched_when_the_stream_returns() -> None:
    a = CandleAssembler(MIN)
    a.push(k(0))
    a.close_due(MIN + 2_000, 2_000)
    step = a.push(k(4 * MIN))
    assert (step.backfill_from_ms, step.backfill_to_ms) == (MIN, 4 * MIN)


# --- candle groups -------------------------------------------------------------------------


def released(groups: list[list[tuple[str, RawKline]]]) -> list[list[tuple[str, int]]]:
    return [[(symbol, kline.open_ms) for symbol, kline in group] for group in groups]


def test_group_leaves_when_every_symbol_closed_the_window_sorted_by_symbol() -> None:
    groups = CandleGroups(["ETHUSDT", "BTCUSDT"], MIN, 2_000)
    groups.add("ETHUSDT", k(0, symbol="ETHUSDT"))
    assert groups.release({"ETHUSDT": MIN, "BTCUSDT": None}, MIN + 100) == []
    assert groups.next_due_ms() == MIN + 2_000
    groups.add("BTCUSDT", k(0, symbol="BTCUSDT"))
    out = groups.release({"ETHUSDT": MIN, "BTCUSDT": MIN}, MIN + 200)
    assert released(out) == [[("BTCUSDT", 0), ("ETHUSDT", 0)]]
    assert groups.next_due_ms() is None


def test_group_leaves_without_a_late_symbol_at_the_grace_and_its_candle_follows_alone() -> None:
    groups = CandleGroups(["A1", "B1"], MIN, 2_000)
    groups.add("A1", k(0, symbol="A1"))
    through = {"A1": MIN, "B1": 0}
    assert groups.release(through, MIN + 1_999) == []
    assert released(groups.release(through, MIN + 2_000)) == [[("A1", 0)]]
    groups.add("B1", k(0, symbol="B1"))  # B1's window came after its group left
    assert released(groups.release({"A1": MIN, "B1": MIN}, MIN + 2_100)) == [[("B1", 0)]]


def test_a_complete_later_group_does_not_overtake_an_incomplete_earlier_one() -> None:
    groups = CandleGroups(["A1", "B1"], MIN, 2_000)
    groups.add("A1", k(0, symbol="A1"))
    groups.add("A1", k(MIN, symbol="A1"))
    groups.add("B1", k(MIN, symbol="B1"))  # B1 skipped window 0 (a gap it backfills)
    assert groups.release({"A1": 2 * MIN, "B1": 0}, MIN) == []
    groups.add("B1", k(0, symbol="B1"))
    out = groups.release({"A1": 2 * MIN, "B1": 2 * MIN}, MIN)
    assert released(out) == [[("A1", 0), ("B1", 0)], [("A1", MIN), ("B1", MIN)]]


@given(
    st.permutations([(s, w) for s in ("A1", "B1", "C1") for w in range(4)]),
    st.sets(st.sampled_from([(s, w) for s in ("A1", "B1", "C1") for w in range(4)])),
)
def test_groups_release_every_candle_once_in_time_order(
    arrivals: list[tuple[str, int]], missing: set[tuple[str, int]]
) -> None:
    """Whatever the arrival order, and with some windows never arriving at all."""
    groups = CandleGroups(["C1", "A1", "B1"], MIN, 2_000)
    out: list[list[tuple[str, int]]] = []
    now = 0
    for symbol, window in arrivals:
        now += 700
        if (symbol, window) not in missing:
            groups.add(symbol, k(window * MIN, symbol=symbol))
        # Nothing is known closed; groups leave only when due.
        out += released(groups.release({}, now))
    out += released(groups.release({}, 10**9))
    flat = [item for group in out for item in group]
    expected = {(s, w * MIN) for s, w in arrivals if (s, w) not in missing}
    assert sorted(flat) == sorted(expected) and len(flat) == len(expected)
    for group in out:
        assert group == sorted(group) and len({w for _, w in group}) == 1
    on_time = [group[0][1] for group in out if len(group) > 1]
    assert on_time == sorted(on_time)
