from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import ConfigError, DataSourceError, InvalidEventError
from engine.events import Candle, Trade
from engine.feeds import recorded, replay
from engine.feeds.replay import (
    Rejected,
    clean_decimal,
    load_file,
    paced,
    parse_speed,
    plan_replay,
    sharing_plans,
)

HEADER = "open_time,open,high,low,close,volume\n"
T0 = 1515560100000  # 2018-01-10 04:55 UTC
FIVE_MIN = 300_000


def write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "".join(r + "\n" for r in rows))
    return path


def test_float_noise_is_cleaned_from_recorded_values() -> None:
    assert clean_decimal("5.330000000000001e-05", "open") == Decimal("0.0000533")
    assert clean_decimal("0.09969000000000001", "open") == Decimal("0.09969")
    assert clean_decimal("1820.54447418", "volume") == Decimal("1820.54447418")
    assert str(clean_decimal("100", "volume")) == "100"


@given(
    whole=st.text("0123456789", min_size=1, max_size=18),
    fraction=st.none() | st.text("0123456789", min_size=1, max_size=18),
    pad=st.sampled_from(["", " ", "\t"]),
)
def test_plain_numbers_clean_exactly_as_any_other_text(
    whole: str, fraction: str | None, pad: str
) -> None:
    # Plain digits take a shortcut; it must give the very Decimal (digits and exponent)
    # that rounding to 15 digits and normalizing gives.
    text = pad + whole + ("" if fraction is None else "." + fraction) + pad
    assert clean_decimal(text, "x").as_tuple() == recorded._cleaned(text, "x").as_tuple()


def _exponent_as_tuple(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return exponent


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**45), max_value=10**45))
def test_cleaning_any_number_keeps_integers_plain_and_everything_else_normal(
    value: Decimal,
) -> None:
    # The general path tells a positive exponent from the text; it must agree with the
    # digits-and-exponent view of the number.
    try:
        cleaned = recorded._cleaned(str(value), "x")
    except InvalidEventError:
        return  # out of range: refused, whichever way it is told
    normal = value.normalize(recorded._FLOAT_DIGITS)
    expected = normal.quantize(Decimal(1)) if _exponent_as_tuple(normal) > 0 else normal
    assert cleaned.as_tuple() == expected.as_tuple()


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_a_prices_decimal_places_are_the_digits_its_exponent_says(value: Decimal) -> None:
    assert replay._decimals(value) == max(0, -_exponent_as_tuple(value))


def test_candles_become_events_at_their_close_time(tmp_path: Path) -> None:
    f = load_file(write(tmp_path / "ETH_BTC-5m.csv", [f"{T0},0.0984,0.0995,0.0983,0.0994,18.5"]))
    [candle] = f.events
    assert isinstance(candle, Candle)
    assert candle.symbol == "ETHBTC" and f.quote == "BTC"
    assert candle.open_time == datetime(2018, 1, 10, 4, 55, tzinfo=UTC)
    assert candle.ts == candle.open_time + timedelta(minutes=5)
    assert candle.open == Decimal("0.0984") and candle.volume == Decimal("18.5")


def test_bad_rows_are_skipped_with_their_reason_and_the_rest_is_kept(tmp_path: Path) -> None:
    rows = [
        f"{T0},1,2,0.5,1.5,10",
        f"{T0 + FIVE_MIN},nan,2,0.5,1.5,10",
        f"{T0 + 2 * FIVE_MIN},1,inf,0.5,1.5,10",
        f"{T0 + 3 * FIVE_MIN},-1,2,0.5,1.5,10",
        f"{T0 + 4 * FIVE_MIN},0,2,0.5,1.5,10",
        f"{T0 + 5 * FIVE_MIN},1,2,0.5,1.5,-3",
        f"{T0 + 6 * FIVE_MIN},1,2,0.5",
        f"{T0 + 7 * FIVE_MIN},1,2,0.5,3,10",
        "later,1,2,0.5,1.5,10",
        f"{T0},1,2,0.5,1.5,10",
        f"{T0 + 9 * FIVE_MIN},1,2,0.5,1.5,10",
    ]
    f = load_file(write(tmp_path / "ETH_BTC-5m.csv", rows))
    assert len(f.events) == 2
    reasons = [r.reason.split(":")[0] for r in f.rejected]
    assert reasons == [
        "not_finite",
        "not_finite",
        "not_positive",
        "not_positive",
        "negative",
        "short_row",
        "inconsistent_candle",
        "not_a_number",
        "duplicate",
    ]
    assert [r.line for r in f.rejected] == [3, 4, 5, 6, 7, 8, 9, 10, 11]


