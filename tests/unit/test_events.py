from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import InvalidEventError
from engine.events import (
    Alert,
    Candle,
    Intent,
    Liquidity,
    Order,
    OrderResult,
    OrderStatus,
    OrderType,
    PortfolioSnapshot,
    PositionView,
    RiskEvent,
    Severity,
    Side,
    Signal,
    Trade,
    TradingState,
    derive_id,
    from_json,
    parse_enum,
    to_json,
)

T0 = datetime(2018, 1, 10, 5, tzinfo=UTC)
D = Decimal

prices = st.decimals(min_value=D("0.00000001"), max_value=D("1000000"), places=8)
sizes = st.decimals(min_value=D("0.00000001"), max_value=D("100000000"), places=8)


def trade(**overrides: object) -> Trade:
    fields = dict(
        event_id="t1",
        ts=T0,
        cause_id=None,
        symbol="BTCUSDT",
        price=D("42000.5"),
        qty=D("0.01"),
        side=Side.BUY,
        trade_id="1",
    )
    fields.update(overrides)
    return Trade(**fields)  # type: ignore[arg-type]


def fill(**overrides: object) -> OrderResult:
    fields = dict(
        event_id="f1",
        ts=T0,
        cause_id="o1",
        order_id="o1",
        symbol="ETHBTC",
        side=Side.BUY,
        status=OrderStatus.FILLED,
        qty=D("1.5"),
        price=D("0.0985"),
        requested_price=D("0.0984"),
        slippage_bps=D("10.16"),
        fee=D("0.0000738"),
        liquidity=Liquidity.TAKER,
        remaining_qty=D(0),
        reason="",
        market_event_id="m1",
    )
    fields.update(overrides)
    return OrderResult(**fields)  # type: ignore[arg-type]


ALL_EVENTS = [
    trade(),
    Candle(
        "c1",
        T0 + timedelta(minutes=5),
        None,
        "ETHBTC",
        T0,
        300,
        D("0.0984"),
        D("0.0995"),
        D("0.0983"),
        D("0.0994"),
        D("1820.5"),
    ),
    Signal("s1", T0, "c1", "ETHBTC", Side.BUY, D("0.75"), "momentum up", "momentum"),
    Order(
        "o1",
        T0,
        "s1",
        "o1",
        "ETHBTC",
        Side.BUY,
        OrderType.LIMIT,
        D("2"),
        D("0.098"),
        D("0.0985"),
        Intent.ENTRY,
        900,
    ),
    fill(),
    fill(
        event_id="r1",
        status=OrderStatus.EXPIRED,
        qty=D(0),
        price=None,
        liquidity=None,
        reason="ttl",
    ),
    PortfolioSnapshot(
        "p1",
        T0,
        "f1",
        D("9.5"),
        D("10.1"),
        D("-0.1"),
        D("0.2"),
        D("0.01"),
        D("0.6"),
        D("0.0594"),
        D("10.2"),
        D("0.0098"),
        D("10"),
        D("0"),
        (PositionView("ETHBTC", D("6"), D("0.0984"), D("0.1"), D("0.5904"), D(0)),),
    ),
    RiskEvent(
        "r2",
        T0,
        "s1",
        "refusal",
        "max_position",
        "ETHBTC",
        TradingState.ACTIVE,
        "no room",
        {"equity": "10"},
    ),
    Alert("a1", T0, "r2", Severity.CRITICAL, "circuit_breaker", "halted", {"equity": "9"}),
]


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_survives_a_json_round_trip(event: object) -> None:
    assert from_json(to_json(event)) == event  # type: ignore[arg-type]


