"""One recorded market-data file, read lazily, one line at a time.

Files are `BASE_QUOTE-<interval>.csv` with candles (open_time, open, high, low,
close, volume; times in ms UTC) or `BASE_QUOTE-...-trades.csv` with trades
(time_ms, trade_id, side, price, amount), in time order. `events()` parses a
line only when the next event is wanted, so memory stays flat whatever the size
of the file, and a caller that stops early reads no further.

A row that cannot be real market data is refused, with its line and reason,
and the rest of the file is kept:

- not UTF-8 text, over 4 KiB, too few columns, a field that is not a number;
- a time before 2009-01-03 (no crypto market is older) or in the future;
- a price outside 1e-12 .. 1e12, a volume outside 1e-18 .. 1e18 (zero is fine),
  zero or negative prices, negative volumes,
  an open or close outside the candle's low-high range;
- a duplicate, or a row earlier than the one before it. A single row whose time
  is later than the rows around it is refused without losing the rows after it.

A file that cannot be read at all (missing, binary, an unknown header or name,
an impossible interval such as `0m` or `5000w`) is one `DataSourceError`.
"""

from __future__ import annotations

import csv
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, DecimalException, Overflow
from itertools import islice, pairwise
from pathlib import Path
from typing import BinaryIO, Final

from engine.errors import DataSourceError, InvalidEventError
from engine.events import Candle, MarketEvent, Side, Trade, check_symbol, parse_enum

CANDLE_COLUMNS: Final = ("open_time", "open", "high", "low", "close", "volume")
TRADE_COLUMNS: Final = ("time_ms", "trade_id", "side", "price", "amount")

EARLIEST: Final = datetime(2009, 1, 3, tzinfo=UTC)  # the first Bitcoin block
FUTURE_MARGIN: Final = timedelta(days=1)  # clocks differ; a day ahead is surely wrong
MIN_PRICE: Final = Decimal("1e-12")
MAX_PRICE: Final = Decimal("1e12")
MIN_SIZE: Final = Decimal("1e-18")  # a positive volume below this is float noise, not trade
MAX_SIZE: Final = Decimal("1e18")
MIN_INTERVAL_S: Final = 1
MAX_INTERVAL_S: Final = 31 * 86400  # a month: the longest candle an exchange serves
MAX_LINE_BYTES: Final = 4096
MAX_REASON_CHARS: Final = 200
SPACING_SAMPLE: Final = 20  # the first gaps between candles that tell a file's spacing
RECENT_TRADE_IDS: Final = 20_000  # duplicates of trade ids are looked for among these

