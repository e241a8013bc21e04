"""The events that flow between services, and their JSON form.

Every event is frozen, carries a stable `event_id`, the event time `ts` (UTC) and
the id of the event that caused it (`cause_id`), so a fill can be traced back to
the market event that triggered it and re-delivery is harmless. Money and sizes
are `Decimal`. Construction validates, so an invalid event cannot exist; decoding
JSON goes through the same checks and raises `InvalidEventError` with a reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar, Final, TypeVar, get_args, get_type_hints

from engine.errors import InvalidEventError

ZERO: Final = Decimal(0)
ONE: Final = Decimal(1)

SYMBOL_PATTERN: Final = re.compile(r"^[A-Z0-9]{2,24}$")

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_fill(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED)


class TimeInForce(StrEnum):
    """How long a limit order works: until filled or its time to live (gtc), only its first
    chance to trade (ioc), or all at its first chance or nothing (fok)."""

    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(StrEnum):
    """An alert starts an episode (`firing`) and a later one ends it (`resolved`)."""

    FIRING = "firing"
    RESOLVED = "resolved"


class Intent(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"


def parse_enum(enum_type: type[E], value: object, name: str) -> E:
    """Accept any letter case and surrounding blanks; refuse unknown values by name."""
    if isinstance(value, enum_type):
        return value
    if not isinstance(value, str):
        raise InvalidEventError(f"{name} must be text, got {type(value).__name__}", "bad_type")
    try:
        return enum_type(value.strip().lower())
    except ValueError:
        allowed = ", ".join(m.value for m in enum_type)
        raise InvalidEventError(
            f"{name} {value!r} is unknown; expected one of {allowed}", f"unknown_{name}"
        ) from None


def parse_decimal(value: object, name: str) -> Decimal:
    """A finite Decimal from text, an int or a Decimal; floats go through their repr."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool) or value is None:
        raise InvalidEventError(f"{name} must be a number, got {value!r}", "not_a_number")
    elif isinstance(value, int | float | str):
        try:
            result = Decimal(value.strip() if isinstance(value, str) else repr(value))
        except InvalidOperation:
            raise InvalidEventError(f"{name} {value!r} is not a number", "not_a_number") from None
    else:
        raise InvalidEventError(f"{name} must be a number, got {type(value).__name__}", "bad_type")
    if not result.is_finite():
        raise InvalidEventError(f"{name} must be finite, got {value!r}", "not_finite")
    return result


