from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.events import Side
from engine.maths.accounting import Position, apply_fill, drawdown

D = Decimal
prices = st.decimals(min_value=D("0.00001"), max_value=D("100000"), places=8)
qtys = st.decimals(min_value=D("0.00000001"), max_value=D("1000"), places=8)
fills = st.lists(
    st.tuples(
        st.sampled_from(Side),
        qtys,
        prices,
        st.decimals(min_value=D(0), max_value=D("0.001"), places=4),
    ),
    min_size=1,
    max_size=40,
)


@given(fills=fills, mark=prices)
def test_equity_is_capital_plus_realized_plus_unrealized_minus_fees_exactly(
    fills: list[tuple[Side, D, D, D]], mark: D
) -> None:
    capital = D(100000)
    cash, fees, realized = capital, D(0), D(0)
    position = Position()
    for side, qty, price, rate in fills:
        effect = apply_fill(position, side, qty, price)
        fee = qty * price * rate
        cash += effect.cash_delta - fee
        fees += fee
        realized += effect.realized
        position = effect.position
        assert realized == position.realized
    equity = cash + position.qty * mark
    assert equity == capital + realized + position.unrealized(mark) - fees


@given(qty=qtys, buy=prices, sell=prices)
def test_a_round_trip_realizes_the_price_difference(qty: D, buy: D, sell: D) -> None:
    opened = apply_fill(Position(), Side.BUY, qty, buy).position
    closed = apply_fill(opened, Side.SELL, qty, sell)
    assert closed.position.qty == 0 and closed.position.cost == 0
    assert closed.realized == qty * (sell - buy)


@given(qty=qtys, entry=prices, exit_=prices)
def test_shorts_gain_when_price_falls(qty: D, entry: D, exit_: D) -> None:
    short = apply_fill(Position(), Side.SELL, qty, entry).position
    assert short.qty == -qty
    closed = apply_fill(short, Side.BUY, qty, exit_)
    assert closed.realized == qty * (entry - exit_)


def test_selling_through_zero_opens_the_other_way_at_the_fill_price() -> None:
    long = apply_fill(Position(), Side.BUY, D(2), D(10)).position
    effect = apply_fill(long, Side.SELL, D(3), D(12))
    assert effect.realized == D(4)
    assert effect.position.qty == D(-1) and effect.position.cost == D(-12)


def test_partial_close_releases_a_proportional_cost() -> None:
    p = apply_fill(Position(), Side.BUY, D(1), D(10)).position
    p = apply_fill(p, Side.BUY, D(1), D(20)).position
    effect = apply_fill(p, Side.SELL, D(1), D(30))
    assert effect.realized == D(15)
    assert effect.position.avg_entry == D(15)


@given(peak=prices, equity=prices)
def test_drawdown_is_a_fraction_below_peak(peak: D, equity: D) -> None:
    dd = drawdown(peak, equity)
    assert 0 <= dd < 1
    assert (dd == 0) == (equity >= peak)


def test_money_keeps_every_digit_in_any_thread() -> None:
    """A fee on a large position has more than Python's default 28 digits."""
    import threading

    qty, price, rate = D("999.99999999"), D("99999.99999999"), D("0.0009")
    fee = qty * price * rate
    seen: list[Decimal] = []
    worker = threading.Thread(target=lambda: seen.append(D(10) ** 12 - fee))
    worker.start()
    worker.join()
    assert fee == D("89999.99999909100000000009")
    cash = D("999999910000.00000090899999999991")
    assert seen == [cash]
    assert D(10) ** 12 - fee == cash
