"""Replay of recorded market data (the CSV formats of the shared data folder).

Files are `BASE_QUOTE-<interval>.csv` (candles: open_time, open, high, low, close,
volume) or `BASE_QUOTE-...-trades.csv` (trades: time_ms, trade_id, side, price,
amount). Several files merge in event-time order; gaps are real and tolerated.
A row that does not validate is skipped and recorded with its reason.
"""

from __future__ import annotations

import csv
import heapq
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from pathlib import Path

from engine.errors import DataSourceError, InvalidEventError
from engine.events import Candle, MarketEvent, Side, Trade, check_symbol, parse_enum
from engine.markets import SymbolSpec

CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")
TRADE_COLUMNS = ("time_ms", "trade_id", "side", "price", "amount")
_NAME = re.compile(r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)-(?P<rest>.+)$")
_INTERVAL = re.compile(r"^(?P<n>\d+)(?P<unit>[smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

# Recorded files often hold binary floats written as text (5.330000000000001e-05):
# their last digits are conversion noise, so values keep 15 significant digits.
_FLOAT_DIGITS = Context(prec=15)


def clean_decimal(text: str, name: str) -> Decimal:
    try:
        value = _FLOAT_DIGITS.create_decimal(text.strip())
    except InvalidOperation:
        raise InvalidEventError(f"{name} {text!r} is not a number", "not_a_number") from None
    if not value.is_finite():
        raise InvalidEventError(f"{name} {text!r} is not finite", "not_finite")
    normal = value.normalize()
    # normalize() turns 100 into 1E+2; keep plain integers plain.
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


def parse_interval(text: str) -> int:
    match = _INTERVAL.match(text)
    if not match:
        raise DataSourceError(f"interval {text!r} is not like 5m, 1h or 1d")
    return int(match["n"]) * _UNIT_SECONDS[match["unit"]]


@dataclass(frozen=True, slots=True)
class Rejected:
    path: str
    line: int
    reason: str


@dataclass(slots=True)
class ReplayFile:
    """One recorded file, parsed and validated into market events."""

    path: Path
    symbol: str
    base: str
    quote: str
    kind: str  # "candles" or "trades"
    interval_s: int | None
    events: list[MarketEvent]
    rejected: list[Rejected] = field(default_factory=list)
    price_decimals: int = 0

    @property
    def first_time(self) -> datetime:
        first = self.events[0]
        return first.open_time if isinstance(first, Candle) else first.ts


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def load_file(path: Path | str) -> ReplayFile:
    path = Path(path)
    if not path.is_file():
        raise DataSourceError(f"replay file {path} does not exist; check the path")
    match = _NAME.match(path.stem)
    if not match:
        raise DataSourceError(
            f"replay file {path.name} is not named BASE_QUOTE-5m.csv or BASE_QUOTE-...-trades.csv"
        )
    base, quote, rest = match["base"].upper(), match["quote"].upper(), match["rest"]
    symbol = check_symbol(base + quote)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = tuple(h.strip().lower() for h in next(reader, ()))
        if header[: len(CANDLE_COLUMNS)] == CANDLE_COLUMNS:
            interval_s = parse_interval(rest.split("-")[0])
            replay = ReplayFile(path, symbol, base, quote, "candles", interval_s, [])
            _read_candles(reader, replay, interval_s)
        elif header[: len(TRADE_COLUMNS)] == TRADE_COLUMNS:
            replay = ReplayFile(path, symbol, base, quote, "trades", None, [])
            _read_trades(reader, replay)
        else:
            raise DataSourceError(
                f"replay file {path.name} has columns {', '.join(header) or 'none'}; expected "
                f"{', '.join(CANDLE_COLUMNS)} or {', '.join(TRADE_COLUMNS)}"
            )
    if not replay.events:
        raise DataSourceError(f"replay file {path.name} holds no valid rows")
    replay.events.sort(key=lambda e: e.ts)
    return replay


def _read_candles(reader: Iterable[list[str]], replay: ReplayFile, interval_s: int) -> None:
    step = timedelta(seconds=interval_s)
    seen: set[int] = set()
    decimals = 0
    for line, row in enumerate(reader, start=2):
        try:
            if len(row) < 6:
                raise InvalidEventError(f"expected 6 columns, got {len(row)}", "short_row")
            open_ms = int(row[0])
            if open_ms in seen:
                raise InvalidEventError(f"duplicate candle at {open_ms}", "duplicate")
            o, h, lo, c = (clean_decimal(row[i], n) for i, n in enumerate(CANDLE_COLUMNS[1:5], 1))
            open_time = datetime.fromtimestamp(open_ms / 1000, tz=UTC)
            candle = Candle(
                event_id=f"{replay.symbol}-{interval_s}s-{open_ms}",
                ts=open_time + step,
                cause_id=None,
                symbol=replay.symbol,
                open_time=open_time,
                interval_s=interval_s,
                open=o,
                high=h,
                low=lo,
                close=c,
                volume=clean_decimal(row[5], "volume"),
            )
        except (InvalidEventError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, InvalidEventError) else "not_a_number"
            replay.rejected.append(Rejected(str(replay.path), line, f"{reason}: {exc}"))
            continue
        seen.add(open_ms)
        decimals = max(decimals, _decimals(o), _decimals(h), _decimals(lo), _decimals(c))
        replay.events.append(candle)
    replay.price_decimals = decimals


def _read_trades(reader: Iterable[list[str]], replay: ReplayFile) -> None:
    seen: set[str] = set()
    decimals = 0
    for line, row in enumerate(reader, start=2):
        try:
            if len(row) < 5:
                raise InvalidEventError(f"expected 5 columns, got {len(row)}", "short_row")
            trade_id = row[1].strip()
            if not trade_id or trade_id in seen:
                raise InvalidEventError(f"missing or duplicate trade id {trade_id!r}", "duplicate")
            price = clean_decimal(row[3], "price")
            trade = Trade(
                event_id=f"{replay.symbol}-t{trade_id}",
                ts=datetime.fromtimestamp(int(row[0]) / 1000, tz=UTC),
                cause_id=None,
                symbol=replay.symbol,
                price=price,
                qty=clean_decimal(row[4], "amount"),
                side=parse_enum(Side, row[2], "side"),
                trade_id=trade_id,
            )
        except (InvalidEventError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, InvalidEventError) else "not_a_number"
            replay.rejected.append(Rejected(str(replay.path), line, f"{reason}: {exc}"))
            continue
        seen.add(trade_id)
        decimals = max(decimals, _decimals(price))
        replay.events.append(trade)
    replay.price_decimals = decimals


@dataclass(slots=True)
class ReplayPlan:
    """Which files, which window, and the specs derived from the data."""

    files: list[ReplayFile]
    start: datetime
    end: datetime | None

    @property
    def quote(self) -> str:
        return self.files[0].quote

    @property
    def rejected(self) -> list[Rejected]:
        return [r for f in self.files for r in f.rejected]

    def symbol_specs(
        self, maker_fee: Decimal, taker_fee: Decimal, lot_size: Decimal
    ) -> dict[str, SymbolSpec]:
        """Tick size from the finest price step in the data; fees and lot from settings."""
        specs: dict[str, SymbolSpec] = {}
        for f in self.files:
            tick = Decimal(1).scaleb(-min(max(f.price_decimals, 2), 15))
            specs[f.symbol] = SymbolSpec(
                symbol=f.symbol,
                base=f.base,
                quote=f.quote,
                tick_size=tick,
                lot_size=lot_size,
                maker_fee=maker_fee,
                taker_fee=taker_fee,
            )
        return specs

    def events(self) -> Iterator[MarketEvent]:
        """Every event in the window, merged by (time, symbol) so ties replay the same way."""
        streams = [_window(f, self.start, self.end) for f in self.files]
        yield from heapq.merge(*streams, key=lambda e: (e.ts, e.symbol))


def _window(f: ReplayFile, start: datetime, end: datetime | None) -> Iterator[MarketEvent]:
    for event in f.events:
        at = event.open_time if isinstance(event, Candle) else event.ts
        if at < start:
            continue
        if end is not None and at >= end:
            break
        yield event


def plan_replay(paths: Iterable[Path | str], days: float | None = None) -> ReplayPlan:
    """Load files; the window starts at the first time every file has data."""
    files = [load_file(p) for p in paths]
    if not files:
        raise DataSourceError("no replay file given; pass --replay FILE at least once")
    symbols = [f.symbol for f in files]
    if len(set(symbols)) != len(symbols):
        raise DataSourceError(f"a symbol is given twice among {', '.join(symbols)}")
    quotes = {f.quote for f in files}
    if len(quotes) > 1:
        raise DataSourceError(
            f"replay files are quoted in {', '.join(sorted(quotes))}; one run values everything "
            "in one quote currency, so replay symbols with the same quote"
        )
    start = max(f.first_time for f in files)
    if days is not None and days <= 0:
        raise DataSourceError(f"--days must be positive, got {days}")
    end = start + timedelta(days=days) if days is not None else None
    return ReplayPlan(files, start, end)


def parse_speed(text: str) -> float | None:
    """`max` (None: no pacing), `1x`, `60x` or a bare number."""
    value = text.strip().lower()
    if value == "max":
        return None
    try:
        factor = float(value.removesuffix("x"))
    except ValueError:
        raise DataSourceError(f"speed {text!r} is not like 1x, 60x or max") from None
    if not factor > 0 or factor == float("inf"):
        raise DataSourceError(f"speed {text!r} must be a positive factor like 60x")
    return factor


def paced(
    events: Iterable[MarketEvent],
    speed: float | None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[MarketEvent]:
    """Yield events no faster than `speed` times event time (all at once for max)."""
    if speed is None:
        yield from events
        return
    first_ts: datetime | None = None
    started = monotonic()
    for event in events:
        if first_ts is None:
            first_ts = event.ts
        due = (event.ts - first_ts).total_seconds() / speed
        wait = due - (monotonic() - started)
        if wait > 0:
            sleep(wait)
        yield event
