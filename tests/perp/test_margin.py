"""MEXC's published examples and properties of the perpetual maths."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.contracts import ContractTerms
from engine.events import Side
from engine.maths.accounting import Position, apply_fill
from engine.perp.margin import (
    clamp_rate,
    funding_fee,
    liquidation_crossed,
    liquidation_price,
    maintenance_margin,
    pnl,
    position_margin,
)

D = Decimal


def test_mexc_isolated_liquidation_example_long() -> None:
    """0.1 BTC at 50,000 with 25x and MMR 0.4 %: PM 200, MM 20, liquidation at 48,200."""
    entry, size = D(50000), D("0.1")
    margin = position_margin(entry * size, D(25))
    assert margin == D(200)
    assert maintenance_margin(entry * size, D("0.004")) == D(20)
    assert liquidation_price(Side.BUY, entry, size, margin, D("0.004")) == D(48200)


def test_mexc_isolated_liquidation_formula_short() -> None:
    """Short LP = (entry x size - MM + PM) / size: the mirror image, 51,800."""
    entry, size = D(50000), D("0.1")
    margin = position_margin(entry * size, D(25))
    assert liquidation_price(Side.SELL, entry, size, margin, D("0.004")) == D(51800)


def test_at_the_liquidation_price_margin_plus_pnl_equals_the_maintenance_margin() -> None:
    entry, size, lev, mmr = D("1.0801"), D(4630), D(5), D("0.005")
    margin = position_margin(entry * size, lev)
    mm = maintenance_margin(entry * size, mmr)
    long_lp = liquidation_price(Side.BUY, entry, size, margin, mmr)
    short_lp = liquidation_price(Side.SELL, entry, size, margin, mmr)
    assert margin + pnl(size, entry, long_lp) == pytest.approx(mm, abs=D("1e-20"))
    assert margin + pnl(-size, entry, short_lp) == pytest.approx(mm, abs=D("1e-20"))
    assert liquidation_crossed(Side.BUY, long_lp, long_lp, entry)
    assert not liquidation_crossed(Side.BUY, long_lp, long_lp + D("0.0001"), entry)
    assert liquidation_crossed(Side.SELL, short_lp, entry, short_lp)


def test_mexc_funding_example_a_long_receives_on_a_negative_rate() -> None:
    """Position value 41.8899 at a rate of -0.2 %: the long receives 0.0837798."""
    fee = funding_fee(D(1), D("41.8899"), D("-0.002"))
    assert fee == D("-0.0837798")
    assert funding_fee(D(-1), D("41.8899"), D("-0.002")) == D("0.0837798")


def test_the_rate_is_bounded_by_the_contract() -> None:
    assert clamp_rate(D("0.01"), D("-0.003"), D("0.003")) == D("0.003")
    assert clamp_rate(D("-0.01"), D("-0.003"), D("0.003")) == D("-0.003")
    assert clamp_rate(D("0.0001"), D("-0.003"), D("0.003")) == D("0.0001")


def test_risk_tiers_follow_the_contract_detail() -> None:
    """BTC_USDT: 0.0001 BTC a contract, tiers of 150,000 contracts, MMR +0.4 %, IMR +0.4 %."""
    terms = ContractTerms(
        settle="USDT",
        contract_size=D("0.0001"),
        maintenance_margin_rate=D("0.004"),
        initial_margin_rate=D("0.008"),
        max_leverage=D(125),
        risk_incr_vol=D(150000),
        risk_incr_mmr=D("0.004"),
        risk_incr_imr=D("0.004"),
        risk_level_limit=5,
    )
    first = terms.tier(D(10))  # 100,000 contracts
    assert (first.level, first.maintenance_margin_rate, first.max_leverage) == (
        0,
        D("0.004"),
        D(125),
    )
    second = terms.tier(D(20))  # 200,000 contracts
    assert (second.level, second.maintenance_margin_rate, second.initial_margin_rate) == (
        1,
        D("0.008"),
        D("0.012"),
    )
    assert second.max_leverage == D(83)
    assert terms.tier(D(1000)).level == 4  # capped at the last of five tiers
    assert terms.leverage_cap(D(20)) == D(83)


sizes = st.decimals(min_value=D("0.001"), max_value=D(10000), places=3)
prices = st.decimals(min_value=D("0.0001"), max_value=D(100000), places=4)
rates = st.decimals(min_value=D("0.0001"), max_value=D("0.001"), places=4)


@given(qty=sizes, price=prices, fee_rate=rates, side=st.sampled_from(Side), rate=rates)
def test_a_round_trip_at_equal_prices_loses_exactly_the_fees_and_funding(
    qty: D, price: D, fee_rate: D, side: Side, rate: D
) -> None:
    opened = apply_fill(Position(), side, qty, price)
    funding = funding_fee(opened.position.qty, price, rate)
    closed = apply_fill(opened.position, side.opposite, qty, price)
    fees = 2 * qty * price * fee_rate
    wallet_change = opened.realized + closed.realized - fees - funding
    assert closed.position.qty == 0
    assert wallet_change == -fees - funding
    assert (funding > 0) == (side is Side.BUY)  # a positive rate: longs pay, shorts receive


@given(qty=sizes, entry=prices, exit_=prices, side=st.sampled_from(Side))
def test_long_and_short_pnl_mirror_each_other(qty: D, entry: D, exit_: D, side: Side) -> None:
    opened = apply_fill(Position(), side, qty, entry)
    closed = apply_fill(opened.position, side.opposite, qty, exit_)
    assert closed.realized == side.sign * qty * (exit_ - entry)
    assert closed.realized == pnl(opened.position.qty, entry, exit_)


@given(
    qty=sizes,
    entry=prices,
    lev=st.integers(min_value=1, max_value=100),
    mmr=st.decimals(min_value=D("0.001"), max_value=D("0.009"), places=3),
)
def test_liquidation_is_on_the_losing_side_and_closer_with_more_leverage(
    qty: D, entry: D, lev: int, mmr: D
) -> None:
    margin = position_margin(entry * qty, D(lev))
    long_lp = liquidation_price(Side.BUY, entry, qty, margin, mmr)
    short_lp = liquidation_price(Side.SELL, entry, qty, margin, mmr)
    assert long_lp < entry < short_lp
    tighter = position_margin(entry * qty, D(lev + 1))
    assert liquidation_price(Side.BUY, entry, qty, tighter, mmr) >= long_lp
    assert liquidation_price(Side.SELL, entry, qty, tighter, mmr) <= short_lp
