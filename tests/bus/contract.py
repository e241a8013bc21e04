"""The bus contract as a reusable suite: subclass `BusContract` and provide a `bus` fixture."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from engine.bus import Bus
from engine.bus.base import msg_id_key
from engine.events import Side, Trade, to_json

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def trade(n: int, symbol: str = "BTCUSDT") -> Trade:
    return Trade(
        event_id=f"{symbol}-t{n}",
        ts=T0 + timedelta(seconds=n),
        cause_id=None,
        symbol=symbol,
        price=Decimal("100.5") + n,
        qty=Decimal("0.25"),
        side=Side.BUY,
        trade_id=str(n),
    )


class BusContract:
    def test_publish_returns_increasing_ids(self, bus: Bus) -> None:
        ids = [bus.publish(trade(n)) for n in range(5)]
        assert [msg_id_key(i) for i in ids] == sorted(msg_id_key(i) for i in ids)
        assert len(set(ids)) == 5

    def test_group_reads_every_message_once_in_order(self, bus: Bus) -> None:
        bus.create_group("market_data", "signal")
        for n in range(3):
            bus.publish(trade(n))
        got = bus.read("market_data", "signal", "c1", count=10)
        assert [d.event for d in got] == [trade(0), trade(1), trade(2)]
        assert bus.read("market_data", "signal", "c1", count=10) == []

    def test_groups_are_independent(self, bus: Bus) -> None:
        bus.create_group("market_data", "a")
        bus.create_group("market_data", "b")
        bus.publish(trade(1))
        assert len(bus.read("market_data", "a", "x")) == 1
        assert len(bus.read("market_data", "b", "y")) == 1

    def test_group_starting_at_latest_skips_history(self, bus: Bus) -> None:
        bus.publish(trade(1))
        bus.create_group("market_data", "late", start="latest")
        bus.publish(trade(2))
        assert [d.event for d in bus.read("market_data", "late", "c")] == [trade(2)]

    def test_create_group_twice_keeps_its_position(self, bus: Bus) -> None:
        bus.create_group("market_data", "g")
        bus.publish(trade(1))
        bus.read("market_data", "g", "c")
        bus.create_group("market_data", "g")
        assert bus.read("market_data", "g", "c") == []

    def test_read_honours_count(self, bus: Bus) -> None:
        bus.create_group("market_data", "g")
        for n in range(5):
            bus.publish(trade(n))
        assert len(bus.read("market_data", "g", "c", count=2)) == 2
        assert len(bus.read("market_data", "g", "c", count=10)) == 3

    def test_unacked_message_stays_pending_until_acked(self, bus: Bus) -> None:
        bus.create_group("market_data", "g")
        bus.publish(trade(1))
        [delivery] = bus.read("market_data", "g", "c1")
        [pending] = bus.pending("market_data", "g")
        assert pending.msg_id == delivery.msg_id and pending.consumer == "c1"
        assert bus.ack("market_data", "g", [delivery.msg_id]) == 1
        assert bus.pending("market_data", "g") == []
        assert bus.ack("market_data", "g", [delivery.msg_id]) == 0

    def test_claim_hands_a_crashed_consumers_messages_to_another(self, bus: Bus) -> None:
        bus.create_group("market_data", "g")
        bus.publish(trade(1))
        bus.read("market_data", "g", "crashed")
        [again] = bus.claim("market_data", "g", "rescuer", min_idle_ms=0)
        assert again.event == trade(1)
        assert again.times_delivered == 2
        assert bus.pending("market_data", "g")[0].consumer == "rescuer"

    def test_claim_leaves_recent_messages_alone(self, bus: Bus) -> None:
        bus.create_group("market_data", "g")
        bus.publish(trade(1))
        bus.read("market_data", "g", "busy")
        assert bus.claim("market_data", "g", "other", min_idle_ms=60_000) == []

    def test_raw_json_is_decoded_into_the_same_event(self, bus: Bus) -> None:
        bus.create_group("market_data", "g")
        bus.publish_raw("market_data", to_json(trade(7)))
        assert [d.event for d in bus.read("market_data", "g", "c")] == [trade(7)]

    @pytest.mark.parametrize(
        "payload",
        [
            "{not json",
            '{"type":"trade","price":"NaN"}',
            to_json(trade(1)).replace('"0.25"', '"-1"'),
            to_json(trade(1)).replace('"BTCUSDT"', '"BTC\'; DROP TABLE trades;--"'),
            '{"type":"bogus"}',
        ],
    )
    def test_malformed_message_goes_to_dead_letters_and_reading_goes_on(
        self, bus: Bus, payload: str
    ) -> None:
        bus.create_group("market_data", "g")
        bus.publish_raw("market_data", payload)
        bus.publish(trade(2))
        [good] = bus.read("market_data", "g", "c")
        assert good.event == trade(2)
        [dead] = bus.dead_letters()
        assert dead.payload == payload and dead.reason
        assert [p.msg_id for p in bus.pending("market_data", "g")] == [good.msg_id]

    def test_trim_drops_the_oldest(self, bus: Bus) -> None:
        for n in range(10):
            bus.publish(trade(n))
        assert bus.trim("market_data", 4) == 6
        assert bus.length("market_data") == 4
        bus.create_group("market_data", "g")
        assert [d.event for d in bus.read("market_data", "g", "c")] == [
            trade(n) for n in range(6, 10)
        ]

    def test_reading_an_unknown_group_is_an_error(self, bus: Bus) -> None:
        bus.publish(trade(1))
        with pytest.raises(KeyError, match="create it first"):
            bus.read("market_data", "nobody", "c")

    def test_a_malformed_message_is_recorded_once_whatever_the_number_of_groups(
        self, bus: Bus
    ) -> None:
        bus.create_group("market_data", "a")
        bus.create_group("market_data", "b")
        bus.publish_raw("market_data", "{broken")
        assert bus.read("market_data", "a", "c") == []
        assert bus.read("market_data", "b", "c") == []
        assert len(bus.dead_letters()) == 1