def test_trades_file_is_read_with_taker_side(tmp_path: Path) -> None:
    path = write(
        tmp_path / "XRP_ETH-2019-10-11-trades.csv",
        [
            "1570752011620,13519807,sell,0.00141342,23.0",
            "1570752011620,13519808,BUY,0.00141266,54.0",
        ],
        header="time_ms,trade_id,side,price,amount\n",
    )
    f = load_file(path)
    assert [type(e) for e in f.events] == [Trade, Trade]
    assert [e.side.value for e in f.events] == ["sell", "buy"]  # type: ignore[union-attr]
    assert f.events[0].event_id == "XRPETH-t13519807"


def test_files_merge_in_time_order_from_the_first_common_timestamp(tmp_path: Path) -> None:
    a = write(tmp_path / "AAA_BTC-5m.csv", [f"{T0 + i * FIVE_MIN},1,1,1,1,1" for i in range(10)])
    # BBB starts two bars later and has a real gap.
    b = write(
        tmp_path / "BBB_BTC-5m.csv",
        [f"{T0 + i * FIVE_MIN},2,2,2,2,1" for i in (2, 3, 6, 7, 8, 9, 10, 11)],
    )
    plan = plan_replay([a, b], days=None)
    events = list(plan.events())
    assert plan.start == datetime.fromtimestamp((T0 + 2 * FIVE_MIN) / 1000, tz=UTC)
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert len(events) == 8 + 8
    window = list(plan_replay([a, b], days=20 / 1440).events())  # 20 minutes
    assert {e.symbol for e in window} == {"AAABTC", "BBBBTC"}
    assert len(window) == 4 + 2


