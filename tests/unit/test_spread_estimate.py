"""The candle spread estimate: high-low pairs, or the bounce of closes where that is larger."""

from __future__ import annotations

import math
import random
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.execution.spread import SpreadEstimate, corwin_schultz, roll

D = Decimal


@given(
    mid=st.floats(min_value=0.001, max_value=1000),
    spread=st.floats(min_value=0.0001, max_value=0.01),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_roll_reads_the_bounce_of_one_price_bars_between_bid_and_ask(
    mid: float, spread: float, seed: int
) -> None:
    """Each bar traded once, at the bid or at the ask, by chance (Roll's model)."""
    bid, ask = mid * (1 - spread / 2), mid * (1 + spread / 2)
    chance = random.Random(seed)
    closes = [chance.choice((bid, ask)) for _ in range(4000)]
    assert math.isclose(roll(closes), spread, rel_tol=0.25)
    # Bars that traded at one price each: no high-low spread at all.
    assert corwin_schultz(ask, ask, bid, bid, ask) == 0


@given(st.lists(st.floats(min_value=0.001, max_value=1000), min_size=0, max_size=60))
def test_roll_is_never_negative(closes: list[float]) -> None:
    assert roll(closes) >= 0


def test_a_trend_has_no_bounce() -> None:
    assert roll([1.0 + i / 100 for i in range(30)]) == 0


def test_the_estimate_is_the_larger_of_high_low_and_bounce() -> None:
    estimate = SpreadEstimate(window=40)
    chance = random.Random(7)
    for _ in range(41):
        price = chance.choice((D("1.001"), D("0.999")))
        estimate.on_bar(price, price, price)  # one-price bars, at the bid or the ask
    relative = estimate.relative()
    assert relative is not None and relative > D("0.001")
    assert relative == Decimal(repr(round(roll([float(c) for _, _, c in estimate.bars]), 10)))
    # A checkpoint restores the same estimate.
    again = SpreadEstimate.restore(40, estimate.export())
    assert again.relative() == relative
