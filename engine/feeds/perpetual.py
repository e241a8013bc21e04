"""What a perpetual's replay adds to its trade candles: the mark price and funding.

- Mark price: a `BASE_QUOTE-<interval>-mark.csv` candle file (MEXC's fair-price
  klines). Each mark candle is walked like a traded candle (see
  `engine.maths.path`): its open at the bar's start, the two extremes at one and
  two thirds, and the last bar's close at its end, each a `MarkPrice` event at that
  time. Without a mark file the traded price is the fair price.
- Funding: a `BASE_QUOTE-<interval>-funding.csv` file with `time_ms,funding_rate`
  rows (MEXC's funding-rate history). Funding is settled every `interval_h` hours of
  UTC time (00:00, 08:00 and 16:00 for 8 hours) inside the replay window, each a
  `FundingSettlement` at exactly the settle time, at the rate the file has within a
  minute of that time, else at `FUNDING_DEFAULT_RATE`.

Files beside a perpetual's candle file are found by name; `--mark` and `--funding`
name others. Rows that cannot be real data are refused one by one, with a reason.
"""

from __future__ import annotations

import csv
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from engine.errors import DataSourceError, InvalidEventError
from engine.events import Candle, Event, FundingSettlement, MarkPrice, derive_id
from engine.feeds.recorded import _NAME, EARLIEST, RecordedFile, Rejected
from engine.maths.path import bar_path

FUNDING_COLUMNS = ("time_ms", "funding_rate")
MATCH_WINDOW = timedelta(minutes=1)  # a recorded rate belongs to the settlement this close
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def companions(candle_file: Path) -> tuple[Path | None, Path | None]:
    """The mark-price and funding files beside a perpetual's candle file, if any."""
    match = _NAME.match(candle_file.stem)
    if not match:
        return None, None
    prefix = f"{match['base']}_{match['quote']}-"
    folder = candle_file.parent
    marks = sorted(folder.glob(f"{prefix}*-mark.csv"))
    funding = sorted(folder.glob(f"{prefix}*-funding.csv"))
    return (marks[0] if marks else None), (funding[0] if funding else None)


Rates = list[tuple[datetime, Decimal]]


def read_funding(path: Path, latest: datetime) -> tuple[Rates, list[Rejected]]:
    """Recorded funding rates in time order, and the rows refused with their reason."""
    if not path.is_file():
        raise DataSourceError(f"funding file {path} does not exist; check the path")
    rates: Rates = []
    refused: list[Rejected] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = tuple(h.strip().lower() for h in next(reader, ()))
            if header[:2] != FUNDING_COLUMNS:
                raise DataSourceError(
                    f"funding file {path.name} has columns {', '.join(header) or 'none'}; "
                    f"expected {', '.join(FUNDING_COLUMNS)}"
                )
            for line, row in enumerate(reader, start=2):
                if not row or not "".join(row).strip():
                    continue
                try:
                    rates.append(_funding_row(row, latest))
                except InvalidEventError as exc:
                    refused.append(Rejected(str(path), line, f"{exc.reason}: {exc}"))
    except UnicodeDecodeError:
        raise DataSourceError(f"funding file {path.name} is not UTF-8 text") from None
    rates.sort()
    return rates, refused


def _funding_row(row: list[str], latest: datetime) -> tuple[datetime, Decimal]:
    if len(row) < 2:
        raise InvalidEventError(f"expected 2 columns, got {len(row)}", "short_row")
    try:
        ms = int(row[0].strip())
        rate = Decimal(row[1].strip())
    except (ValueError, InvalidOperation):
        raise InvalidEventError(f"{row[:2]!r} is not a time and a rate", "not_a_number") from None
    if not rate.is_finite() or abs(rate) >= 1:
        raise InvalidEventError(f"funding rate {row[1].strip()} is not a rate", "out_of_range")
    at = _EPOCH + timedelta(milliseconds=ms)
    if not EARLIEST <= at <= latest:
        raise InvalidEventError(f"time_ms {ms} is not a real market time", "bad_time")
    return at, rate


def settle_times(start: datetime, end: datetime, interval_h: int) -> Iterator[datetime]:
    """Settlement times in [start, end): every `interval_h` hours from 00:00 UTC."""
    step = timedelta(hours=interval_h)
    first = datetime.combine(start.date(), datetime.min.time(), UTC)
    while first < start:
        first += step
    at = first
    while at < end:
        yield at
        at += step


