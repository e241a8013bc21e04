"""What risk and execution need to know about each symbol, from the exchange's REST API.

For MEXC the values are read from the raw exchange answer (`market["info"]`), not
from ccxt's float-typed unified fields, so they are exact. Every quantity here is
in BASE units, futures included (contracts x contract_size), matching the `qty`
of the trades the feed emits; `contract_size` converts back to contracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from engine.contracts import ContractTerms
from engine.feeds.exchange.numbers import exact_decimal, int_ms, optional_decimal, utc_ms
from engine.markets import SymbolSpec

ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """Trading rules of one symbol. Fees are fractions (0.0005 = 0.05 %)."""

    symbol: str  # engine style, e.g. BTCUSDT (also for the BTC_USDT perpetual)
    exchange_id: str  # the exchange's own id, e.g. BTCUSDT or BTC_USDT
    ccxt_symbol: str  # e.g. BTC/USDT or BTC/USDT:USDT
    market: str  # "spot" or "futures"
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    contract_size: Decimal = ONE
    maintenance_margin_rate: Decimal = ZERO
    initial_margin_rate: Decimal = ZERO
    active: bool = True
    # Perpetuals: the contract detail's leverage cap, risk tiers and settle currency.
    max_leverage: Decimal = ZERO
    risk_incr_vol: Decimal = ZERO
    risk_incr_mmr: Decimal = ZERO
    risk_incr_imr: Decimal = ZERO
    risk_level_limit: int = 1
    settle: str = ""

    def contract_terms(self) -> ContractTerms | None:
        """The perpetual's margin rules, or None for spot (or a contract without them)."""
        if self.market != "futures" or self.initial_margin_rate <= 0:
            return None
        cap = self.max_leverage or (ONE / self.initial_margin_rate).to_integral_value(ROUND_FLOOR)
        return ContractTerms(
            settle=self.settle or self.quote,
            contract_size=self.contract_size,
            maintenance_margin_rate=self.maintenance_margin_rate,
            initial_margin_rate=self.initial_margin_rate,
            max_leverage=cap,
            risk_incr_vol=self.risk_incr_vol,
            risk_incr_mmr=self.risk_incr_mmr,
            risk_incr_imr=self.risk_incr_imr,
            risk_level_limit=self.risk_level_limit,
        )

    def symbol_spec(self) -> SymbolSpec:
        """What risk and execution use of this market."""
        return SymbolSpec(
            symbol=self.symbol,
            base=self.base,
            quote=self.quote,
            tick_size=self.tick_size,
            lot_size=self.lot_size,
            maker_fee=self.maker_fee,
            taker_fee=self.taker_fee,
            min_qty=self.min_qty,
            min_notional=self.min_notional,
            contract_size=self.contract_size,
            maintenance_margin_rate=self.maintenance_margin_rate,
            contract=self.contract_terms(),
        )


@dataclass(frozen=True, slots=True)
class FundingRate:
    """The current funding rate of a perpetual; positive means longs pay shorts."""

    symbol: str
    rate: Decimal
    next_settle_time: datetime | None
    interval_h: int | None
    min_rate: Decimal | None = None
    max_rate: Decimal | None = None


def engine_symbol(market: dict[str, Any]) -> str:
    """BTC/USDT and BTC/USDT:USDT both become BTCUSDT."""
    return "".join(ch for ch in f"{market['base']}{market['quote']}".upper() if ch.isalnum())


def spec_from_market(market: dict[str, Any]) -> MarketSpec:
    info = market.get("info") or {}
    if "baseAssetPrecision" in info:
        return _mexc_spot(market, info)
    if "contractSize" in info and "priceUnit" in info:
        return _mexc_contract(market, info)
    return _generic(market)


