"""The signal service: market events in, signals out, positions from snapshots."""

from __future__ import annotations

from collections.abc import Callable

from engine.events import Candle, MarketEvent, PortfolioSnapshot, PositionView, Signal, derive_id
from engine.signal.base import Strategy


class SignalService:
    def __init__(self, strategy: Strategy, publish: Callable[[Signal], object]) -> None:
        self.strategy = strategy
        self._publish = publish
        self._positions: dict[str, PositionView] = {}

    def position(self, symbol: str) -> PositionView | None:
        return self._positions.get(symbol)

    def on_snapshot(self, snapshot: PortfolioSnapshot) -> None:
        self._positions = {p.symbol: p for p in snapshot.positions}

    def on_market(self, event: MarketEvent) -> None:
        if isinstance(event, Candle):
            intents = self.strategy.on_candle(event, self)
        else:
            intents = self.strategy.on_trade(event, self)
        for n, intent in enumerate(intents):
            self._publish(
                Signal(
                    event_id=derive_id("sig", event.event_id, n),
                    ts=event.ts,
                    cause_id=event.event_id,
                    symbol=intent.symbol,
                    side=intent.side,
                    confidence=intent.confidence,
                    reason=intent.reason[:500],
                    strategy=self.strategy.name,
                )
            )
