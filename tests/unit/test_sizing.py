from __future__ import annotations

import csv
import math
import random
import statistics
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.risk.sizing import (
    daily_volatility,
    entry_headroom,
    fixed_fraction_notional,
    horizon_bars,
    volatility_scaled_notional,
)

D = Decimal
money = st.decimals(min_value=D("0.01"), max_value=D("10000000"), places=2)
fractions = st.decimals(min_value=D("0.01"), max_value=D("0.99"), places=2)


@given(equity=money, fraction=fractions)
def test_fixed_fraction_is_that_share_of_equity(equity: D, fraction: D) -> None:
    assert fixed_fraction_notional(equity, fraction) == equity * fraction


@given(equity=money, pos=fractions, exp=fractions, sym=money, total=money, cash=money, target=money)
def test_approved_notional_never_exceeds_any_limit(
    equity: D, pos: D, exp: D, sym: D, total: D, cash: D, target: D
) -> None:
    headroom = entry_headroom(equity, pos, exp, sym, total, cash, D("0.0017"))
    _, room = headroom.binding()
    notional = min(target, room)
    assert room >= 0
    assert sym + notional <= equity * pos or notional == 0
    assert total + notional <= equity * exp or notional == 0
    assert notional * D("1.0017") <= cash


@given(vol=st.floats(min_value=1e-5, max_value=0.5), equity=money, base=fractions)
def test_volatility_scaling_is_bounded_and_shrinks_when_markets_are_wild(
    vol: float, equity: D, base: D
) -> None:
    calm = volatility_scaled_notional(equity, base, D("0.02"), vol)
    wild = volatility_scaled_notional(equity, base, D("0.02"), vol * 2)
    assert 0 < wild <= calm <= equity * base * 3


def test_daily_volatility_needs_two_horizons_of_bars() -> None:
    assert horizon_bars(288) == 48 and horizon_bars(24) == 4 and horizon_bars(1) == 1
    assert daily_volatility([1.0] * 96, 288) is None
    assert daily_volatility([1.0] * 97, 288) == 0.0


def _random_walk(n: int, sigma: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    price, out = 100.0, []
    for _ in range(n):
        price *= math.exp(rng.gauss(0, sigma))
        out.append(price)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_daily_volatility_of_a_random_walk_matches_its_true_volatility(seed: int) -> None:
    sigma = 0.002  # per 5-minute bar
    estimate = daily_volatility(_random_walk(2000, sigma, seed), 288)
    assert estimate is not None
    assert estimate == pytest.approx(sigma * math.sqrt(288), rel=0.35)


@pytest.mark.parametrize("seed", range(5))
def test_bid_ask_bounce_does_not_inflate_daily_volatility(seed: int) -> None:
    """Prints alternating between bid and ask look wild bar to bar, but not over hours."""
    sigma, half_spread = 0.0005, 0.002
    rng = random.Random(seed)
    mids = _random_walk(2000, sigma, seed)
    prints = [m * (1 + half_spread * (1 if rng.random() < 0.5 else -1)) for m in mids]
    true_daily = sigma * math.sqrt(288)
    bar_returns = [math.log(b / a) for a, b in pairwise(prints)]
    naive = statistics.stdev(bar_returns) * math.sqrt(288)
    robust = daily_volatility(prints, 288)
    assert robust is not None
    assert naive > 3 * true_daily  # the naive estimate is fooled by the bounce
    assert abs(robust / true_daily - 1) < 0.5


MARKET = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "market"


@pytest.mark.parametrize("base", ["ETH", "LTC", "ADA", "DASH"])
def test_on_the_shipped_data_daily_volatility_is_closer_to_daily_returns_than_scaling(
    base: str,
) -> None:
    with (MARKET / f"{base}_BTC-5m.csv").open() as f:
        closes = [float(row["close"]) for row in csv.DictReader(f)]
    daily_returns = [math.log(closes[i + 288] / closes[i]) for i in range(0, len(closes) - 288)]
    realized = statistics.stdev(daily_returns)
    bar_returns = [math.log(b / a) for a, b in pairwise(closes)]
    naive = statistics.stdev(bar_returns) * math.sqrt(288)
    robust = daily_volatility(closes, 288)
    assert robust is not None
    assert abs(math.log(robust / realized)) < abs(math.log(naive / realized))
