from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import StrategyLoadError
from engine.events import Candle, PositionView, Side
from engine.signal.base import Strategy
from engine.signal.loader import load_strategy
from engine.signal.momentum import MomentumStrategy

T0 = datetime(2018, 1, 1, tzinfo=UTC)


class NoPositions:
    def position(self, symbol: str) -> PositionView | None:
        return None


class Holding:
    def __init__(self, entry: str) -> None:
        self.entry = Decimal(entry)

    def position(self, symbol: str) -> PositionView | None:
        return PositionView(symbol, Decimal(1), self.entry, self.entry, self.entry, Decimal(0))


def bar(n: int, close: float) -> Candle:
    c = Decimal(repr(close))
    open_time = T0 + timedelta(minutes=5 * n)
    return Candle(
        f"c{n}",
        open_time + timedelta(minutes=5),
        None,
        "ETHBTC",
        open_time,
        300,
        c,
        c,
        c,
        c,
        Decimal(1),
    )


def test_momentum_buys_a_rising_market_above_its_trend() -> None:
    s = MomentumStrategy(lookback_bars=3, trend_bars=5, entry_return=0.01, cooldown_bars=0)
    out = []
    for n, close in enumerate([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.02]):
        out += list(s.on_candle(bar(n, close), NoPositions()))
    [intent] = out
    assert intent.side is Side.BUY and Decimal(0) < intent.confidence <= 1


def test_momentum_stops_out_a_losing_position() -> None:
    s = MomentumStrategy(lookback_bars=3, trend_bars=5, stop_loss_pct=0.03, cooldown_bars=0)
    out = []
    for n, close in enumerate([1.0] * 6 + [0.96]):
        out += list(s.on_candle(bar(n, close), Holding("1.0")))
    assert [i.side for i in out] == [Side.SELL]
    assert out[0].reason.startswith("stop")


def test_user_strategy_loads_by_import_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_strats.py").write_text(
        "from engine.signal.base import Strategy\nclass Quiet(Strategy):\n    name = 'quiet'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    strategy = load_strategy("my_strats:Quiet")
    assert isinstance(strategy, Strategy) and strategy.name == "quiet"
    sys.modules.pop("my_strats", None)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_colon", "not like package.module:ClassName"),
        ("nowhere.at_all:X", "cannot be imported"),
        ("engine.events:Trade", "not a Strategy subclass"),
        ("engine.signal.momentum:Missing", "engine.signal.momentum has no class Missing"),
    ],
)
def test_bad_strategy_paths_are_clear_errors(path: str, message: str) -> None:
    with pytest.raises(StrategyLoadError, match=message):
        load_strategy(path)


def test_bad_strategy_parameters_are_clear_errors() -> None:
    with pytest.raises(StrategyLoadError, match="MomentumStrategy has no parameter 'colour'"):
        load_strategy("engine.signal.momentum:MomentumStrategy", colour="blue")
