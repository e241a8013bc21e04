"""The strategy interface and the loader for user strategies.

A strategy sees closed candles (`on_candle`) or trades (`on_trade`) and the
positions it holds (`context.position(symbol)`), and returns intents. It never
sizes orders and never reads the clock: risk sizes, and event time drives it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from engine.errors import InvalidEventError
from engine.events import (
    ONE,
    ZERO,
    Candle,
    OrderType,
    PositionView,
    Side,
    TimeInForce,
    Trade,
    check_order_terms,
    check_positive,
    check_symbol,
    parse_decimal,
    parse_enum,
)


class StrategyContext(Protocol):
    def position(self, symbol: str) -> PositionView | None: ...


@dataclass(frozen=True, slots=True)
class Intent:
    """What a strategy wants: risk sizes it into an order, or refuses it with a reason.

    Written the way a person would: `side="buy"` or `Side.BUY`, `confidence=1` or
    `0.7` (any number from 0 to 1), and for a limit order `limit_price` (a number),
    optionally `time_in_force` ("gtc", "ioc" or "fok"), `post_only=True` (refused
    rather than taking liquidity) and `ttl_seconds` (default `ORDER_TTL_SECONDS`).
    A value that cannot be meant raises an error that names the field.
    """

    symbol: str
    side: Side | str
    confidence: Decimal | float | int | str = Decimal(1)
    reason: str = ""
    limit_price: Decimal | float | int | str | None = None
    time_in_force: TimeInForce | str = TimeInForce.GTC
    post_only: bool = False
    ttl_seconds: int | None = None

    def __post_init__(self) -> None:
        try:
            check_symbol(self.symbol)
            side = parse_enum(Side, self.side, "side")
            confidence = parse_decimal(self.confidence, "confidence")
            if not ZERO <= confidence <= ONE:
                raise InvalidEventError(
                    f"confidence must be from 0 to 1, got {confidence}", "out_of_range"
                )
            limit = None
            if self.limit_price is not None:
                limit = parse_decimal(self.limit_price, "limit_price")
                check_positive(limit, "limit_price")
            tif = parse_enum(TimeInForce, self.time_in_force, "time_in_force")
            if not isinstance(self.reason, str):
                raise InvalidEventError("reason must be text", "bad_type")
            if self.ttl_seconds is not None and (
                isinstance(self.ttl_seconds, bool)
                or not isinstance(self.ttl_seconds, int)
                or self.ttl_seconds <= 0
            ):
                raise InvalidEventError("ttl_seconds must be a positive whole number", "bad_ttl")
            order_type = OrderType.LIMIT if limit is not None else OrderType.MARKET
            check_order_terms(order_type, limit, tif, self.post_only)
        except InvalidEventError as exc:
            raise InvalidEventError(f"Intent for {self.symbol!r}: {exc}", exc.reason) from None
        object.__setattr__(self, "side", side)
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "limit_price", limit)
        object.__setattr__(self, "time_in_force", tif)

    @property
    def order_type(self) -> OrderType:
        return OrderType.MARKET if self.limit_price is None else OrderType.LIMIT


class Strategy:
    """Subclass and override `on_candle` and/or `on_trade`."""

    name: str = "strategy"

    def on_candle(self, candle: Candle, context: StrategyContext) -> Iterable[Intent]:
        return ()

    def on_trade(self, trade: Trade, context: StrategyContext) -> Iterable[Intent]:
        return ()

    def export_state(self) -> dict[str, Any]:
        """What the strategy remembers, as JSON values, for crash-safe resume.

        A strategy that keeps indicators or counters between events overrides this
        and `import_state`, so a resumed run decides exactly as an unbroken one.
        """
        return {}

    def import_state(self, state: dict[str, Any]) -> None:
        """Take back what `export_state` returned."""
