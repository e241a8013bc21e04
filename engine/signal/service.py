"""The signal service: market events in, signals out, positions from snapshots."""

from __future__ import annotations

from collections.abc import Callable

from engine.events import (
    Candle,
    Event,
    PortfolioSnapshot,
    PositionView,
    Signal,
    Trade,
    derive_id,
)
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

    def on_market(self, event: Event) -> None:
        if isinstance(event, Candle):
            intents = self.strategy.on_candle(event, self)
        elif isinstance(event, Trade):
            intents = self.strategy.on_trade(event, self)
        else:
            return
        for n, intent in enumerate(intents):
            self._publish(
                Signal(
                    event_id=derive_id("sig", event.event_id, n),
                    ts=event.ts,
                    cause_id=event.event_id,
                    symbol=intent.symbol,
                    side=intent.side,  # type: ignore[arg-type]  # Intent parsed it
                    confidence=intent.confidence,  # type: ignore[arg-type]
                    reason=intent.reason[:500],
                    strategy=self.strategy.name,
                    order_type=intent.order_type,
                    limit_price=intent.limit_price,  # type: ignore[arg-type]
                    time_in_force=intent.time_in_force,  # type: ignore[arg-type]
                    post_only=intent.post_only,
                    ttl_s=intent.ttl_seconds,
                )
            )