_NAME: Final = re.compile(r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)-(?P<rest>.+)$")
_INTERVAL: Final = re.compile(r"^(?P<n>\d{1,9})(?P<unit>[smhdw])$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# Recorded files often hold binary floats written as text (5.330000000000001e-05):
# their last digits are conversion noise, so values keep 15 significant digits.
_FLOAT_DIGITS: Final = Context(prec=15)
_WIDE: Final = Context(prec=60)
# Digits with at most one point inside them: with 15 digits at most, nothing to round.
_PLAIN_NUMBER: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Rejected:
    path: str
    line: int
    reason: str  # "code: explanation", like "not_finite: open 'nan' is not finite"

    @property
    def code(self) -> str:
        return self.reason.split(":", 1)[0]


OnReject = Callable[[Rejected], None]


def _shown(text: str) -> str:
    """A field as it may appear in a reason: quoted, escaped and short."""
    return repr(text[:40] + "..." if len(text) > 40 else text)


def clean_decimal(text: str, name: str) -> Decimal:
    """A finite Decimal with float noise removed; InvalidEventError for anything else."""
    plain = text.strip()
    if len(plain) - plain.count(".") <= 15 and _PLAIN_NUMBER.fullmatch(plain):
        # Most rows: at most 15 digits, so nothing to round; only trailing zeros go.
        if "." in plain:
            plain = plain.rstrip("0").rstrip(".")
        return Decimal(plain)
    return _cleaned(text, name)


def _cleaned(text: str, name: str) -> Decimal:
    """`clean_decimal` for any text: rounded to 15 digits, range-checked, normalized."""
    try:
        value = _FLOAT_DIGITS.create_decimal(text.strip())
    except Overflow:
        raise InvalidEventError(f"{name} {_shown(text)} is out of range", "out_of_range") from None
    except (DecimalException, ValueError):
        raise InvalidEventError(f"{name} {_shown(text)} is not a number", "not_a_number") from None
    if not value.is_finite():
        raise InvalidEventError(f"{name} {_shown(text)} is not finite", "not_finite")
    if value and not -40 <= value.adjusted() <= 40:
        raise InvalidEventError(f"{name} {_shown(text)} is out of range", "out_of_range")
    normal = value.normalize(_FLOAT_DIGITS)
    # normalize() turns 100 into 1E+2 (a positive exponent is always shown as "E+");
    # keep plain integers plain.
    if "E+" in str(normal):
        normal = normal.quantize(Decimal(1), context=_WIDE)
    return normal


def parse_interval(text: str) -> int:
    """Seconds of an interval like 5m, 1h or 1d, from one second up to 31 days."""
    match = _INTERVAL.match(text)
    if not match:
        raise DataSourceError(f"interval {text!r} is not like 5m, 1h or 1d")
    seconds = int(match["n"]) * _UNIT_SECONDS[match["unit"]]
    if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
        raise DataSourceError(
            f"interval {text!r} is not a real candle length; use one from 1s to 31d, like 5m"
        )
    return seconds


def _price(text: str, name: str) -> Decimal:
    value = clean_decimal(text, name)
    if value > 0 and not MIN_PRICE <= value <= MAX_PRICE:
        raise InvalidEventError(
            f"{name} {value} is outside {MIN_PRICE} .. {MAX_PRICE}, not a real price",
            "out_of_range",
        )
    return value  # zero and negative values are refused by the event itself


def _size(text: str, name: str) -> Decimal:
    value = clean_decimal(text, name)
    if value > 0 and not MIN_SIZE <= value <= MAX_SIZE:
        raise InvalidEventError(
            f"{name} {value} is outside {MIN_SIZE} .. {MAX_SIZE}, not a real volume",
            "out_of_range",
        )
    return value  # a negative volume is refused by the event itself


def _time_ms(text: str, name: str, latest_ms: int) -> int:
    """Epoch milliseconds of a time field, refused when no market could have produced it."""
    try:
        ms = int(text)
    except ValueError:
        raise InvalidEventError(
            f"{name} {_shown(text)} is not a whole number of milliseconds", "not_a_number"
        ) from None
    if ms < _EARLIEST_MS:
        raise InvalidEventError(
            f"{name} {ms} is before {EARLIEST:%Y-%m-%d}, older than any crypto market", "bad_time"
        )
    if ms > latest_ms:
        raise InvalidEventError(f"{name} {ms} is in the future", "bad_time")
    return ms


def _ignore(rejected: Rejected) -> None:
    """Refused rows of a look ahead: `events()` reports them when it reads them."""


def _span(gap: timedelta) -> str:
    """A gap in words: 5 minutes, 1 hour, 90 seconds."""
    seconds = int(gap.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("s" if count != 1 else "")
    return f"{seconds} second" + ("s" if seconds != 1 else "")


def _utc(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


_EARLIEST_MS: Final = int((EARLIEST - _EPOCH).total_seconds() * 1000)


def _fields(text: str) -> list[str]:
    if '"' in text:
        return next(csv.reader([text]), [])
    return text.split(",")


def _read_line(handle: BinaryIO) -> bytes | None:
    """The next line; b"" at the end; None for a line too long (skipped to its end)."""
    raw = handle.readline(MAX_LINE_BYTES + 1)
    if len(raw) <= MAX_LINE_BYTES or raw.endswith(b"\n"):
        return raw
    while True:
        more = handle.readline(64 * 1024)
        if not more or more.endswith(b"\n"):
            return None


@dataclass(frozen=True, slots=True)
class RecordedFile:
    """A readable recorded file: its symbol, kind and interval; events on demand."""

    path: Path
    symbol: str
    base: str
    quote: str
    kind: str  # "candles" or "trades"
    interval_s: int | None
    latest: datetime  # rows after this are in the future

    @classmethod
    def open(cls, path: Path | str, now: datetime | None = None) -> RecordedFile:
        """Check the name and header; one DataSourceError when the file cannot be used."""
        path = Path(path)
        if not path.exists():
            raise DataSourceError(f"replay file {path} does not exist; check the path")
        if not path.is_file():  # follows links; true only for a regular file
            raise DataSourceError(
                f"replay file {path} is not a regular file (a folder, a device or a pipe); "
                "give a CSV file of recorded market data"
            )
        match = _NAME.match(path.stem)
        if not match:
            raise DataSourceError(
                f"replay file {path.name} is not named BASE_QUOTE-5m.csv or "
                "BASE_QUOTE-...-trades.csv"
            )
        base, quote, rest = match["base"].upper(), match["quote"].upper(), match["rest"]
        if base == quote:
            raise DataSourceError(
                f"replay file {path.name} trades {base} against itself; a market needs two "
                "different assets, like ETH_BTC-5m.csv"
            )
        try:
            symbol = check_symbol(base + quote)
        except InvalidEventError as exc:
            raise DataSourceError(f"replay file {path.name}: {exc}") from None
        header = _header(path)
        latest = (now or datetime.now(UTC)) + FUTURE_MARGIN
        if header[: len(CANDLE_COLUMNS)] == CANDLE_COLUMNS:
            try:
                interval_s = parse_interval(rest.split("-")[0])
            except DataSourceError as exc:
                raise DataSourceError(f"replay file {path.name}: {exc}") from None
            recorded = cls(path, symbol, base, quote, "candles", interval_s, latest)
            recorded._check_spacing()
            return recorded
        if header[: len(TRADE_COLUMNS)] == TRADE_COLUMNS:
            return cls(path, symbol, base, quote, "trades", None, latest)
        raise DataSourceError(
            f"replay file {path.name} has columns {', '.join(header) or 'none'}; expected "
            f"{', '.join(CANDLE_COLUMNS)} or {', '.join(TRADE_COLUMNS)}"
        )

    @staticmethod
    def time_of(event: MarketEvent) -> datetime:
        """The time a row is ordered and windowed by: a candle's open, a trade's time."""
        return event.open_time if isinstance(event, Candle) else event.ts

    def events(self, on_reject: OnReject | None = None) -> Iterator[MarketEvent]:
        """Valid events in time order; each refused row goes to `on_reject`."""
        reject = on_reject or (lambda rejected: None)
        with self.path.open("rb") as handle:
            handle.readline(MAX_LINE_BYTES + 1)  # the header, checked by open()
            rows = self._parsed(handle, reject)
            ordered = self._in_time_order(rows, reject)
            if self.kind == "candles":
                ordered = self._spaced(ordered, reject)
            for _line, event in ordered:
                yield event

    def _spaced(
        self, rows: Iterator[tuple[int, MarketEvent]], reject: OnReject
    ) -> Iterator[tuple[int, MarketEvent]]:
        """Candles at least their interval apart; a file whose rows are closer lies.

        `open()` refuses a file whose first gaps are below the interval in its name
        (see `_check_spacing`); here a single row closer than the interval to the one
        before is refused.
        Gaps larger than the interval are real (a quiet market, an outage).
        """
        assert self.interval_s is not None
        interval = timedelta(seconds=self.interval_s)
        path = str(self.path)
        last: datetime | None = None
        for line, event in rows:
            at = self.time_of(event)
            if last is not None and at - last < interval:
                reject(
                    Rejected(
                        path,
                        line,
                        f"too_close: {at.isoformat()} is {_span(at - last)} after the row "
                        f"before; this file's candles are {_span(interval)} apart",
                    )
                )
                continue
            last = at
            yield line, event

    def _check_spacing(self) -> None:
        """The median of the first SPACING_SAMPLE gaps must not be below the interval."""
        assert self.interval_s is not None
        with self.path.open("rb") as handle:
            handle.readline(MAX_LINE_BYTES + 1)
            ordered = self._in_time_order(self._parsed(handle, _ignore), _ignore)
            times = [self.time_of(event) for _, event in islice(ordered, SPACING_SAMPLE + 1)]
        gaps = [b - a for a, b in pairwise(times)]
        if not gaps:
            return
        spacing = sorted(gaps)[len(gaps) // 2]
        interval = timedelta(seconds=self.interval_s)
        if spacing < interval:
            raise DataSourceError(
                f"replay file {self.path.name} is named for candles {_span(interval)} apart but "
                f"its rows are {_span(spacing)} apart; rename it for the rows' interval or give "
                f"it candles {_span(interval)} apart"
            )

    # --- parsing ----------------------------------------------------------------

    def _parsed(self, handle: BinaryIO, reject: OnReject) -> Iterator[tuple[int, MarketEvent]]:
        path = str(self.path)
        latest_ms = int((self.latest - _EPOCH).total_seconds() * 1000)
        parse = self._candle if self.kind == "candles" else self._trade
        line = 1
        while True:
            raw = _read_line(handle)
            if raw == b"":
                return
            line += 1
            try:
                if raw is None:
                    raise InvalidEventError(
                        f"the line is longer than {MAX_LINE_BYTES} bytes", "line_too_long"
                    )
                try:
                    text = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    raise InvalidEventError("the line is not UTF-8 text", "not_utf8") from None
                if not text.strip():
                    continue  # a blank line holds no row
                yield line, parse(_fields(text), latest_ms)
            except InvalidEventError as exc:
                reject(Rejected(path, line, f"{exc.reason}: {exc}"[:MAX_REASON_CHARS]))

    def _candle(self, row: list[str], latest_ms: int) -> Candle:
        if len(row) < len(CANDLE_COLUMNS):
            raise InvalidEventError(f"expected 6 columns, got {len(row)}", "short_row")
        assert self.interval_s is not None
        open_ms = _time_ms(row[0], "open_time", latest_ms)
        open_time = _utc(open_ms)
        return Candle(
            event_id=f"{self.symbol}-{self.interval_s}s-{open_ms}",
            ts=open_time + timedelta(seconds=self.interval_s),
            cause_id=None,
            symbol=self.symbol,
            open_time=open_time,
            interval_s=self.interval_s,
            open=_price(row[1], "open"),
            high=_price(row[2], "high"),
            low=_price(row[3], "low"),
            close=_price(row[4], "close"),
            volume=_size(row[5], "volume"),
        )

    def _trade(self, row: list[str], latest_ms: int) -> Trade:
        if len(row) < len(TRADE_COLUMNS):
            raise InvalidEventError(f"expected 5 columns, got {len(row)}", "short_row")
        trade_id = row[1].strip()
        if not trade_id:
            raise InvalidEventError("the trade id is missing", "missing_id")
        return Trade(
            event_id=f"{self.symbol}-t{trade_id}",
            ts=_utc(_time_ms(row[0], "time_ms", latest_ms)),
            cause_id=None,
            symbol=self.symbol,
            price=_price(row[3], "price"),
            qty=_size(row[4], "amount"),
            side=parse_enum(Side, row[2], "side"),
            trade_id=trade_id,
        )

    # --- order ------------------------------------------------------------------

    def _in_time_order(
        self, rows: Iterator[tuple[int, MarketEvent]], reject: OnReject
    ) -> Iterator[tuple[int, MarketEvent]]:
        """Keep rows in time order; hold one row back to tell a lone outlier from the rest.

        Candles must move strictly forward, trades may share a millisecond. A row
        that is not after the last kept one is refused; but when the row held back
        turns out to be later than both its neighbours, it is the one refused.
        """
        path = str(self.path)
        strict = self.kind == "candles"
        recent = _RecentIds() if self.kind == "trades" else None
        time_of = self.time_of

        def after(t: datetime, ref: datetime) -> bool:
            return t > ref if strict else t >= ref

        def refuse(line: int, t: datetime, *kept: datetime | None) -> None:
            if t in kept:
                reason = f"duplicate: another row has the same time {t.isoformat()}"
            else:
                latest = max(k for k in kept if k is not None)
                reason = f"out_of_order: {t.isoformat()} is earlier than {latest.isoformat()}"
            reject(Rejected(path, line, reason))

        last: datetime | None = None  # time of the last row handed out
        held: tuple[int, MarketEvent, datetime] | None = None
        for line, event in rows:
            at = time_of(event)
            if recent is not None and event.event_id in recent:
                reject(Rejected(path, line, f"duplicate: trade id {event.event_id} again"))
                continue
            if held is None:
                if last is None or after(at, last):
                    held = (line, event, at)
                    if recent is not None:
                        recent.add(event.event_id)
                else:
                    refuse(line, at, last)
                continue
            held_line, held_event, held_at = held
            if after(at, held_at):
                yield held_line, held_event
                last = held_at
            elif last is not None and after(at, last) and at < held_at:
                reject(
                    Rejected(
                        path,
                        held_line,
                        f"out_of_order: {held_at.isoformat()} is later than the rows around "
                        f"it (line {line} is {at.isoformat()})",
                    )
                )
                if recent is not None:
                    recent.discard_last()
            else:
                refuse(line, at, held_at, last)
                continue
            held = (line, event, at)
            if recent is not None:
                recent.add(event.event_id)
        if held is not None:
            yield held[0], held[1]


class _RecentIds:
    """The last RECENT_TRADE_IDS trade ids: bounded memory, whatever the file's size."""

    __slots__ = ("_ids", "_order")

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._order: deque[str] = deque()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids.add(event_id)
        self._order.append(event_id)
        if len(self._order) > RECENT_TRADE_IDS:
            self._ids.discard(self._order.popleft())

    def discard_last(self) -> None:
        self._ids.discard(self._order.pop())


def _header(path: Path) -> tuple[str, ...]:
    """The header's column names; one sentence if the file is not a text CSV file."""
    try:
        with path.open("rb") as handle:
            raw = handle.readline(MAX_LINE_BYTES + 1)
    except OSError as exc:
        raise DataSourceError(
            f"replay file {path} cannot be read ({exc.strerror}); check its permissions"
        ) from None
    binary = DataSourceError(
        f"replay file {path.name} is not a text CSV file (it holds binary data); give a CSV "
        "file with a header line such as open_time,open,high,low,close,volume"
    )
    if len(raw) > MAX_LINE_BYTES or b"\0" in raw:
        raise binary
    try:
        text = raw.decode("utf-8-sig").rstrip("\r\n")  # a byte-order mark is fine
    except UnicodeDecodeError:
        raise binary from None
    if not text.isprintable():
        raise binary
    return tuple(h.strip().lower() for h in _fields(text)) if text.strip() else ()


__all__ = [
    "CANDLE_COLUMNS",
    "TRADE_COLUMNS",
    "RecordedFile",
    "Rejected",
    "clean_decimal",
    "parse_interval",
]