def check_positive(value: Decimal, name: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidEventError(f"{name} must be a finite Decimal, got {value!r}", "not_finite")
    if value <= 0:
        raise InvalidEventError(f"{name} must be greater than zero, got {value}", "not_positive")


def check_non_negative(value: Decimal, name: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidEventError(f"{name} must be a finite Decimal, got {value!r}", "not_finite")
    if value < 0:
        raise InvalidEventError(f"{name} must not be negative, got {value}", "negative")


def check_finite(value: Decimal, name: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidEventError(f"{name} must be a finite Decimal, got {value!r}", "not_finite")


def check_symbol(value: object) -> str:
    if not isinstance(value, str) or not SYMBOL_PATTERN.match(value):
        shown = repr(value)[:60]
        raise InvalidEventError(
            f"symbol {shown} is not valid: use 2-24 upper-case letters and digits, like BTCUSDT",
            "bad_symbol",
        )
    return value


def check_order_terms(
    order_type: OrderType, limit_price: Decimal | None, tif: TimeInForce, post_only: bool
) -> None:
    """A limit order has a positive price; a market order has none and cannot rest."""
    if order_type is OrderType.LIMIT:
        if limit_price is None:
            raise InvalidEventError("a limit order needs a limit_price", "missing_price")
        check_positive(limit_price, "limit_price")
        if post_only and tif is not TimeInForce.GTC:
            raise InvalidEventError(
                "a post-only order rests in the book: its time in force must be gtc",
                "bad_time_in_force",
            )
    else:
        if limit_price is not None:
            raise InvalidEventError("a market order has no limit_price", "unexpected_price")
        if post_only:
            raise InvalidEventError("a market order cannot be post-only", "bad_post_only")
    if not isinstance(post_only, bool):
        raise InvalidEventError("post_only must be true or false", "bad_type")


def check_utc(value: object, name: str = "ts") -> None:
    if type(value) is datetime and value.tzinfo is UTC:
        return  # the usual case, checked without computing an offset
    if not isinstance(value, datetime) or value.utcoffset() != timedelta(0):
        raise InvalidEventError(f"{name} must be a UTC datetime, got {value!r}", "bad_time")


def parse_time(value: object, name: str = "ts") -> datetime:
    """UTC datetime from ISO 8601 text (with an offset) or epoch milliseconds."""
    if isinstance(value, datetime):
        check_utc(value, name)
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidEventError(
                f"{name} {value!r} is not an ISO 8601 time", "bad_time"
            ) from None
        if parsed.tzinfo is None:
            raise InvalidEventError(f"{name} {value!r} has no UTC offset", "bad_time")
        return parsed.astimezone(UTC)
    raise InvalidEventError(f"{name} must be a time, got {value!r}", "bad_time")


def derive_id(prefix: str, *parts: object) -> str:
    """A deterministic id from what caused the event, so a replay gives the same ids."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=10).hexdigest()
    return f"{prefix}-{digest}"


def _check_id(value: object, name: str) -> None:
    if not isinstance(value, str) or not value or len(value) > 128:
        raise InvalidEventError(
            f"{name} must be non-empty text of at most 128 characters", "bad_id"
        )


@dataclass(frozen=True, slots=True)
class Event:
    """Fields common to every event."""

    TYPE: ClassVar[str] = ""
    STREAM: ClassVar[str] = ""

    event_id: str
    ts: datetime
    cause_id: str | None

    def _check_common(self) -> None:
        _check_id(self.event_id, "event_id")
        if self.cause_id is not None:
            _check_id(self.cause_id, "cause_id")
        check_utc(self.ts)


@dataclass(frozen=True, slots=True)
class Trade(Event):
    """One public trade; `side` is the taker's side."""

    TYPE: ClassVar[str] = "trade"
    STREAM: ClassVar[str] = "market_data"

    symbol: str
    price: Decimal
    qty: Decimal
    side: Side
    trade_id: str

    def __post_init__(self) -> None:
        self._check_common()
        check_symbol(self.symbol)
        check_positive(self.price, "price")
        check_positive(self.qty, "qty")

    @property
    def reference_price(self) -> Decimal:
        return self.price

    @property
    def volume(self) -> Decimal:
        return self.qty

    @property
    def low(self) -> Decimal:
        return self.price

    @property
    def high(self) -> Decimal:
        return self.price


@dataclass(frozen=True, slots=True)
class Candle(Event):
    """A closed candle. `ts` is its close time, when the candle becomes known."""

    TYPE: ClassVar[str] = "candle"
    STREAM: ClassVar[str] = "market_data"

    symbol: str
    open_time: datetime
    interval_s: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    def __post_init__(self) -> None:
        self._check_common()
        check_symbol(self.symbol)
        check_utc(self.open_time, "open_time")
        if not isinstance(self.interval_s, int) or self.interval_s <= 0:
            raise InvalidEventError("interval_s must be a positive whole number", "bad_interval")
        check_positive(self.open, "open")
        check_positive(self.high, "high")
        check_positive(self.low, "low")
        check_positive(self.close, "close")
        check_non_negative(self.volume, "volume")
        if (
            self.low > self.high
            or not (self.low <= self.open <= self.high)
            or not (self.low <= self.close <= self.high)
        ):
            raise InvalidEventError(
                f"candle {self.symbol} at {self.open_time.isoformat()} has open/close outside "
                f"low {self.low} - high {self.high}",
                "inconsistent_candle",
            )

    @property
    def reference_price(self) -> Decimal:
        """The price an order placed before this candle could first trade at."""
        return self.open


@dataclass(frozen=True, slots=True)
class Quote(Event):
    """The best bid and ask of a symbol's order book (a book-ticker update)."""

    TYPE: ClassVar[str] = "quote"
    STREAM: ClassVar[str] = "market_data"

    symbol: str
    bid: Decimal
    ask: Decimal
    bid_qty: Decimal
    ask_qty: Decimal

    def __post_init__(self) -> None:
        self._check_common()
        check_symbol(self.symbol)
        for name in ("bid", "ask", "bid_qty", "ask_qty"):
            check_positive(getattr(self, name), name)
        if self.ask < self.bid:
            raise InvalidEventError(
                f"quote {self.symbol} has ask {self.ask} below bid {self.bid}", "crossed_quote"
            )

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class MarkPrice(Event):
    """A perpetual's fair (mark) price: what its unrealized PnL, funding and
    liquidation are measured at."""

    TYPE: ClassVar[str] = "mark_price"
    STREAM: ClassVar[str] = "market_data"

    symbol: str
    price: Decimal

    def __post_init__(self) -> None:
        self._check_common()
        check_symbol(self.symbol)
        check_positive(self.price, "price")


@dataclass(frozen=True, slots=True)
class FundingSettlement(Event):
    """Funding is settled at `ts` for `symbol` at `rate` (positive: longs pay shorts)."""

    TYPE: ClassVar[str] = "funding_settlement"
    STREAM: ClassVar[str] = "market_data"

    symbol: str
    rate: Decimal

    def __post_init__(self) -> None:
        self._check_common()
        check_symbol(self.symbol)
        check_finite(self.rate, "rate")
        if abs(self.rate) >= 1:
            raise InvalidEventError(f"funding rate {self.rate} is not a rate", "out_of_range")


@dataclass(frozen=True, slots=True)
class Heartbeat(Event):
    """The feed heard from the exchange about `symbol` (a kline update, a ping answer)
    without a trade or a closed candle: the symbol's data is alive, not stale."""

    TYPE: ClassVar[str] = "heartbeat"
    STREAM: ClassVar[str] = "market_data"

    symbol: str

    def __post_init__(self) -> None:
        self._check_common()
        check_symbol(self.symbol)


@dataclass(frozen=True, slots=True)
class Watermark(Event):
    """Every market event up to `ts` has been published: marks at `ts` are consistent.

    The feed publishes one after each group of market events that share a time, so
    services that value the whole account (portfolio, risk) act on consistent marks.
    """

    TYPE: ClassVar[str] = "watermark"
    STREAM: ClassVar[str] = "market_data"

    def __post_init__(self) -> None:
        self._check_common()


@dataclass(frozen=True, slots=True)
class Barrier(Event):
    """A service has published everything it will for the market time `ts` on this stream.

    With one process per service, each service handles its inputs in a fixed order
    per market time, reading each stream up to its producer's barrier, so that the
    services together decide exactly as the single-process pipeline does.
    """

    TYPE: ClassVar[str] = "barrier"
    STREAM: ClassVar[str] = "order_results"  # published on every output stream

    producer: str
    step: int = 0

    def __post_init__(self) -> None:
        self._check_common()
        if not isinstance(self.producer, str) or not self.producer:
            raise InvalidEventError("a barrier names its producer", "bad_type")


MarketEvent = Trade | Candle
# Everything a feed hands the pipeline on `market_data`, besides watermarks.
MarketData = Trade | Candle | Quote | Heartbeat | MarkPrice | FundingSettlement


@dataclass(frozen=True, slots=True)
class Signal(Event):
    TYPE: ClassVar[str] = "signal"
    STREAM: ClassVar[str] = "signals"

    symbol: str
    side: Side
    confidence: Decimal
    reason: str
    strategy: str
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    ttl_s: int | None = None  # how long the order may work; None: ORDER_TTL_SECONDS

    def __post_init__(self) -> None:
        self._check_common()
        check_symbol(self.symbol)
        if self.ttl_s is not None and (
            isinstance(self.ttl_s, bool) or not isinstance(self.ttl_s, int) or self.ttl_s <= 0
        ):
            raise InvalidEventError("ttl_s must be a positive whole number", "bad_ttl")
        check_finite(self.confidence, "confidence")
        if not ZERO <= self.confidence <= ONE:
            raise InvalidEventError("confidence must be between 0 and 1", "out_of_range")
        check_order_terms(self.order_type, self.limit_price, self.time_in_force, self.post_only)


@dataclass(frozen=True, slots=True)
class Order(Event):
    """An order approved by risk. `notional` is qty at the price risk valued it at."""

    TYPE: ClassVar[str] = "order"
    STREAM: ClassVar[str] = "orders"

    order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    limit_price: Decimal | None
    decision_price: Decimal
    intent: Intent
    ttl_s: int
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False

    def __post_init__(self) -> None:
        self._check_common()
        _check_id(self.order_id, "order_id")
        check_symbol(self.symbol)
        check_positive(self.qty, "qty")
        check_positive(self.decision_price, "decision_price")
        check_order_terms(self.order_type, self.limit_price, self.time_in_force, self.post_only)
        if not isinstance(self.ttl_s, int) or self.ttl_s <= 0:
            raise InvalidEventError("ttl_s must be a positive whole number", "bad_ttl")

    @property
    def notional(self) -> Decimal:
        return self.qty * self.decision_price


@dataclass(frozen=True, slots=True)
class OrderCancel(Event):
    """A request to cancel a working order (risk flattening, an operator)."""

    TYPE: ClassVar[str] = "order_cancel"
    STREAM: ClassVar[str] = "orders"

    order_id: str
    symbol: str
    reason: str

    def __post_init__(self) -> None:
        self._check_common()
        _check_id(self.order_id, "order_id")
        check_symbol(self.symbol)


@dataclass(frozen=True, slots=True)
class OrderResult(Event):
    """A fill (partial or final) or the end of an order without a fill.

    Fills carry `qty` > 0 and `price` > 0; rejected, cancelled and expired results
    carry `qty` 0 and no price. `remaining_qty` is what is still working afterwards.
    `requested_price` is the market price the order met (or its limit), `spread_bps`
    the half spread a taker fill paid on top of it and `slippage_bps` the rest of the
    cost (market impact and tick rounding); both are positive when the trader pays.
    """

    TYPE: ClassVar[str] = "order_result"
    STREAM: ClassVar[str] = "order_results"

    order_id: str
    symbol: str
    side: Side
    status: OrderStatus
    qty: Decimal
    price: Decimal | None
    requested_price: Decimal | None
    slippage_bps: Decimal
    fee: Decimal
    liquidity: Liquidity | None
    remaining_qty: Decimal
    reason: str
    market_event_id: str | None
    spread_bps: Decimal = ZERO

    def __post_init__(self) -> None:
        self._check_common()
        _check_id(self.order_id, "order_id")
        check_symbol(self.symbol)
        check_non_negative(self.remaining_qty, "remaining_qty")
        check_non_negative(self.fee, "fee")
        check_finite(self.slippage_bps, "slippage_bps")
        check_finite(self.spread_bps, "spread_bps")
        if self.status.is_fill:
            check_positive(self.qty, "qty")
            if self.price is None:
                raise InvalidEventError("a fill needs a price", "missing_price")
            check_positive(self.price, "price")
            if self.liquidity is None:
                raise InvalidEventError(
                    "a fill needs maker or taker liquidity", "missing_liquidity"
                )
            if (self.status is OrderStatus.FILLED) != (self.remaining_qty == 0):
                raise InvalidEventError(
                    "a filled order has nothing remaining; a partial fill has something",
                    "inconsistent_status",
                )
        else:
            if self.qty != 0 or self.price is not None:
                raise InvalidEventError(
                    f"a {self.status.value} result fills nothing: qty must be 0 and price empty",
                    "inconsistent_status",
                )
        if self.requested_price is not None:
            check_positive(self.requested_price, "requested_price")

    @property
    def trade_id(self) -> str:
        return self.event_id

    @property
    def notional(self) -> Decimal:
        return self.qty * self.price if self.price is not None else ZERO


@dataclass(frozen=True, slots=True)
class FundingPayment(Event):
    """What one position paid (positive `amount`) or received (negative) at a settlement."""

    TYPE: ClassVar[str] = "funding_payment"
    STREAM: ClassVar[str] = "order_results"

    symbol: str
    qty: Decimal  # signed: longs positive
    fair_price: Decimal
    rate: Decimal
    amount: Decimal

    def __post_init__(self) -> None:
        self._check_common()
        check_symbol(self.symbol)
        check_positive(self.fair_price, "fair_price")
        for name in ("qty", "rate", "amount"):
            check_finite(getattr(self, name), name)
        if self.qty == 0:
            raise InvalidEventError("only an open position pays funding", "not_positive")


@dataclass(frozen=True, slots=True)
class Liquidation(Event):
    """An isolated position closed by the exchange at its liquidation price.

    The fill itself is an `OrderResult` (`order_id` here); this records the numbers.
    `margin_lost` is the whole position margin; `fee` is the part of it the exchange
    keeps beyond the loss at the liquidation price.
    """

    TYPE: ClassVar[str] = "liquidation"
    STREAM: ClassVar[str] = "order_results"

    order_id: str
    symbol: str
    qty: Decimal  # signed position that was closed
    entry_price: Decimal
    liquidation_price: Decimal
    mark_price: Decimal
    margin_lost: Decimal
    fee: Decimal
    leverage: Decimal
    maintenance_margin_rate: Decimal

    def __post_init__(self) -> None:
        self._check_common()
        _check_id(self.order_id, "order_id")
        check_symbol(self.symbol)
        for name in ("entry_price", "liquidation_price", "mark_price", "leverage"):
            check_positive(getattr(self, name), name)
        for name in ("margin_lost", "fee", "maintenance_margin_rate"):
            check_non_negative(getattr(self, name), name)
        check_finite(self.qty, "qty")


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    qty: Decimal
    avg_entry: Decimal
    mark_price: Decimal
    cost_basis: Decimal
    realized_pnl: Decimal
    margin: Decimal = ZERO  # perpetuals: the isolated position margin
    liquidation_price: Decimal | None = None
    perpetual: bool = False

    def __post_init__(self) -> None:
        check_symbol(self.symbol)
        for name in ("qty", "avg_entry", "mark_price", "cost_basis", "realized_pnl", "margin"):
            check_finite(getattr(self, name), name)
        if self.liquidation_price is not None:
            check_finite(self.liquidation_price, "liquidation_price")

    @property
    def notional(self) -> Decimal:
        return abs(self.qty) * self.mark_price

    @property
    def unrealized_pnl(self) -> Decimal:
        return self.qty * self.mark_price - self.cost_basis


@dataclass(frozen=True, slots=True)
class PortfolioSnapshot(Event):
    TYPE: ClassVar[str] = "portfolio_snapshot"
    STREAM: ClassVar[str] = "portfolio_snapshots"

    cash: Decimal
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    exposure: Decimal
    exposure_pct: Decimal
    peak_equity: Decimal
    drawdown_pct: Decimal
    day_start_equity: Decimal
    daily_drawdown_pct: Decimal
    positions: tuple[PositionView, ...] = field(default=())
    funding: Decimal = ZERO  # net funding received so far (negative: paid)
    margin_used: Decimal = ZERO  # perpetuals: the sum of position margins

    def __post_init__(self) -> None:
        self._check_common()
        for name in (
            "cash",
            "equity",
            "realized_pnl",
            "unrealized_pnl",
            "exposure_pct",
            "drawdown_pct",
            "daily_drawdown_pct",
            "funding",
        ):
            check_finite(getattr(self, name), name)
        for name in ("fees", "exposure", "peak_equity", "day_start_equity", "margin_used"):
            check_non_negative(getattr(self, name), name)


@dataclass(frozen=True, slots=True)
class RiskEvent(Event):
    """A refusal, a resize or a trading-state change, with the numbers behind it."""

    TYPE: ClassVar[str] = "risk_event"
    STREAM: ClassVar[str] = "risk_events"

    kind: str
    reason: str
    symbol: str | None
    state: TradingState
    message: str
    detail: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_common()
        if self.symbol is not None:
            check_symbol(self.symbol)
        if self.kind not in ("refusal", "resize", "state_change", "liquidation"):
            raise InvalidEventError(f"risk event kind {self.kind!r} is unknown", "unknown_kind")


@dataclass(frozen=True, slots=True)
class Alert(Event):
    """An alarm. Rules with episodes send one `firing` alert when their condition starts and
    one `resolved` alert, with the same `episode_id`, when it has cleared; `value` is the
    measured figure at that moment. One-off alerts have no episode."""

    TYPE: ClassVar[str] = "alert"
    STREAM: ClassVar[str] = "alerts"

    severity: Severity
    rule: str
    message: str
    detail: dict[str, str] = field(default_factory=dict)
    status: AlertStatus = AlertStatus.FIRING
    episode_id: str | None = None
    value: Decimal | None = None

    def __post_init__(self) -> None:
        self._check_common()
        if self.episode_id is not None:
            _check_id(self.episode_id, "episode_id")
        if self.status is AlertStatus.RESOLVED and self.episode_id is None:
            raise InvalidEventError("a resolved alert names its episode", "missing_episode")
        if self.value is not None:
            check_finite(self.value, "value")


EVENT_TYPES: Final[dict[str, type[Event]]] = {
    cls.TYPE: cls
    for cls in (
        Trade,
        Candle,
        Quote,
        MarkPrice,
        FundingSettlement,
        Heartbeat,
        Watermark,
        Barrier,
        Signal,
        Order,
        OrderCancel,
        OrderResult,
        FundingPayment,
        Liquidation,
        PortfolioSnapshot,
        RiskEvent,
        Alert,
    )
}

STREAMS: Final = (
    "market_data",
    "signals",
    "orders",
    "order_results",
    "portfolio_snapshots",
    "risk_events",
    "alerts",
)


# --- JSON --------------------------------------------------------------------


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, PositionView):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return value


def position_to_dict(view: PositionView) -> dict[str, Any]:
    body = _plain(view)
    assert isinstance(body, dict)
    return body


def position_from_dict(body: object) -> PositionView:
    return _decode_fields(PositionView, body)


def to_dict(event: Event) -> dict[str, Any]:
    body: dict[str, Any] = {"type": event.TYPE}
    for f in fields(event):
        body[f.name] = _plain(getattr(event, f.name))
    return body


def to_json(event: Event) -> str:
    return json.dumps(to_dict(event), separators=(",", ":"))


def _refuse_constant(name: str) -> Decimal:
    raise InvalidEventError(f"JSON number {name} is not allowed", "not_finite")


def _converter(annotation: Any, name: str) -> Any:
    """Build a function that turns a decoded JSON value into the field's type."""
    args = get_args(annotation)
    optional = type(None) in args
    inner = next((a for a in args if a is not type(None)), annotation) if optional else annotation

    def convert(value: object) -> object:
        if value is None:
            if optional:
                return None
            raise InvalidEventError(f"{name} is required", "missing_field")
        if inner is Decimal:
            return parse_decimal(value, name)
        if inner is datetime:
            return parse_time(value, name)
        if isinstance(inner, type) and issubclass(inner, StrEnum):
            return parse_enum(inner, value, name)
        if inner is bool:
            if not isinstance(value, bool):
                raise InvalidEventError(f"{name} must be true or false", "bad_type")
            return value
        if inner is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidEventError(f"{name} must be a whole number", "bad_type")
            return value
        if inner is str:
            if not isinstance(value, str):
                raise InvalidEventError(f"{name} must be text", "bad_type")
            return value
        if inner == dict[str, str]:
            if not isinstance(value, dict):
                raise InvalidEventError(f"{name} must be an object", "bad_type")
            return {str(k): str(v) for k, v in value.items()}
        if inner == tuple[PositionView, ...]:
            if not isinstance(value, list):
                raise InvalidEventError(f"{name} must be a list", "bad_type")
            return tuple(_decode_fields(PositionView, item) for item in value)
        raise InvalidEventError(f"{name} has an unsupported type", "bad_type")

    return convert


_CONVERTERS: dict[type, dict[str, Any]] = {}
_DEFAULTS: dict[type, frozenset[str]] = {}


def _defaults(cls: type) -> frozenset[str]:
    names = _DEFAULTS.get(cls)
    if names is None:
        names = _DEFAULTS[cls] = frozenset(
            f.name
            for f in fields(cls)
            if f.default is not MISSING or f.default_factory is not MISSING
        )
    return names


def _decode_fields(cls: type[T], body: object) -> T:
    if not isinstance(body, dict):
        raise InvalidEventError(f"a {cls.__name__} must be a JSON object", "malformed_json")
    converters = _CONVERTERS.get(cls)
    if converters is None:
        hints = get_type_hints(cls)
        converters = {f.name: _converter(hints[f.name], f.name) for f in fields(cls)}  # type: ignore[arg-type]
        _CONVERTERS[cls] = converters
    unknown = set(body) - set(converters) - {"type"}
    if unknown:
        raise InvalidEventError(f"unknown field(s): {', '.join(sorted(unknown))}", "unknown_field")
    kwargs = {}
    for name, convert in converters.items():
        if name not in body and name in _defaults(cls):
            continue  # an optional field an older writer did not know
        kwargs[name] = convert(body.get(name))
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise InvalidEventError(str(exc), "malformed_event") from None


def from_dict(body: object) -> Event:
    if not isinstance(body, dict):
        raise InvalidEventError("an event must be a JSON object", "malformed_json")
    type_name = body.get("type")
    cls = EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise InvalidEventError(f"event type {type_name!r} is unknown", "unknown_type")
    return _decode_fields(cls, body)


def from_json(text: str | bytes) -> Event:
    """Decode and validate one event; every refusal is an `InvalidEventError`."""
    try:
        body = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except InvalidEventError:
        raise
    except (ValueError, TypeError) as exc:
        raise InvalidEventError(f"malformed JSON: {exc}", "malformed_json") from None
    return from_dict(body)
