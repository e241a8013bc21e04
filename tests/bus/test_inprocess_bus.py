from __future__ import annotations

import pytest

from engine.bus import InProcessBus
from tests.bus.contract import BusContract, trade


class TestInProcessBus(BusContract):
    @pytest.fixture
    def bus(self) -> InProcessBus:
        return InProcessBus()


def test_take_reads_everything_new_in_order() -> None:
    bus = InProcessBus()
    bus.create_group("market_data", "g")
    for n in range(3):
        bus.publish(trade(n))
    assert bus.take("market_data", "g") == [trade(0), trade(1), trade(2)]
    assert bus.take("market_data", "g") == []


def test_compact_keeps_memory_flat_once_every_group_has_read() -> None:
    bus = InProcessBus()
    bus.create_group("market_data", "a")
    bus.create_group("market_data", "b")
    for n in range(100):
        bus.publish(trade(n))
    bus.take("market_data", "a")
    bus.compact()
    assert bus.length("market_data") == 100  # group b has not read yet
    bus.take("market_data", "b")
    bus.compact()
    assert bus.length("market_data") == 0
    bus.publish(trade(100))
    assert bus.take("market_data", "a") == [trade(100)]
