"""What the engine knows about a tradable symbol: ticks, lots, minimums and fees."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from engine.contracts import ContractTerms
from engine.events import Side, check_non_negative, check_positive, check_symbol


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    min_qty: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    # Perpetuals: sizes here are in base units; the contract size converts them.
    contract_size: Decimal = Decimal(1)
    maintenance_margin_rate: Decimal = Decimal(0)
    contract: ContractTerms | None = None  # set for a perpetual, None for spot

    @property
    def perpetual(self) -> bool:
        return self.contract is not None

    def __post_init__(self) -> None:
        check_symbol(self.symbol)
        check_positive(self.tick_size, "tick_size")
        check_positive(self.lot_size, "lot_size")
        check_positive(self.contract_size, "contract_size")
        for name in (
            "maker_fee",
            "taker_fee",
            "min_qty",
            "min_notional",
            "maintenance_margin_rate",
        ):
            check_non_negative(getattr(self, name), name)

    def floor_qty(self, qty: Decimal) -> Decimal:
        """Round a size down to whole lots: an exchange never fills a fraction of a lot."""
        return (qty / self.lot_size).to_integral_value(ROUND_FLOOR) * self.lot_size

    def adverse_price(self, price: Decimal, side: Side) -> Decimal:
        """Round a price onto the tick grid against the trader (buys up, sells down)."""
        rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
        return (price / self.tick_size).to_integral_value(rounding) * self.tick_size
