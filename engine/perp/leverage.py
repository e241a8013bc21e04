"""The leverage a run trades each perpetual at: asked for, then capped."""

from __future__ import annotations

from decimal import Decimal

from engine.config import Settings
from engine.markets import SymbolSpec

ONE = Decimal(1)


def leverage_for(settings: Settings, spec: SymbolSpec) -> Decimal:
    """`LEVERAGE` (or the symbol's entry in `LEVERAGE_BY_SYMBOL`), capped by `MAX_LEVERAGE`
    and the contract's maximum; 1 for spot."""
    if spec.contract is None:
        return ONE
    asked = settings.leverage_by_symbol_map().get(spec.symbol, settings.leverage)
    return min(asked, settings.max_leverage, spec.contract.max_leverage)


def leverages(settings: Settings, specs: dict[str, SymbolSpec]) -> dict[str, Decimal]:
    return {symbol: leverage_for(settings, spec) for symbol, spec in specs.items()}
