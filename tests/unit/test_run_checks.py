"""Warnings before a run: capital in the wrong currency or too big, a strategy blind to the data."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from engine.events import Candle
from engine.kernel.run_checks import MarketProfile, capital_warnings, strategy_warnings
from engine.signal.base import Strategy
from engine.signal.momentum import MomentumStrategy

D = Decimal
ETH = MarketProfile("ETHBTC", "ETH", "candles", 300, D("152.8"), D("0.0922"))


def test_default_capital_in_a_coin_quote_is_a_warning_with_the_fix() -> None:
    [warning] = capital_warnings(D(100000), False, "BTC", D("0"), [])
    assert warning.startswith("INITIAL_CAPITAL is the default 100000, meant in a USD stablecoin")
    assert "quoted in BTC" in warning and "pass --capital with an amount of BTC" in warning


@pytest.mark.parametrize("quote", ["USDT", "USDC", "usdt", "FDUSD"])
def test_default_capital_in_a_usd_stablecoin_is_what_it_means(quote: str) -> None:
    assert capital_warnings(D(100000), False, quote, D("0.05"), []) == []


def test_chosen_capital_is_the_traders_business() -> None:
    assert capital_warnings(D(100000), True, "BTC", D("0"), []) == []


def test_an_entry_bigger_than_a_typical_bar_is_a_warning_naming_the_symbol() -> None:
    [warning] = capital_warnings(D(100000), True, "BTC", D("0.05"), [ETH])
    assert warning.startswith("one entry (5 % of 100000 BTC) is larger than what the market")
    assert "ETHBTC about 54,230 ETH, 355 times its median 5m bar volume of 152.8" in warning
    assert "pass a smaller --capital" in warning


def test_an_entry_within_a_typical_bar_is_fine() -> None:
    # 10 BTC at 5 %: about 5.4 ETH against 152.8 traded in a median bar.
    assert capital_warnings(D(10), True, "BTC", D("0.05"), [ETH]) == []


class TradesOnly(Strategy):
    def on_trade(self, trade: object, context: object) -> list[object]:
        return []


class Both(MomentumStrategy):
    def on_trade(self, trade: object, context: object) -> list[object]:
        return []


def test_a_candle_strategy_on_trades_only_will_make_no_signals() -> None:
    [warning] = strategy_warnings(MomentumStrategy, {"trades"})
    assert "holds only trades, and MomentumStrategy only reads candles" in warning
    assert strategy_warnings(MomentumStrategy, {"candles"}) == []
    assert strategy_warnings(MomentumStrategy, {"candles", "trades"}) == []


def test_a_trade_strategy_on_candles_only_will_make_no_signals() -> None:
    [warning] = strategy_warnings(TradesOnly, {"candles"})
    assert "holds only candles, and TradesOnly only reads trades" in warning
    assert strategy_warnings(Both, {"trades"}) == []


def test_a_strategy_that_overrides_nothing_never_trades() -> None:
    [warning] = strategy_warnings(Strategy, {"candles"})
    assert "overrides neither on_candle nor on_trade" in warning


def test_profiles_are_medians_of_the_replayed_bars() -> None:
    from datetime import UTC, datetime, timedelta

    from engine.feeds.recorded import RecordedFile
    from engine.feeds.replay import PlannedFile, ReplayPlan
    from engine.kernel.run_checks import replay_profiles

    t0 = datetime(2018, 1, 1, tzinfo=UTC)
    bars = [
        Candle(f"c{n}", t0 + timedelta(minutes=5 * n + 5), None, "ETHBTC",
               t0 + timedelta(minutes=5 * n), 300, D(p), D(p), D(p), D(p), D(v))
        for n, (p, v) in enumerate([("1", "10"), ("2", "30"), ("3", "20")])
    ]  # fmt: skip
    source = RecordedFile(Path("ETH_BTC-5m.csv"), "ETHBTC", "ETH", "BTC", "candles", 300, t0)
    plan = ReplayPlan([PlannedFile(source, t0, cached=bars)], t0, None)
    [profile] = replay_profiles(plan)
    assert (profile.median_volume, profile.median_price) == (D(20), D(2))