def test_mixed_quote_currencies_are_refused(tmp_path: Path) -> None:
    a = write(tmp_path / "AAA_BTC-5m.csv", [f"{T0},1,1,1,1,1"])
    b = write(tmp_path / "AAA_USDT-5m.csv", [f"{T0},1,1,1,1,1"])
    with pytest.raises(DataSourceError, match="one quote currency"):
        plan_replay([a, b])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("ETH_BTC-5m.csv", "a,b,c\n1,2,3\n", "has columns a, b, c"),
        ("ethbtc.csv", HEADER, "is not named"),
        ("ETH_BTC-5m.csv", HEADER + "x,y\n", "holds no valid rows"),
    ],
)
def test_unreadable_files_are_clear_errors(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(DataSourceError, match=message):
        load_file(tmp_path / name)


def test_speed_parsing() -> None:
    assert parse_speed("max") is None and parse_speed("MAX") is None
    assert parse_speed("1x") == 1.0 and parse_speed("60x") == 60.0 and parse_speed("2.5") == 2.5
    for bad in ("fast", "0x", "-1x", "infx"):
        with pytest.raises(DataSourceError):
            parse_speed(bad)


def test_pacing_waits_event_time_divided_by_speed(tmp_path: Path) -> None:
    f = load_file(
        write(tmp_path / "ETH_BTC-5m.csv", [f"{T0 + i * FIVE_MIN},1,1,1,1,1" for i in range(4)])
    )
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    out = list(paced(f.events, 60.0, sleep=sleep, monotonic=lambda: now[0]))
    assert out == f.events
    assert slept == pytest.approx([5.0, 5.0, 5.0])  # 5 minutes of event time at 60x
    assert list(paced(f.events, None, sleep=sleep)) == f.events and len(slept) == 3


def codes(rejected: list[Rejected]) -> list[str]:
    return [r.code for r in rejected]


GOOD = [f"{T0 + i * FIVE_MIN},1,2,0.5,1.5,10" for i in range(4)]


@pytest.mark.parametrize(
    ("row", "code"),
    [
        (f"{T0 + FIVE_MIN},1,2,0.5,1.5,1e28", "out_of_range"),
        (f"{T0 + FIVE_MIN},1,2,0.5,1.5,1e308", "out_of_range"),
        (f"{T0 + FIVE_MIN},1,2,0.5,1.5,1e999999999", "out_of_range"),
        (f"{T0 + FIVE_MIN},1,2,0.5,1.5,-1e999999999", "out_of_range"),
        (f"{T0 + FIVE_MIN},1e13,1e13,1e13,1e13,1", "out_of_range"),
        (f"{T0 + FIVE_MIN},1e-13,1e-13,1e-13,1e-13,1", "out_of_range"),
        ("-1000,1,2,0.5,1.5,10", "bad_time"),
        ("99999999999999999999,1,2,0.5,1.5,10", "bad_time"),
        ("253402300799000,1,2,0.5,1.5,10", "bad_time"),  # 9999-12-31
        ("0,1,2,0.5,1.5,10", "bad_time"),
        ("1.5e12,1,2,0.5,1.5,10", "not_a_number"),
        (f"{T0 + FIVE_MIN},1,2,0.5,1.5,1e-999999999x", "not_a_number"),
        (f"{T0 + FIVE_MIN},1,2,0.5,1.5,{'9' * 5000}", "line_too_long"),
    ],
)
def test_impossible_values_are_refused_row_by_row(tmp_path: Path, row: str, code: str) -> None:
    path = write(tmp_path / "ETH_BTC-5m.csv", [GOOD[0], row, *GOOD[2:]])

    f = load_file(path)

    assert codes(f.rejected) == [code]
    assert [r.line for r in f.rejected] == [3]
    assert len(f.events) == 3
    assert "\n" not in f.rejected[0].reason and len(f.rejected[0].reason) <= 200


def test_a_latin_1_byte_refuses_its_row_only(tmp_path: Path) -> None:
    path = tmp_path / "ETH_BTC-5m.csv"
    body = HEADER.encode() + b"".join(r.encode() + b"\n" for r in GOOD)
    path.write_bytes(body.replace(b"0.5,1.5,10\n", b"0.5,1.5,10\xe9\n", 1))

    f = load_file(path)

    assert codes(f.rejected) == ["not_utf8"] and f.rejected[0].line == 2
    assert len(f.events) == 3


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "ETH_BTC-5m.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + "\n".join(GOOD) + "\n").encode())

    f = load_file(path)

    assert f.rejected == [] and len(f.events) == 4


def test_windows_line_ends_quotes_and_blank_lines_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "ETH_BTC-5m.csv"
    rows = [GOOD[0], f'"{T0 + FIVE_MIN}","1","2","0.5","1.5","10"', "", GOOD[2]]
    path.write_bytes((HEADER + "\r\n".join(rows) + "\r\n").encode())

    f = load_file(path)

    assert f.rejected == [] and len(f.events) == 3


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("ETH_BTC-5m.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text CSV file"),
        ("ETH_BTC-5m.csv", bytes(range(256)) * 4, "not a text CSV file"),
        ("ETH_BTC-5m.csv", b"open_time\xe9,open\n", "not a text CSV file"),
        ("ETH_BTC-5m.csv", b"x" * 10_000, "not a text CSV file"),
        ("ETH_BTC-5000w.csv", HEADER.encode() + GOOD[0].encode(), "not a real candle length"),
        ("ETH_BTC-0m.csv", HEADER.encode() + GOOD[0].encode(), "not a real candle length"),
        ("ETH_BTC-99999999999m.csv", HEADER.encode(), "is not like 5m"),
        ("ABCDEFGHIJKLMNOPQRSTUVWXYZ_BTC-5m.csv", HEADER.encode(), "is not valid"),
        ("ETH_BTC-5m.csv", b"", "has columns none"),
    ],
)
def test_a_file_that_cannot_be_read_at_all_is_one_sentence(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(content)

    with pytest.raises(DataSourceError) as refused:
        plan_replay([tmp_path / name], days=1)

    assert message in str(refused.value)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300


def test_a_lone_row_far_in_the_future_does_not_swallow_the_rows_after_it(
    tmp_path: Path,
) -> None:
    rows = [f"{T0 + i * FIVE_MIN},1,2,0.5,1.5,10" for i in range(6)]
    rows.insert(3, f"{T0 + 10_000 * FIVE_MIN},1,2,0.5,1.5,10")  # a month later, then back
    f = load_file(write(tmp_path / "ETH_BTC-5m.csv", rows))

    assert len(f.events) == 6
    assert codes(f.rejected) == ["out_of_order"] and f.rejected[0].line == 5
    assert "later than the rows around it" in f.rejected[0].reason


def test_rows_out_of_time_order_are_refused(tmp_path: Path) -> None:
    rows = [f"{T0 + i * FIVE_MIN},1,2,0.5,1.5,10" for i in (0, 1, 2, 1, 3, 0, 4)]
    f = load_file(write(tmp_path / "ETH_BTC-5m.csv", rows))

    assert [e.open_time for e in f.events] == sorted({e.open_time for e in f.events})
    assert len(f.events) == 5
    assert codes(f.rejected) == ["duplicate", "out_of_order"]


def test_repeated_trade_ids_are_refused_and_equal_times_are_fine(tmp_path: Path) -> None:
    path = write(
        tmp_path / "XRP_ETH-trades.csv",
        [
            "1570752011620,1,sell,0.00141342,23.0",
            "1570752011620,2,buy,0.00141266,54.0",
            "1570752011620,2,buy,0.00141266,54.0",
            "1570752011621,3,buy,0.00141266,54.0",
        ],
        header="time_ms,trade_id,side,price,amount\n",
    )
    f = load_file(path)
    assert [e.event_id for e in f.events] == ["XRPETH-t1", "XRPETH-t2", "XRPETH-t3"]
    assert codes(f.rejected) == ["duplicate"] and f.rejected[0].line == 4


def test_rows_after_the_window_are_never_read(tmp_path: Path) -> None:
    rows = [f"{T0 + i * FIVE_MIN},1,2,0.5,1.5,10" for i in range(300)]
    rows[200] = "garbage,1,2,0.5,1.5,10"  # 1000 minutes in: after a 10-hour window
    rows[50] = "garbage,1,2,0.5,1.5,10"  # inside it
    plan = plan_replay([write(tmp_path / "ETH_BTC-5m.csv", rows)], days=10 / 24)

    assert [r.line for r in plan.rejected] == [52]
    assert plan.rejected_count == 1
    assert len(list(plan.events())) == 120 - 1


def test_the_window_is_the_same_read_lazily_or_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = write(tmp_path / "AAA_BTC-5m.csv", [f"{T0 + i * FIVE_MIN},1,1,1,1,1" for i in range(50)])
    b = write(tmp_path / "BBB_BTC-5m.csv", [f"{T0 + i * FIVE_MIN},2,2,2,2,1" for i in range(3, 40)])
    kept = list(plan_replay([a, b], days=1).events())
    monkeypatch.setattr(replay, "MAX_CACHED_EVENTS", 10)
    plan = plan_replay([a, b], days=1)
    assert [f.cached is None for f in plan.files] == [True, True]
    assert list(plan.events()) == kept and len(kept) == 47 + 37


def test_a_start_plans_the_same_replay_once(tmp_path: Path) -> None:
    a = write(tmp_path / "AAA_BTC-5m.csv", [f"{T0 + i * FIVE_MIN},1,1,1,1,1" for i in range(50)])
    assert plan_replay([a], days=0.1) is not plan_replay([a], days=0.1)  # outside: each anew
    with sharing_plans():
        first = plan_replay([a], days=0.1)
        assert plan_replay([a], days=0.1) is first  # the preflight's plan is the run's
        assert plan_replay([a], days=0.1) is not first  # once only
        other = plan_replay([a], days=0.05)
        assert other.end is not None and other.end < first.end  # type: ignore[operator]
        stale = plan_replay([a], days=0.1)
        write(a, [f"{T0 + i * FIVE_MIN},1,1,1,1,1" for i in range(60)])  # changed on disk
        assert plan_replay([a], days=0.1) is not stale
        future = datetime(2018, 1, 10, 5, 30, tzinfo=UTC)  # the window is not over by then
        young = plan_replay([a], days=0.1, now=future)
        assert plan_replay([a], days=0.1, now=future) is not young


def test_starts_in_two_threads_share_no_plans_and_leave_none_behind(tmp_path: Path) -> None:
    import threading

    a = write(tmp_path / "AAA_BTC-5m.csv", [f"{T0 + i * FIVE_MIN},1,1,1,1,1" for i in range(50)])
    entered, first_left = threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:  # enters first, leaves first, while the second is still inside
        with sharing_plans():
            plan_replay([a], days=0.1)
            entered.set()
            assert second_inside.wait(5)
        first_left.set()

    def second() -> None:
        assert entered.wait(5)
        with sharing_plans():
            second_inside.set()
            assert first_left.wait(5)
            plan = plan_replay([a], days=0.1)
            seen["own"] = plan_replay([a], days=0.1) is plan  # its own plan, not the first's

    second_inside = threading.Event()
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"own": True}
    assert plan_replay([a], days=0.1) is not plan_replay([a], days=0.1)  # nothing left behind


