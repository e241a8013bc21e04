"""The default strategy: time-series momentum with a trend filter and a stop.

Parameters (all in bars of the traded interval):
- `lookback_bars` (12): momentum is the return of the close over this many bars.
- `entry_return` (0.006): enter long when momentum exceeds it and the close is
  above its `trend_bars` (48) simple average.
- `exit_return` (-0.002): leave when momentum falls below it.
- `stop_loss_pct` (0.03): leave when the close is this far below the entry price.
- `cooldown_bars` (6): after a signal on a symbol, wait this many bars before the
  next, so an order has time to fill before the strategy asks again.
- `allow_short` (False): on perpetuals, also enter short when momentum is below
  `-entry_return` and the close is below its trend average, and leave the short
  when momentum rises above `-exit_return` or the close is `stop_loss_pct` above
  the entry. Spot is long only, so leave it off there (risk refuses spot shorts).
Confidence grows with the strength of the move: entry_return gives 0.5 and twice
that gives 1.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from engine.events import Candle, Side
from engine.signal.base import Intent, Strategy, StrategyContext

_CONFIDENCE_QUANTUM = Decimal("0.0001")


class MomentumStrategy(Strategy):
    name = "momentum"

    def __init__(
        self,
        lookback_bars: int = 12,
        entry_return: float = 0.006,
        exit_return: float = -0.002,
        trend_bars: int = 48,
        stop_loss_pct: float = 0.03,
        cooldown_bars: int = 6,
        allow_short: bool = False,
    ) -> None:
        if not 1 <= lookback_bars <= trend_bars:
            raise ValueError("lookback_bars must be between 1 and trend_bars")
        if cooldown_bars < 0:
            raise ValueError("cooldown_bars must be 0 or more")
        if not 0 < stop_loss_pct < 1:
            raise ValueError("stop_loss_pct must be a fraction between 0 and 1, like 0.03")
        for name, value in (("entry_return", entry_return), ("exit_return", exit_return)):
            if not -1 < value < 1:
                raise ValueError(f"{name} must be a return between -1 and 1, like 0.006")
        self.lookback_bars = lookback_bars
        self.entry_return = entry_return
        self.exit_return = exit_return
        self.trend_bars = trend_bars
        self.stop_loss_pct = stop_loss_pct
        self.cooldown_bars = cooldown_bars
        self.allow_short = allow_short
        self._closes: dict[str, deque[float]] = {}
        self._sums: dict[str, float] = {}
        self._cooldown: dict[str, int] = {}

    def on_candle(self, candle: Candle, context: StrategyContext) -> Iterable[Intent]:
        symbol = candle.symbol
        closes = self._closes.get(symbol)
        if closes is None:
            closes = self._closes[symbol] = deque(maxlen=self.trend_bars + 1)
        close = float(candle.close)
        total = self._sums.get(symbol, 0.0) + close
        if len(closes) == closes.maxlen:
            total -= closes[0]
        closes.append(close)
        self._sums[symbol] = total
        wait = self._cooldown.get(symbol, 0)
        if wait:
            self._cooldown[symbol] = wait - 1
            return ()
        if len(closes) <= self.trend_bars:
            return ()
        momentum = close / closes[-1 - self.lookback_bars] - 1
        position = context.position(symbol)
        if position is not None and position.qty > 0:
            stop = float(position.avg_entry) * (1 - self.stop_loss_pct)
            if close < stop:
                return self._signal(symbol, Side.SELL, 1.0, f"stop: close {close:.8g} < {stop:.8g}")
            if momentum < self.exit_return:
                return self._signal(
                    symbol,
                    Side.SELL,
                    0.5 + min(0.5, -momentum / (4 * self.entry_return)),
                    f"momentum {momentum:.4%} < exit {self.exit_return:.4%}",
                )
            return ()
        if position is not None and position.qty < 0:
            stop = float(position.avg_entry) * (1 + self.stop_loss_pct)
            if close > stop:
                return self._signal(symbol, Side.BUY, 1.0, f"stop: close {close:.8g} > {stop:.8g}")
            if momentum > -self.exit_return:
                return self._signal(
                    symbol,
                    Side.BUY,
                    0.5 + min(0.5, momentum / (4 * self.entry_return)),
                    f"momentum {momentum:.4%} > short exit {-self.exit_return:.4%}",
                )
            return ()
        trend = (total - close) / self.trend_bars
        if self.allow_short and momentum < -self.entry_return and close < trend:
            return self._signal(
                symbol,
                Side.SELL,
                min(1.0, -momentum / (2 * self.entry_return)),
                f"momentum {momentum:.4%} < {-self.entry_return:.4%}, "
                f"close below its {self.trend_bars}-bar mean",
            )
        if momentum > self.entry_return and close > trend:
            return self._signal(
                symbol,
                Side.BUY,
                min(1.0, momentum / (2 * self.entry_return)),
                f"momentum {momentum:.4%} > {self.entry_return:.4%}, "
                f"close above its {self.trend_bars}-bar mean",
            )
        return ()

    def export_state(self) -> dict[str, Any]:
        return {
            "closes": {s: list(c) for s, c in self._closes.items()},
            "sums": dict(self._sums),
            "cooldown": dict(self._cooldown),
        }

    def import_state(self, state: dict[str, Any]) -> None:
        self._closes = {s: deque(c, maxlen=self.trend_bars + 1) for s, c in state["closes"].items()}
        self._sums = dict(state["sums"])
        self._cooldown = dict(state["cooldown"])

    def _signal(self, symbol: str, side: Side, confidence: float, reason: str) -> tuple[Intent]:
        self._cooldown[symbol] = self.cooldown_bars
        value = Decimal(repr(max(0.0, min(1.0, confidence)))).quantize(_CONFIDENCE_QUANTUM)
        return (Intent(symbol, side, value, reason),)
