"""Round trips and their statistics from a list of fills, independent of the portfolio service."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from engine.events import ZERO, Side
from engine.portfolio.accounting import Position, apply_fill


@dataclass(frozen=True, slots=True)
class Fill:
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal


@dataclass(frozen=True, slots=True)
class TripStats:
    round_trips: int
    wins: int
    win_rate: Decimal
    avg_win: Decimal
    avg_loss: Decimal
    profit_factor: Decimal | None  # None when nothing was lost


def net_round_trips(fills: Iterable[Fill]) -> list[Decimal]:
    """Net PnL (after fees) of every position taken from flat back to flat, in order."""
    positions: dict[str, Position] = {}
    running: dict[str, Decimal] = {}
    trips: list[Decimal] = []
    for f in fills:
        effect = apply_fill(positions.get(f.symbol, Position()), f.side, f.qty, f.price)
        running[f.symbol] = running.get(f.symbol, ZERO) + effect.realized - f.fee
        if effect.position.qty == 0:
            trips.append(running.pop(f.symbol))
            positions.pop(f.symbol, None)
        else:
            positions[f.symbol] = effect.position
    return trips


def trip_stats(trips: Sequence[Decimal]) -> TripStats:
    wins = [t for t in trips if t > 0]
    losses = [t for t in trips if t <= 0]
    gross_win = sum(wins, ZERO)
    gross_loss = -sum(losses, ZERO)
    return TripStats(
        round_trips=len(trips),
        wins=len(wins),
        win_rate=Decimal(len(wins)) / len(trips) if trips else ZERO,
        avg_win=gross_win / len(wins) if wins else ZERO,
        avg_loss=-gross_loss / len(losses) if losses else ZERO,
        profit_factor=gross_win / gross_loss if gross_loss > 0 else None,
    )
