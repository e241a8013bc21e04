"""An example strategy that trades with limit orders: buy pullbacks, sell into strength.

When momentum is up (the close has risen more than `entry_return` over
`lookback_bars` and is above its `trend_bars` average), it bids a post-only limit
`pullback_pct` below the close, which rests for `entry_ttl_bars` bars: it fills as
maker only if the market comes down and trades through the bid. Once filled, it
offers the position at `take_profit_pct` above the average entry, also as a resting
post-only limit, and leaves at market when the close falls `stop_loss_pct` below
the entry (risk then cancels the resting offer). A bid or an offer is posted at most
once per `entry_ttl_bars` bars, so it has time to work.

Parameters: lookback_bars 12, entry_return 0.004, trend_bars 48, pullback_pct 0.002,
take_profit_pct 0.008, stop_loss_pct 0.02, entry_ttl_bars 6.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

from engine.events import Candle
from engine.signal.base import Intent, Strategy, StrategyContext


class PullbackLimitStrategy(Strategy):
    name = "pullback-limit"

    def __init__(
        self,
        lookback_bars: int = 12,
        entry_return: float = 0.004,
        trend_bars: int = 48,
        pullback_pct: float = 0.002,
        take_profit_pct: float = 0.008,
        stop_loss_pct: float = 0.02,
        entry_ttl_bars: int = 6,
    ) -> None:
        if not 1 <= lookback_bars <= trend_bars:
            raise ValueError("lookback_bars must be between 1 and trend_bars")
        if entry_ttl_bars < 1:
            raise ValueError("entry_ttl_bars must be at least 1")
        for name, value in (
            ("pullback_pct", pullback_pct),
            ("take_profit_pct", take_profit_pct),
            ("stop_loss_pct", stop_loss_pct),
        ):
            if not 0 < value < 1:
                raise ValueError(f"{name} must be a fraction between 0 and 1, like 0.02")
        if not -1 < entry_return < 1:
            raise ValueError("entry_return must be a return between -1 and 1, like 0.004")
        self.lookback_bars = lookback_bars
        self.entry_return = entry_return
        self.trend_bars = trend_bars
        self.pullback = Decimal(repr(pullback_pct))
        self.take_profit = Decimal(repr(take_profit_pct))
        self.stop_loss = Decimal(repr(stop_loss_pct))
        self.entry_ttl_bars = entry_ttl_bars
        self._closes: dict[str, deque[Decimal]] = {}
        self._wait: dict[str, int] = {}
        self._offered: dict[str, str] = {}  # symbol -> the entry price an offer was made for

    def on_candle(self, candle: Candle, context: StrategyContext) -> Iterable[Intent]:
        symbol, close = candle.symbol, candle.close
        closes = self._closes.setdefault(symbol, deque(maxlen=self.trend_bars + 1))
        closes.append(close)
        wait = self._wait.get(symbol, 0)
        if wait:
            self._wait[symbol] = wait - 1
        ttl = self.entry_ttl_bars * candle.interval_s
        digits = -candle.close.as_tuple().exponent  # type: ignore[operator]
        quantum = Decimal(1).scaleb(-max(digits, 0))
        position = context.position(symbol)
        if position is not None and position.qty > 0:
            entry = position.avg_entry
            if close < entry * (1 - self.stop_loss):
                self._offered.pop(symbol, None)
                self._wait[symbol] = self.entry_ttl_bars
                return (Intent(symbol, "sell", 1, f"stop: close {close} below entry {entry}"),)
            if self._offered.get(symbol) == str(entry) or wait:
                return ()
            self._offered[symbol] = str(entry)
            self._wait[symbol] = self.entry_ttl_bars
            offer = (entry * (1 + self.take_profit)).quantize(quantum, ROUND_UP)
            return (
                Intent(
                    symbol,
                    "sell",
                    1,
                    f"take profit at {offer}",
                    limit_price=offer,
                    post_only=True,
                    ttl_seconds=ttl,
                ),
            )
        self._offered.pop(symbol, None)
        if wait or len(closes) <= self.trend_bars:
            return ()
        momentum = close / closes[-1 - self.lookback_bars] - 1
        trend = sum(list(closes)[:-1]) / self.trend_bars
        if momentum <= Decimal(repr(self.entry_return)) or close <= trend:
            return ()
        self._wait[symbol] = self.entry_ttl_bars
        bid = (close * (1 - self.pullback)).quantize(quantum, ROUND_DOWN)
        return (
            Intent(
                symbol,
                "buy",
                "0.8",
                f"momentum {momentum:.4%}: bid {bid} on a pullback",
                limit_price=bid,
                post_only=True,
                ttl_seconds=ttl,
            ),
        )

    def export_state(self) -> dict[str, Any]:
        return {
            "closes": {s: [str(c) for c in q] for s, q in self._closes.items()},
            "wait": dict(self._wait),
            "offered": dict(self._offered),
        }

    def import_state(self, state: dict[str, Any]) -> None:
        self._closes = {
            s: deque((Decimal(c) for c in q), maxlen=self.trend_bars + 1)
            for s, q in state["closes"].items()
        }
        self._wait = dict(state["wait"])
        self._offered = dict(state["offered"])
