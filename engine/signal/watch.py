"""Which strategy callback runs right now, and since when: what a watchdog looks at.

The signal service marks each call of the user's code (`on_candle`, `on_trade`,
`__init__`); a watchdog in another thread reads the mark and, when a call takes too
long or a stop is asked for while it hangs, ends it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime


class StrategyTimeout(Exception):
    """Raised inside a strategy callback that ran past STRATEGY_TIMEOUT_SECONDS."""


@dataclass(frozen=True, slots=True)
class Running:
    """One call of the strategy's code in progress."""

    token: int
    strategy: str
    callback: str
    symbol: str | None
    market_ts: datetime | None
    started: float  # monotonic

    def where(self) -> str:
        """`on_candle for ETH_BTC at 2024-01-01 10:05 UTC`, or just the callback."""
        if self.symbol is None or self.market_ts is None:
            return self.callback
        return f"{self.callback} for {self.symbol} at {self.market_ts:%Y-%m-%d %H:%M} UTC"


class CallbackWatch:
    def __init__(self) -> None:
        self._current: Running | None = None
        self._count = 0
        self.timeout_message = ""  # set by the watchdog before it interrupts a call

    @property
    def current(self) -> Running | None:
        return self._current

    def running(
        self,
        strategy: str,
        callback: str,
        symbol: str | None = None,
        market_ts: datetime | None = None,
    ) -> _Marked:
        """A context in which the call is marked as running; the mark goes when it ends."""
        self._count += 1
        return _Marked(
            self, Running(self._count, strategy, callback, symbol, market_ts, time.monotonic())
        )


class _Marked:
    """`with watch.running(...)`: a class, not a generator, as it wraps every market event."""

    __slots__ = ("_call", "_watch")

    def __init__(self, watch: CallbackWatch, call: Running) -> None:
        self._watch = watch
        self._call = call

    def __enter__(self) -> None:
        self._watch._current = self._call

    def __exit__(self, *exc: object) -> None:
        self._watch._current = None


__all__ = ["CallbackWatch", "Running", "StrategyTimeout"]
