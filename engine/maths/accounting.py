"""Position accounting as pure functions.

A position keeps its signed quantity and its cost basis (the sum paid for what is
still held), not an average price: closing part of a position releases a
proportional share of the cost, so realized + unrealized + cash always add up to
equity exactly in Decimal, with no drift from rounding an average.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from engine.events import ZERO, Side

# Released cost is the only division in the books; rounding it to a fixed quantum
# far below any currency's smallest unit keeps later sums exact in 28 digits.
COST_QUANTUM = Decimal("1e-18")


@dataclass(frozen=True, slots=True)
class Position:
    qty: Decimal = ZERO
    cost: Decimal = ZERO  # signed: positive for longs, negative for shorts
    realized: Decimal = ZERO

    @property
    def avg_entry(self) -> Decimal:
        return self.cost / self.qty if self.qty else ZERO

    def unrealized(self, mark: Decimal) -> Decimal:
        return self.qty * mark - self.cost


@dataclass(frozen=True, slots=True)
class FillEffect:
    position: Position
    realized: Decimal  # realized by this fill, before fees
    cash_delta: Decimal  # before fees


def apply_fill(position: Position, side: Side, qty: Decimal, price: Decimal) -> FillEffect:
    """The position after a fill, the PnL it realizes, and the cash it moves."""
    signed = qty * side.sign
    cash_delta = -signed * price
    held = position.qty
    if held == 0 or (held > 0) == (signed > 0):
        new = Position(held + signed, position.cost + signed * price, position.realized)
        return FillEffect(new, ZERO, cash_delta)
    closing = min(abs(signed), abs(held))
    if closing == abs(held):
        released = position.cost
    else:
        released = (position.cost * closing / abs(held)).quantize(COST_QUANTUM, ROUND_HALF_EVEN)
    # Closing |closing| units of a long at `price` realizes proceeds - released cost;
    # for a short the signs flip, which the signed cost already carries.
    direction = 1 if held > 0 else -1
    realized = direction * closing * price - released
    remaining_cost = position.cost - released
    opened = abs(signed) - closing
    new_qty = held + signed
    if opened > 0:  # flipped through zero: the rest opens a position the other way
        remaining_cost = new_qty * price
    return FillEffect(
        Position(new_qty, remaining_cost, position.realized + realized), realized, cash_delta
    )


def drawdown(peak: Decimal, equity: Decimal) -> Decimal:
    """Fraction below the peak (0 at or above it)."""
    if peak <= 0 or equity >= peak:
        return ZERO
    return (peak - equity) / peak
