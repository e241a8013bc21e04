"""Round trips and PnL per symbol from fills, independent of the portfolio service.

A round trip is a position from flat back to flat. `SymbolBook` follows one
symbol's fills in order and closes a `RoundTrip` each time the position is flat
again; the run's summary feeds it fill by fill, the reports feed it the stored
fills, and both therefore state the same figures to the last digit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.events import ZERO, Side
from engine.maths.accounting import Position, apply_fill


@dataclass(frozen=True, slots=True)
class Fill:
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One position from its first fill to the fill that made it flat again."""

    symbol: str
    direction: str  # "long" or "short"
    entry_at: datetime | None
    exit_at: datetime | None
    qty: Decimal  # everything bought (long) or sold (short) to build the position
    entry_price: Decimal  # average price of those fills
    exit_price: Decimal  # average price of the fills that took it back to flat
    realized_pnl: Decimal  # before fees
    fees: Decimal
    fills: int

    @property
    def net_pnl(self) -> Decimal:
        return self.realized_pnl - self.fees

    @property
    def duration_s(self) -> int | None:
        if self.entry_at is None or self.exit_at is None:
            return None
        return int((self.exit_at - self.entry_at).total_seconds())


@dataclass(slots=True)
class _Trip:
    direction: int  # +1 long, -1 short
    entry_at: datetime | None
    entry_qty: Decimal = ZERO
    entry_value: Decimal = ZERO
    exit_qty: Decimal = ZERO
    exit_value: Decimal = ZERO
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    fills: int = 0


@dataclass(slots=True)
class SymbolBook:
    """One symbol's position, realized PnL, fees and round trips, fill by fill."""

    position: Position = field(default_factory=Position)
    realized: Decimal = ZERO  # before fees
    fees: Decimal = ZERO
    fills: int = 0
    round_trips: int = 0
    wins: int = 0
    _trip: _Trip | None = None

    def add(self, fill: Fill) -> RoundTrip | None:
        """Apply a fill; the round trip it completes, if any."""
        effect = apply_fill(self.position, fill.side, fill.qty, fill.price)
        self.position = effect.position
        self.realized += effect.realized
        self.fees += fill.fee
        self.fills += 1
        trip = self._trip
        if trip is None:
            trip = self._trip = _Trip(fill.side.sign, fill.ts)
        if fill.side.sign == trip.direction:
            trip.entry_qty += fill.qty
            trip.entry_value += fill.qty * fill.price
        else:
            trip.exit_qty += fill.qty
            trip.exit_value += fill.qty * fill.price
        trip.realized += effect.realized
        trip.fees += fill.fee
        trip.fills += 1
        if effect.position.qty != 0:
            return None
        self._trip = None
        done = RoundTrip(
            symbol=fill.symbol,
            direction="long" if trip.direction > 0 else "short",
            entry_at=trip.entry_at,
            exit_at=fill.ts,
            qty=trip.entry_qty,
            entry_price=trip.entry_value / trip.entry_qty if trip.entry_qty else ZERO,
            exit_price=trip.exit_value / trip.exit_qty if trip.exit_qty else ZERO,
            realized_pnl=trip.realized,
            fees=trip.fees,
            fills=trip.fills,
        )
        self.round_trips += 1
        self.wins += done.net_pnl > 0
        return done

    def pnl(self, mark: Decimal | None) -> dict[str, Any]:
        """This symbol's figures with the open position valued at `mark`."""
        unrealized = self.position.unrealized(mark) if mark is not None else ZERO
        return {
            "realized_pnl": self.realized,
            "unrealized_pnl": unrealized,
            "fees": self.fees,
            "net_pnl": self.realized + unrealized - self.fees,
            "fills": self.fills,
            "round_trips": self.round_trips,
            "wins": self.wins,
        }

    # --- checkpoint form -------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        p, t = self.position, self._trip
        return {
            "position": [str(p.qty), str(p.cost), str(p.realized)],
            "realized": str(self.realized),
            "fees": str(self.fees),
            "counts": [self.fills, self.round_trips, self.wins],
            "trip": None
            if t is None
            else [
                t.direction,
                t.entry_at.isoformat() if t.entry_at else None,
                *(str(v) for v in (t.entry_qty, t.entry_value, t.exit_qty, t.exit_value)),
                str(t.realized),
                str(t.fees),
                t.fills,
            ],
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SymbolBook:
        qty, cost, realized = (Decimal(v) for v in body["position"])
        fills, trips, wins = body["counts"]
        book = cls(Position(qty, cost, realized), Decimal(body["realized"]), Decimal(body["fees"]))
        book.fills, book.round_trips, book.wins = fills, trips, wins
        t = body.get("trip")
        if t is not None:
            entry_qty, entry_value, exit_qty, exit_value, realized, fees = (
                Decimal(v) for v in t[2:8]
            )
            book._trip = _Trip(
                int(t[0]),
                datetime.fromisoformat(t[1]) if t[1] else None,
                entry_qty,
                entry_value,
                exit_qty,
                exit_value,
                realized,
                fees,
                int(t[8]),
            )
        return book


@dataclass(frozen=True, slots=True)
class TripStats:
    round_trips: int
    wins: int
    win_rate: Decimal
    avg_win: Decimal
    avg_loss: Decimal
    profit_factor: Decimal | None  # None when nothing was lost


def replay_fills(fills: Iterable[Fill]) -> tuple[dict[str, SymbolBook], list[RoundTrip]]:
    """Every symbol's book and every completed round trip, in the order they closed."""
    books: dict[str, SymbolBook] = {}
    trips: list[RoundTrip] = []
    for f in fills:
        book = books.get(f.symbol)
        if book is None:
            book = books[f.symbol] = SymbolBook()
        done = book.add(f)
        if done is not None:
            trips.append(done)
    return books, trips


def net_round_trips(fills: Iterable[Fill]) -> list[Decimal]:
    """Net PnL (after fees) of every position taken from flat back to flat, in order."""
    return [t.net_pnl for t in replay_fills(fills)[1]]


def pnl_by_symbol(
    books: Mapping[str, SymbolBook], marks: Mapping[str, Decimal]
) -> dict[str, dict[str, Any]]:
    return {s: books[s].pnl(marks.get(s)) for s in sorted(books)}


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
