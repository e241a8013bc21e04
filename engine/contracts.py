"""What a perpetual contract adds to a symbol: margin rates, risk tiers, funding bounds.

Sizes in the engine are in base units everywhere (contracts x contract size), so a
perpetual trades through the same orders and fills as spot; the contract size
converts to contracts for display and for the risk tiers, which MEXC states in
contracts. Tier k covers positions of `[k * risk_incr_vol, (k + 1) * risk_incr_vol)`
contracts, up to `risk_level_limit` tiers (ccxt's reading of MEXC's contract detail):
maintenance margin rate `mmr + k * risk_incr_mmr`, initial margin rate
`imr + k * risk_incr_imr`, maximum leverage `1 / initial margin rate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from engine.events import ZERO, check_non_negative, check_positive


@dataclass(frozen=True, slots=True)
class Tier:
    level: int
    maintenance_margin_rate: Decimal
    initial_margin_rate: Decimal

    @property
    def max_leverage(self) -> Decimal:
        return (1 / self.initial_margin_rate).to_integral_value(ROUND_FLOOR)


@dataclass(frozen=True, slots=True)
class ContractTerms:
    settle: str
    contract_size: Decimal
    maintenance_margin_rate: Decimal
    initial_margin_rate: Decimal
    max_leverage: Decimal
    risk_incr_vol: Decimal = ZERO  # contracts per tier (0: a single tier)
    risk_incr_mmr: Decimal = ZERO
    risk_incr_imr: Decimal = ZERO
    risk_level_limit: int = 1
    min_funding_rate: Decimal = Decimal("-0.003")
    max_funding_rate: Decimal = Decimal("0.003")
    funding_interval_h: int = 8

    def __post_init__(self) -> None:
        check_positive(self.contract_size, "contract_size")
        check_positive(self.initial_margin_rate, "initial_margin_rate")
        check_positive(self.max_leverage, "max_leverage")
        for name in (
            "maintenance_margin_rate",
            "risk_incr_vol",
            "risk_incr_mmr",
            "risk_incr_imr",
        ):
            check_non_negative(getattr(self, name), name)
        if self.maintenance_margin_rate >= self.initial_margin_rate:
            raise ValueError("the maintenance margin rate must be below the initial margin rate")
        if self.min_funding_rate > self.max_funding_rate:
            raise ValueError("min_funding_rate must not exceed max_funding_rate")
        if self.funding_interval_h not in (1, 2, 4, 8):
            raise ValueError("funding_interval_h must be 1, 2, 4 or 8 hours")

    def contracts(self, qty: Decimal) -> Decimal:
        """Base units to contracts."""
        return qty / self.contract_size

    def tier(self, qty: Decimal) -> Tier:
        """The risk tier of a position of `qty` base units."""
        contracts = abs(self.contracts(qty))
        level = 0
        if self.risk_incr_vol > 0:
            level = int((contracts / self.risk_incr_vol).to_integral_value(ROUND_FLOOR))
            level = min(level, max(self.risk_level_limit - 1, 0))
        imr = self.initial_margin_rate + level * self.risk_incr_imr
        return Tier(level, self.maintenance_margin_rate + level * self.risk_incr_mmr, imr)

    def leverage_cap(self, qty: Decimal) -> Decimal:
        return min(self.max_leverage, self.tier(qty).max_leverage)