@dataclass(slots=True)
class PerpetualReplay:
    """The mark prices and funding settlements of the replayed perpetuals."""

    marks: dict[str, RecordedFile] = field(default_factory=dict)
    rates: dict[str, Rates] = field(default_factory=dict)
    symbols: tuple[str, ...] = ()
    default_rate: Decimal = Decimal("0.0001")
    interval_h: int = 8
    refused: list[Rejected] = field(default_factory=list)
    funding_files: list[Path] = field(default_factory=list)

    def events(self, start: datetime, end: datetime) -> Iterator[Event]:
        """Mark points and settlements in [start, end), in time order."""
        streams: list[Iterable[Event]] = [
            self._mark_points(symbol, source, start, end) for symbol, source in self.marks.items()
        ]
        streams += [self._settlements(symbol, start, end) for symbol in self.symbols]
        yield from heapq.merge(*streams, key=lambda e: (e.ts, _rank(e), getattr(e, "symbol", "")))

    def _mark_points(
        self, symbol: str, source: RecordedFile, start: datetime, end: datetime
    ) -> Iterator[MarkPrice]:
        last: Candle | None = None
        for event in source.events(self.refused.append):
            if not isinstance(event, Candle):
                continue
            for at, price in bar_path(event).points[:-1]:
                if start <= at < end:
                    yield MarkPrice(
                        derive_id("mark", symbol, at.isoformat()), at, None, symbol, price
                    )
            last = event
        if last is not None and start <= last.ts < end:
            yield MarkPrice(
                derive_id("mark", symbol, last.ts.isoformat()), last.ts, None, symbol, last.close
            )

    def _settlements(
        self, symbol: str, start: datetime, end: datetime
    ) -> Iterator[FundingSettlement]:
        recorded = self.rates.get(symbol, [])
        for at in settle_times(start, end, self.interval_h):
            near = [rate for t, rate in recorded if abs(t - at) <= MATCH_WINDOW]
            rate = near[0] if near else self.default_rate
            yield FundingSettlement(
                derive_id("settle", symbol, at.isoformat()), at, None, symbol, rate
            )


def _mark(symbol: str, at: datetime, price: Decimal) -> MarkPrice:
    return MarkPrice(derive_id("mark", symbol, at.isoformat()), at, None, symbol, price)


def _rank(event: Event) -> int:
    """At one time: the mark moves before funding is settled on it."""
    return 0 if isinstance(event, MarkPrice) else 1


def load_perpetual(
    candle_files: list[Path],
    symbols: list[str],
    mark_files: list[Path],
    funding_files: list[Path],
    default_rate: Decimal,
    now: datetime | None = None,
    find_beside: bool = True,
) -> PerpetualReplay:
    """Mark and funding files for the replayed perpetuals: given, else found beside them."""
    latest = (now or datetime.now(UTC)) + timedelta(days=1)
    marks = list(mark_files)
    funding = list(funding_files)
    if find_beside and not mark_files and not funding_files:
        for path in candle_files:
            mark_file, funding_file = companions(Path(path))
            marks += [mark_file] if mark_file else []
            funding += [funding_file] if funding_file else []
    replay = PerpetualReplay(symbols=tuple(symbols), default_rate=default_rate)
    for path in marks:
        source = RecordedFile.open(path, now)
        if source.kind != "candles":
            raise DataSourceError(f"mark-price file {Path(path).name} must hold candles")
        if source.symbol not in symbols:
            raise DataSourceError(
                f"mark-price file {Path(path).name} is for {source.symbol}, which is not replayed"
            )
        replay.marks[source.symbol] = source
    for path in funding:
        match = _NAME.match(Path(path).stem)
        symbol = f"{match['base']}{match['quote']}".upper() if match else ""
        if symbol not in symbols:
            raise DataSourceError(
                f"funding file {Path(path).name} must be named BASE_QUOTE-...-funding.csv "
                "for a replayed symbol"
            )
        rates, refused = read_funding(Path(path), latest)
        replay.rates[symbol] = rates
        replay.funding_files.append(Path(path))
        replay.refused += refused
    return replay
