"""The strategy interface and the loader for user strategies.

A strategy sees closed candles (`on_candle`) or trades (`on_trade`) and the
positions it holds (`context.position(symbol)`), and returns intents. It never
sizes orders and never reads the clock: risk sizes, and event time drives it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from engine.events import Candle, PositionView, Side, Trade


class StrategyContext(Protocol):
    def position(self, symbol: str) -> PositionView | None: ...


@dataclass(frozen=True, slots=True)
class Intent:
    symbol: str
    side: Side
    confidence: Decimal
    reason: str


class Strategy:
    """Subclass and override `on_candle` and/or `on_trade`."""

    name: str = "strategy"

    def on_candle(self, candle: Candle, context: StrategyContext) -> Iterable[Intent]:
        return ()

    def on_trade(self, trade: Trade, context: StrategyContext) -> Iterable[Intent]:
        return ()

    def export_state(self) -> dict[str, Any]:
        """What the strategy remembers, as JSON values, for crash-safe resume.

        A strategy that keeps indicators or counters between events overrides this
        and `import_state`, so a resumed run decides exactly as an unbroken one.
        """
        return {}

    def import_state(self, state: dict[str, Any]) -> None:
        """Take back what `export_state` returned."""


def load_strategy(path: str, **params: Any) -> Strategy:
    """Build a strategy from `package.module:Class` or `path/to/file.py:Class`.

    Parameters are converted to the constructor's annotated types; see
    `engine.signal.loader` for the rules and the errors.
    """
    from engine.signal.loader import StrategyChoice  # the loader imports this module

    return StrategyChoice.resolve(path, params).build()