def test_rows_in_the_future_are_judged_against_the_clock_given(tmp_path: Path) -> None:
    path = write(tmp_path / "ETH_BTC-5m.csv", GOOD)
    then = datetime(2018, 1, 9, 5, 0, tzinfo=UTC)  # with a day's margin, 05:00 is the last row

    assert len(load_file(path, now=then).events) == 2
    assert len(load_file(path).events) == 4


@pytest.mark.parametrize("days", [0.0, -1.0, 1e-9, 3650.1, 1e9, math.nan, math.inf])
def test_days_out_of_range_are_refused(tmp_path: Path, days: float) -> None:
    with pytest.raises(ConfigError, match=r"--days .* is out of range"):
        plan_replay([write(tmp_path / "ETH_BTC-5m.csv", GOOD)], days=days)


@pytest.mark.parametrize("days", [1 / 1440, 3650.0])
def test_days_at_their_bounds_are_accepted(tmp_path: Path, days: float) -> None:
    plan = plan_replay([write(tmp_path / "ETH_BTC-5m.csv", GOOD)], days=days)
    assert len(list(plan.events())) == (1 if days < 1 else 4)


@pytest.mark.parametrize(
    ("text", "accepted"),
    [("0.01x", True), ("10000000x", True), ("0.0099x", False), ("10000001x", False),
     ("1e-300x", False), ("nanx", False), ("-infx", False)],
)  # fmt: skip
def test_speed_bounds(text: str, accepted: bool) -> None:
    if accepted:
        assert parse_speed(text) == float(text.removesuffix("x"))
    else:
        with pytest.raises(DataSourceError, match=r"must be from 0\.01x to 10,000,000x"):
            parse_speed(text)