def _mexc_spot(market: dict[str, Any], info: dict[str, Any]) -> MarketSpec:
    # MEXC publishes no LOT_SIZE / PRICE_FILTER: steps come from the precisions,
    # the minimums from baseSizePrecision and quoteAmountPrecision (see mexc-api.md).
    tick = ONE.scaleb(-int(info.get("quoteAssetPrecision", info.get("quotePrecision", 8))))
    lot = ONE.scaleb(-int(info["baseAssetPrecision"]))
    status = str(info.get("status", "1"))
    return MarketSpec(
        symbol=engine_symbol(market),
        exchange_id=market["id"],
        ccxt_symbol=market["symbol"],
        market="spot",
        base=market["base"],
        quote=market["quote"],
        tick_size=tick,
        lot_size=lot,
        min_qty=optional_decimal(info.get("baseSizePrecision"), "baseSizePrecision") or lot,
        min_notional=optional_decimal(info.get("quoteAmountPrecision"), "quoteAmountPrecision")
        or ZERO,
        maker_fee=exact_decimal(info.get("makerCommission", "0"), "makerCommission"),
        taker_fee=exact_decimal(info.get("takerCommission", "0"), "takerCommission"),
        active=status in ("1", "ENABLED"),
    )


def _mexc_contract(market: dict[str, Any], info: dict[str, Any]) -> MarketSpec:
    size = exact_decimal(info["contractSize"], "contractSize")
    vol_unit = exact_decimal(info.get("volUnit", 1), "volUnit")
    min_vol = exact_decimal(info.get("minVol", 1), "minVol")
    return MarketSpec(
        symbol=engine_symbol(market),
        exchange_id=market["id"],
        ccxt_symbol=market["symbol"],
        market="futures",
        base=market["base"],
        quote=market["quote"],
        tick_size=exact_decimal(info["priceUnit"], "priceUnit"),
        lot_size=vol_unit * size,
        min_qty=min_vol * size,
        min_notional=ZERO,
        maker_fee=exact_decimal(info.get("makerFeeRate", 0), "makerFeeRate"),
        taker_fee=exact_decimal(info.get("takerFeeRate", 0), "takerFeeRate"),
        contract_size=size,
        maintenance_margin_rate=exact_decimal(
            info.get("maintenanceMarginRate", 0), "maintenanceMarginRate"
        ),
        initial_margin_rate=exact_decimal(info.get("initialMarginRate", 0), "initialMarginRate"),
        active=int(info.get("state", 0)) == 0,
        max_leverage=exact_decimal(info.get("maxLeverage", 0), "maxLeverage"),
        risk_incr_vol=exact_decimal(info.get("riskIncrVol", 0), "riskIncrVol"),
        risk_incr_mmr=exact_decimal(info.get("riskIncrMmr", 0), "riskIncrMmr"),
        risk_incr_imr=exact_decimal(info.get("riskIncrImr", 0), "riskIncrImr"),
        risk_level_limit=int(info.get("riskLevelLimit", 1) or 1),
        settle=str(info.get("settleCoin") or market.get("settle") or ""),
    )


def _generic(market: dict[str, Any]) -> MarketSpec:
    """Other ccxt exchanges: unified fields (floats, via their shortest repr)."""
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    size = optional_decimal(market.get("contractSize"), "contractSize") or ONE
    lot = optional_decimal(precision.get("amount"), "precision.amount") or ZERO
    return MarketSpec(
        symbol=engine_symbol(market),
        exchange_id=market["id"],
        ccxt_symbol=market["symbol"],
        market="spot" if market.get("spot") else "futures",
        base=market["base"],
        quote=market["quote"],
        tick_size=optional_decimal(precision.get("price"), "precision.price") or ZERO,
        lot_size=lot * size,
        min_qty=(optional_decimal((limits.get("amount") or {}).get("min"), "min amount") or ZERO)
        * size,
        min_notional=optional_decimal((limits.get("cost") or {}).get("min"), "min cost") or ZERO,
        maker_fee=optional_decimal(market.get("maker"), "maker") or ZERO,
        taker_fee=optional_decimal(market.get("taker"), "taker") or ZERO,
        contract_size=size,
        active=market.get("active") is not False,
    )


def funding_from_mexc(symbol: str, data: dict[str, Any]) -> FundingRate:
    """Parse `GET /api/v1/contract/funding_rate/{symbol}`'s `data` object."""
    next_settle = data.get("nextSettleTime")
    cycle = data.get("collectCycle")
    return FundingRate(
        symbol=symbol,
        rate=exact_decimal(data.get("fundingRate"), "fundingRate"),
        next_settle_time=None if next_settle is None else utc_ms(int_ms(next_settle, "nextSettle")),
        interval_h=None if cycle is None else int(cycle),
        min_rate=optional_decimal(data.get("minFundingRate"), "minFundingRate"),
        max_rate=optional_decimal(data.get("maxFundingRate"), "maxFundingRate"),
    )
