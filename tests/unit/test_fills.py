from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.events import Liquidity, Side
from engine.execution.fills import (
    capped_at_limit,
    cost_bps,
    fillable_qty,
    limit_is_marketable,
    resting_fill,
    slippage_bps,
    taker_fill,
    traded_through,
    widened,
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
    return a, b, c  # low, reference, high


@given(
    bar=bars(),
    qty=volumes,
    volume=volumes,
    side=st.sampled_from(Side),
    half=bps,
    base=bps,
    impact=bps,
)
def test_taker_fill_stays_inside_the_bar_widened_by_its_half_spread_and_on_the_tick_grid(
    bar: tuple[D, D, D], qty: D, volume: D, side: Side, half: D, base: D, impact: D
) -> None:
    low, ref, high = bar
    quote = taker_fill(side, ref, half, qty, volume, SPEC, base, impact, (low, high))
    assert widened(Side.SELL, low, half, SPEC) <= quote.price <= widened(Side.BUY, high, half, SPEC)
    assert quote.price % SPEC.tick_size == 0
    assert quote.liquidity is Liquidity.TAKER


@given(
    bar=bars(),
    qty=volumes,
    volume=volumes,
    side=st.sampled_from(Side),
    half=bps,
    base=bps,
    impact=bps,
)
def test_taker_fill_costs_spread_plus_slippage_and_is_never_better_than_the_market(
    bar: tuple[D, D, D], qty: D, volume: D, side: Side, half: D, base: D, impact: D
) -> None:
    low, ref, high = bar
    quote = taker_fill(side, ref, half, qty, volume, SPEC, base, impact, (low, high))
    assert quote.spread_bps >= 0 and quote.slippage_bps >= 0
    assert quote.spread_bps == half  # the whole half spread, whatever the bar's range
    assert quote.spread_bps + quote.slippage_bps == cost_bps(side, ref, quote.price)
    if side is Side.BUY:
        assert quote.price >= ref
    else:
        assert quote.price <= ref


@given(ref=prices, qty=volumes, volume=volumes, side=st.sampled_from(Side), half=bps, base=bps)
def test_on_a_trade_the_whole_spread_and_slippage_is_paid(
    ref: D, qty: D, volume: D, side: Side, half: D, base: D
) -> None:
    """No bar range clamps a trade's fill: a trade's low equals its high."""
    quote = taker_fill(side, ref, half, qty, volume, SPEC, base, D(10), None)
    expected = half + slippage_bps(base, D(10), qty, volume)
    assert cost_bps(side, ref, quote.price) >= expected.quantize(D("0.0001")) - D("0.0001")
    assert quote.spread_bps == half.quantize(D("0.0001"))


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


@given(bar=bars(), limit=prices, side=st.sampled_from(Side))
def test_a_resting_limit_fills_only_when_traded_through_and_exactly_at_its_price(
    bar: tuple[D, D, D], limit: D, side: Side
) -> None:
    low, _, high = bar
    through = traded_through(side, limit, low, high)
    assert through == (low < limit if side is Side.BUY else high > limit)
    quote = resting_fill(limit)
    assert quote.price == limit and quote.liquidity is Liquidity.MAKER
    assert quote.spread_bps == 0 and quote.slippage_bps == 0


def test_a_buy_limit_touched_but_not_traded_through_does_not_fill() -> None:
    assert not traded_through(Side.BUY, D(100), D(100), D(102))
    assert traded_through(Side.BUY, D(100), D("99.99"), D(102))
    assert not traded_through(Side.SELL, D(100), D(98), D(100))


@given(ref=prices, limit=prices, side=st.sampled_from(Side), half=bps, qty=volumes, volume=volumes)
def test_a_marketable_limit_never_fills_beyond_its_limit(
    ref: D, limit: D, side: Side, half: D, qty: D, volume: D
) -> None:
    touch = ref * (1 + side.sign * half / 10000)
    if not limit_is_marketable(side, limit, touch):
        return
    quote = capped_at_limit(
        taker_fill(side, ref, half, qty, volume, SPEC, D(2), D(10), None), side, limit
    )
    assert quote.price <= limit if side is Side.BUY else quote.price >= limit
    assert quote.spread_bps + quote.slippage_bps == cost_bps(side, ref, quote.price)


def test_cost_is_signed() -> None:
    assert cost_bps(Side.BUY, D(100), D("100.1")) == D("10")
    assert cost_bps(Side.SELL, D(100), D("100.1")) == D("-10")


@given(
    price=prices,
    qty=volumes,
    volume=volumes,
    side=st.sampled_from(Side),
    half=st.decimals(min_value=D("0.01"), max_value=D(200), places=2),
    impact=bps,
)
def test_a_taker_in_a_bar_that_traded_at_one_price_pays_the_spread_beyond_it(
    price: D, qty: D, volume: D, side: Side, half: D, impact: D
) -> None:
    """A market buy in a bar that traded at one price pays the ask, above that price."""
    quote = taker_fill(side, price, half, qty, volume, SPEC, D(0), impact, (price, price))
    assert cost_bps(side, price, quote.price) >= half
    assert quote.price == SPEC.adverse_price(price * (1 + side.sign * half / 10000), side)


def test_the_worked_example_of_a_one_price_bar() -> None:
    """README: a buy at a bar that traded only at 100.00, with a half spread of 5 bps."""
    spec = SymbolSpec("ETHBTC", "ETH", "BTC", D("0.01"), D("0.001"), D(0), D("0.0005"))
    bar = (D(100), D(100))
    buy = taker_fill(Side.BUY, D(100), D(5), D(1), D(100), spec, D(2), D(10), bar)
    sell = taker_fill(Side.SELL, D(100), D(5), D(1), D(100), spec, D(2), D(10), bar)
    assert (buy.price, buy.spread_bps, buy.slippage_bps) == (D("100.05"), D(5), D(0))
    assert (sell.price, sell.spread_bps, sell.slippage_bps) == (D("99.95"), D(5), D(0))


@given(
    bar=bars(),
    side=st.sampled_from(Side),
    arrival=st.integers(min_value=0, max_value=300),
    level=prices,
)
def test_the_time_beyond_a_limit_is_a_share_of_the_order_s_part_of_the_bar(
    bar: tuple[D, D, D], side: Side, arrival: int, level: D
) -> None:
    from datetime import UTC, datetime, timedelta

    from engine.events import Candle
    from engine.maths.path import bar_path, share_beyond

    low, mid, high = bar
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    candle = Candle(
        "c", t0 + timedelta(minutes=5), None, "ETHBTC", t0, 300, mid, high, low, mid, D(1)
    )
    path = bar_path(candle)
    since = t0 + timedelta(seconds=arrival)
    below = side is Side.BUY
    share = share_beyond(path, since, candle.ts, level, below)
    assert 0 <= share <= D(300 - arrival) / 300
    lo, hi = path.range_from(since)
    if not traded_through(side, level, lo, hi):
        assert share == 0
    if (below and lo >= level) or (not below and hi <= level):
        assert share == 0
    if (below and hi < level) or (not below and lo > level):
        assert share == D(300 - arrival) / 300
