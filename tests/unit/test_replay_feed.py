from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import DataSourceError
from engine.events import Candle, Trade
from engine.feeds.replay import clean_decimal, load_file, paced, parse_speed, plan_replay

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
