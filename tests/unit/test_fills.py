from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.events import Liquidity, Side
from engine.execution.fills import (
    fillable_qty,
    limit_fill,
    market_fill,
    realized_slippage_bps,
    slippage_bps,
)
from engine.markets import SymbolSpec

D = Decimal
SPEC = SymbolSpec("ETHBTC", "ETH", "BTC", D("0.00000001"), D("0.001"), D(0), D("0.0005"))

prices = st.decimals(min_value=D("0.00001"), max_value=D("100"), places=8)
volumes = st.decimals(min_value=D("0.001"), max_value=D("100000"), places=3)
bps = st.decimals(min_value=D(0), max_value=D(200), places=2)


@st.composite
def bars(draw: st.DrawFn) -> tuple[D, D, D]:
    a, b, c = sorted(draw(st.lists(prices, min_size=3, max_size=3)))
    return a, b, c  # low, open, high


@given(bar=bars(), qty=volumes, volume=volumes, side=st.sampled_from(Side), base=bps, impact=bps)
def test_market_fill_stays_inside_the_bar_and_on_the_tick_grid(
    bar: tuple[D, D, D], qty: D, volume: D, side: Side, base: D, impact: D
) -> None:
    low, open_, high = bar
    quote = market_fill(side, open_, qty, volume, low, high, SPEC, base, impact)
    assert low <= quote.price <= high
    assert quote.price % SPEC.tick_size == 0 or quote.price in (low, high)
    assert quote.liquidity is Liquidity.TAKER


@given(bar=bars(), qty=volumes, volume=volumes, side=st.sampled_from(Side), base=bps, impact=bps)
def test_market_fill_is_never_better_than_the_reference_unless_the_bar_forbids(
    bar: tuple[D, D, D], qty: D, volume: D, side: Side, base: D, impact: D
) -> None:
    low, open_, high = bar
    quote = market_fill(side, open_, qty, volume, low, high, SPEC, base, impact)
    assert quote.slippage_bps >= 0
    if side is Side.BUY:
        assert quote.price >= open_
    else:
        assert quote.price <= open_


@given(volume=volumes, base=bps, impact=bps, a=volumes, b=volumes)
def test_slippage_grows_with_the_share_of_volume(volume: D, base: D, impact: D, a: D, b: D) -> None:
    small, large = sorted((a, b))
    assert slippage_bps(base, impact, small, volume) <= slippage_bps(base, impact, large, volume)
    assert slippage_bps(base, impact, small, volume) >= base


@given(
    remaining=volumes,
    volume=volumes,
    used=volumes,
    cap=st.decimals(min_value=D("0.01"), max_value=D("0.99"), places=2),
)
def test_participation_cap_limits_each_bar(remaining: D, volume: D, used: D, cap: D) -> None:
    qty = fillable_qty(remaining, volume, cap, used, SPEC)
    assert 0 <= qty <= remaining
    assert used + qty <= volume * cap or qty == 0
    assert qty % SPEC.lot_size == 0


@given(bar=bars(), limit=prices, side=st.sampled_from(Side), first=st.booleans())
def test_limit_order_fills_only_when_the_market_trades_through(
    bar: tuple[D, D, D], limit: D, side: Side, first: bool
) -> None:
    low, open_, high = bar
    quote = limit_fill(side, limit, open_, low, high, first, D(1), D(1000), SPEC, D(2), D(10))
    through = low < limit if side is Side.BUY else high > limit
    marketable = open_ <= limit if side is Side.BUY else open_ >= limit
    if quote is None:
        assert not through and not marketable
        return
    assert low <= quote.price <= high
    if side is Side.BUY:
        assert quote.price <= limit
    else:
        assert quote.price >= limit
    if quote.liquidity is Liquidity.TAKER:
        assert first and marketable


def test_a_resting_buy_limit_touched_but_not_traded_through_does_not_fill() -> None:
    assert (
        limit_fill(Side.BUY, D(100), D(101), D(100), D(102), False, D(1), D(10), SPEC, D(2), D(10))
        is None
    )


def test_a_resting_buy_limit_fills_at_its_price_as_maker() -> None:
    quote = limit_fill(
        Side.BUY, D(100), D(101), D("99.5"), D(102), False, D(1), D(10), SPEC, D(2), D(10)
    )
    assert quote is not None
    assert quote.price == D(100) and quote.liquidity is Liquidity.MAKER
    assert quote.slippage_bps == 0


def test_realized_slippage_is_signed_cost() -> None:
    assert realized_slippage_bps(Side.BUY, D(100), D("100.1")) == D("10")
    assert realized_slippage_bps(Side.SELL, D(100), D("100.1")) == D("-10")