@given(
    price=prices,
    qty=sizes,
    ms=st.integers(min_value=0, max_value=4_102_444_800_000),
    side=st.sampled_from(Side),
)
def test_trade_round_trip_keeps_exact_decimals(price: D, qty: D, ms: int, side: Side) -> None:
    event = trade(price=price, qty=qty, side=side, ts=datetime.fromtimestamp(ms / 1000, tz=UTC))
    back = from_json(to_json(event))
    assert back == event
    assert str(back.price) == str(price)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("price", "NaN", "not_finite"),
        ("price", "Infinity", "not_finite"),
        ("price", "-Infinity", "not_finite"),
        ("price", "-1", "not_positive"),
        ("price", "0", "not_positive"),
        ("qty", "0", "not_positive"),
        ("qty", "-0.5", "not_positive"),
        ("price", "abc", "not_a_number"),
        ("price", True, "not_a_number"),
        ("symbol", "BTC'; DROP TABLE trades;--", "bad_symbol"),
        ("symbol", "btcusdt", "bad_symbol"),
        ("side", "long", "unknown_side"),
        ("ts", "2024-01-01T00:00:00", "bad_time"),
    ],
)
def test_bad_values_are_refused_with_a_reason(field: str, value: object, reason: str) -> None:
    body = json.loads(to_json(trade()))
    body[field] = value
    with pytest.raises(InvalidEventError) as refused:
        from_json(json.dumps(body))
    assert refused.value.reason == reason
    assert str(refused.value)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_bare_json_constants_are_refused(literal: str) -> None:
    text = to_json(trade()).replace('"42000.5"', literal)
    with pytest.raises(InvalidEventError) as refused:
        from_json(text)
    assert refused.value.reason == "not_finite"


@pytest.mark.parametrize(
    "text", ["", "{", "[1,2]", '"trade"', '{"type": 3}', '{"type":"trade"}', "\x00\x01"]
)
def test_malformed_json_is_refused(text: str) -> None:
    with pytest.raises(InvalidEventError):
        from_json(text)


def test_unknown_fields_are_refused() -> None:
    body = json.loads(to_json(trade()))
    body["leverage"] = "100"
    with pytest.raises(InvalidEventError, match="leverage"):
        from_json(json.dumps(body))


@pytest.mark.parametrize("text", ["FILLED", "Filled", " partially_FILLED ", "Rejected", "EXPIRED"])
def test_known_statuses_are_accepted_in_any_letter_case(text: str) -> None:
    assert parse_enum(OrderStatus, text, "status") is OrderStatus(text.strip().lower())


@pytest.mark.parametrize("text", ["FILL", "done", "new", "CANCELED", ""])
def test_unknown_statuses_are_refused_in_any_letter_case(text: str) -> None:
    body = json.loads(to_json(fill()))
    body["status"] = text
    with pytest.raises(InvalidEventError) as refused:
        from_json(json.dumps(body))
    assert refused.value.reason == "unknown_status"


def test_status_in_upper_case_decodes_to_lower_case() -> None:
    body = json.loads(to_json(fill()))
    body["status"] = "PARTIALLY_FILLED"
    body["remaining_qty"] = "1"
    assert from_json(json.dumps(body)).status is OrderStatus.PARTIALLY_FILLED  # type: ignore[attr-defined]


def test_a_fill_without_price_or_a_rejection_with_quantity_is_inconsistent() -> None:
    with pytest.raises(InvalidEventError):
        fill(price=None)
    with pytest.raises(InvalidEventError):
        fill(status=OrderStatus.REJECTED, liquidity=None)
    with pytest.raises(InvalidEventError):
        fill(status=OrderStatus.FILLED, remaining_qty=D("1"))


def test_candle_with_close_outside_its_range_is_refused() -> None:
    with pytest.raises(InvalidEventError) as refused:
        Candle("c", T0, None, "ETHBTC", T0, 300, D(1), D(2), D("0.5"), D(3), D(1))
    assert refused.value.reason == "inconsistent_candle"


def test_times_must_be_utc() -> None:
    with pytest.raises(InvalidEventError):
        trade(ts=datetime(2024, 1, 1))
    with pytest.raises(InvalidEventError):
        trade(ts=datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2))))


def test_offset_times_in_json_are_converted_to_utc() -> None:
    body = json.loads(to_json(trade()))
    body["ts"] = "2018-01-10T07:00:00+02:00"
    assert from_json(json.dumps(body)).ts == T0


def test_derived_ids_are_stable_and_distinct() -> None:
    assert derive_id("ord", "sig-1") == derive_id("ord", "sig-1")
    assert derive_id("ord", "sig-1") != derive_id("ord", "sig-2")
