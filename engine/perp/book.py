"""The exchange's books for perpetual positions: isolated margin, funding, liquidation.

Positions are netted per symbol (one-way mode) and keep a signed quantity and cost
(see `engine.maths.accounting`). The position margin is the entry notional over
the leverage: reserved when a position opens or grows, released in proportion as
it shrinks. The wallet (the account's cash) moves only by realized PnL, fees and
funding; what can still be committed is the wallet less every position margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from engine.events import ZERO, Side
from engine.markets import SymbolSpec
from engine.maths.accounting import Position, apply_fill
from engine.perp.margin import liquidation_price, position_margin


@dataclass(slots=True)
class PerpBook:
    leverage: dict[str, Decimal]
    positions: dict[str, Position] = field(default_factory=dict)
    opened_at: dict[str, datetime] = field(default_factory=dict)
    fair: dict[str, Decimal] = field(default_factory=dict)  # the fair (mark) price
    marked_at: dict[str, datetime] = field(default_factory=dict)  # the latest mark's time
    mark_fed: set[str] = field(default_factory=set)  # symbols with a mark-price feed

    def qty(self, symbol: str) -> Decimal:
        position = self.positions.get(symbol)
        return position.qty if position is not None else ZERO

    def margin(self, symbol: str) -> Decimal:
        position = self.positions.get(symbol)
        if position is None:
            return ZERO
        return position_margin(position.cost, self.leverage[symbol])

    def margins(self) -> Decimal:
        return sum((self.margin(s) for s in self.positions), ZERO)

    def liquidation_price(self, spec: SymbolSpec) -> Decimal | None:
        position = self.positions.get(spec.symbol)
        if position is None or spec.contract is None:
            return None
        side = Side.BUY if position.qty > 0 else Side.SELL
        mmr = spec.contract.tier(position.qty).maintenance_margin_rate
        return liquidation_price(
            side, position.avg_entry, position.qty, self.margin(spec.symbol), mmr
        )

    def reduces(self, symbol: str, side: Side) -> bool:
        """Whether an order of `side` makes the symbol's position smaller."""
        held = self.qty(symbol)
        return held != 0 and (held > 0) != (side is Side.BUY)

    def entry_room(
        self, cash: Decimal, symbol: str, ceiling: Decimal, fee_rate: Decimal
    ) -> Decimal:
        """Base units an entry can add: margin plus fee out of the free wallet."""
        free = cash - self.margins()
        if free <= 0:
            return ZERO
        per_unit = ceiling * (1 / self.leverage[symbol] + fee_rate)
        return free / per_unit

    def book(self, symbol: str, side: Side, qty: Decimal, price: Decimal, ts: datetime) -> Decimal:
        """Apply a fill; return the PnL it realizes (before fees)."""
        before = self.positions.get(symbol, Position())
        effect = apply_fill(before, side, qty, price)
        if effect.position.qty == 0:
            self.positions.pop(symbol, None)
            self.opened_at.pop(symbol, None)
        else:
            if before.qty == 0 or (before.qty > 0) != (effect.position.qty > 0):
                self.opened_at[symbol] = ts
            self.positions[symbol] = effect.position
        return effect.realized
