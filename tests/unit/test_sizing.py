from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.risk.sizing import (
    entry_headroom,
    fixed_fraction_notional,
    realized_volatility,
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
    calm = volatility_scaled_notional(equity, base, D("0.02"), vol, 288)
    wild = volatility_scaled_notional(equity, base, D("0.02"), vol * 2, 288)
    assert 0 < wild <= calm <= equity * base * 3


def test_realized_volatility_needs_enough_bars() -> None:
    assert realized_volatility([1.0, 1.1]) is None
    assert realized_volatility([1.0, 1.0, 1.0, 1.0]) == 0.0
    vol = realized_volatility([100.0, 101.0, 100.0, 101.0, 100.0])
    assert vol is not None and vol > 0
