"""Replay of recorded market data: which files, which window, and the events in time order.

Files are read lazily (see `recorded.py`) and merged by event time, so memory
stays bounded by the strategy's indicators whatever the size of the files, and
a 7-day window of a large file costs what 7 days cost: nothing after the
window's end is read. The window starts at the first time every file has data.

Planning scans each file once up to the window's end: it finds the refused rows
(kept in detail up to a limit, counted in full) and the finest price step, from
which the tick size comes. A small window (up to MAX_CACHED_EVENTS events in
all, such as 7 days of 5-minute candles) is kept from that scan; a larger one
is read again, lazily, by `ReplayPlan.events()`.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Final

from engine.config import Settings
from engine.contracts import ContractTerms
from engine.errors import DataSourceError
from engine.events import Candle, MarketEvent
from engine.feeds.perpetual import PerpetualReplay, load_perpetual
from engine.feeds.recorded import (
    CANDLE_COLUMNS,
    TRADE_COLUMNS,
    RecordedFile,
    Rejected,
    clean_decimal,
    parse_interval,
)
from engine.limits import check_days
from engine.markets import SymbolSpec

log = logging.getLogger("claire.replay")

# Refused rows kept in detail per file (all are counted); the rest are only counted.
MAX_REJECTED_DETAILS: Final = 1000
# Refused rows logged as warnings per file; the rest at debug level.
MAX_REJECTED_LOGGED: Final = 10
# Window events kept in memory from the planning scan (about 1 KB each); beyond this
# the window is read a second time instead.
MAX_CACHED_EVENTS: Final = 50_000
MIN_SPEED: Final = 0.01
MAX_SPEED: Final = 10_000_000.0


@dataclass(slots=True)
class Refusals:
    """Refused rows of one file: the first ones in detail, all of them counted by reason."""

    details: list[Rejected] = field(default_factory=list)
    by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return sum(self.by_reason.values())

    def add(self, rejected: Rejected) -> None:
        self.by_reason[rejected.code] += 1
        if len(self.details) < MAX_REJECTED_DETAILS:
            self.details.append(rejected)


@dataclass(slots=True)
class ReplayFile:
    """One recorded file with everything in it, for tools and tests (see `load_file`)."""

    path: Path
    symbol: str
    base: str
    quote: str
    kind: str
    interval_s: int | None
    events: list[MarketEvent]
    rejected: list[Rejected] = field(default_factory=list)
    price_decimals: int = 0

    @property
    def first_time(self) -> datetime:
        return RecordedFile.time_of(self.events[0])


def _decimals(value: Decimal) -> int:
    """Digits after the point: read from the plain text, which has exactly those."""
    text = str(value)
    if "E" in text:  # scientific notation: only an exponent tells
        exponent = value.as_tuple().exponent
        return -exponent if isinstance(exponent, int) and exponent < 0 else 0
    point = text.find(".")
    return len(text) - point - 1 if point >= 0 else 0


def _price_decimals(event: MarketEvent) -> int:
    if isinstance(event, Candle):
        return max(_decimals(event.open), _decimals(event.high), _decimals(event.low),
                   _decimals(event.close))  # fmt: skip
    return _decimals(event.price)


def load_file(path: Path | str, now: datetime | None = None) -> ReplayFile:
    """Read a whole file into memory (fine for small files; runs use `plan_replay`)."""
    recorded = RecordedFile.open(path, now)
    rejected: list[Rejected] = []
    events = list(recorded.events(rejected.append))
    if not events:
        raise DataSourceError(f"replay file {recorded.path.name} holds no valid rows")
    return ReplayFile(
        path=recorded.path,
        symbol=recorded.symbol,
        base=recorded.base,
        quote=recorded.quote,
        kind=recorded.kind,
        interval_s=recorded.interval_s,
        events=events,
        rejected=rejected,
        price_decimals=max(_price_decimals(e) for e in events),
    )


@dataclass(slots=True)
class PlannedFile:
    """A file of the plan and what scanning its window found."""

    source: RecordedFile
    first_time: datetime
    price_decimals: int = 0
    events_in_window: int = 0
    last_time: datetime | None = None  # of the window's last event
    refusals: Refusals = field(default_factory=Refusals)
    cached: list[MarketEvent] | None = None  # the window's events, when small enough

    @property
    def kind(self) -> str:
        return self.source.kind

    @property
    def interval_s(self) -> int | None:
        return self.source.interval_s

    @property
    def symbol(self) -> str:
        return self.source.symbol

    @property
    def base(self) -> str:
        return self.source.base

    @property
    def quote(self) -> str:
        return self.source.quote


@dataclass(slots=True)
class ReplayPlan:
    """Which files, which window, what was refused, and the specs derived from the data."""

    files: list[PlannedFile]
    start: datetime
    end: datetime | None
    perpetual: PerpetualReplay | None = None  # set when the symbols are perpetual futures

    @property
    def quote(self) -> str:
        return self.files[0].quote

    @property
    def rejected(self) -> list[Rejected]:
        """Refused rows in detail (up to MAX_REJECTED_DETAILS per file)."""
        extra = self.perpetual.refused if self.perpetual is not None else []
        return [r for f in self.files for r in f.refusals.details] + extra

    @property
    def rejected_count(self) -> int:
        """Every refused row, detailed or not."""
        extra = len(self.perpetual.refused) if self.perpetual is not None else 0
        return sum(f.refusals.count for f in self.files) + extra

    def perpetual_specs(self, settings: Settings) -> dict[str, SymbolSpec]:
        """The replayed perpetuals' contracts, from the settings (see docs/perpetuals.md)."""
        imr = settings.initial_margin_rate
        terms = ContractTerms(
            settle=self.quote,
            contract_size=settings.contract_size,
            maintenance_margin_rate=settings.maintenance_margin_rate,
            initial_margin_rate=imr,
            max_leverage=(1 / imr).to_integral_value(ROUND_FLOOR),
            min_funding_rate=settings.funding_min_rate,
            max_funding_rate=settings.funding_max_rate,
        )
        spot = self.symbol_specs(
            settings.futures_maker_fee_rate, settings.futures_taker_fee_rate, terms.contract_size
        )
        return {
            symbol: replace(spec, contract=terms, contract_size=terms.contract_size,
                            maintenance_margin_rate=terms.maintenance_margin_rate)
            for symbol, spec in spot.items()
        }  # fmt: skip

    def symbol_specs(
        self, maker_fee: Decimal, taker_fee: Decimal, lot_size: Decimal
    ) -> dict[str, SymbolSpec]:
        """Tick size from the finest price step in the window; fees and lot from settings."""
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
        """Every event in the window, read lazily and merged by (time, symbol).

        A perpetuals' replay adds mark prices and funding settlements, after the
        market events of the same time.
        """
        streams = [self.file_events(f) for f in self.files]
        merged = heapq.merge(*streams, key=lambda e: (e.ts, e.symbol))
        if self.perpetual is None:
            yield from merged
            return
        last = self.last_time
        if last is None:
            return
        extra = self.perpetual.events(self.start, last + timedelta(microseconds=1))
        ranked = heapq.merge(
            ((e.ts, 0, n, e) for n, e in enumerate(merged)),
            ((e.ts, 1, n, e) for n, e in enumerate(extra)),
        )
        for _, _, _, event in ranked:
            yield event  # type: ignore[misc]

    def file_events(self, planned: PlannedFile) -> Iterator[MarketEvent]:
        """One file's events in the window, read lazily."""
        if planned.cached is not None:
            return iter(planned.cached)
        return _window(planned.source, self.start, self.end)

    @property
    def last_time(self) -> datetime | None:
        """The time of the window's last event."""
        times = [f.last_time for f in self.files if f.last_time is not None]
        return max(times) if times else None


def _window(
    source: RecordedFile,
    start: datetime,
    end: datetime | None,
    on_reject: Callable[[Rejected], None] | None = None,
) -> Iterator[MarketEvent]:
    time_of = RecordedFile.time_of
    for event in source.events(on_reject):
        at = time_of(event)
        if end is not None and at >= end:
            return  # rows come in time order: nothing later belongs to the window
        if at >= start:
            yield event


def _first_time(source: RecordedFile) -> datetime:
    for event in source.events():
        return RecordedFile.time_of(event)
    raise DataSourceError(f"replay file {source.path.name} holds no valid rows")


def _scan(planned: PlannedFile, start: datetime, end: datetime | None, budget: int) -> int:
    """Read the file up to the window's end: refused rows, events, finest price step.

    Keeps the window's events if there are at most `budget`; returns how many it kept.
    """
    decimals = 0
    count = 0
    kept: list[MarketEvent] | None = []
    for event in _window(planned.source, start, end, planned.refusals.add):
        decimals = max(decimals, _price_decimals(event))
        count += 1
        planned.last_time = event.ts
        if kept is not None:
            if count > budget:
                kept = None  # too many: the run reads the window again
            else:
                kept.append(event)
    planned.price_decimals = decimals
    planned.events_in_window = count
    planned.cached = kept
    return len(kept) if kept is not None else 0


# Within `sharing_plans()`: the last plan made, for the next call with the same files
# and window (a start's preflight check and then its run plan the same replay). A
# context variable, so starts in several threads at once never see each other's.
_kept: ContextVar[list[tuple[tuple[object, ...], ReplayPlan]] | None] = ContextVar(
    "replay_plans_kept", default=None
)


@contextmanager
def sharing_plans() -> Iterator[None]:
    """Within this, a plan is made once for the same files (unchanged on disk) and window,
    when it does not depend on the wall clock (its window ended before now)."""
    token = _kept.set([])
    try:
        yield
    finally:
        _kept.reset(token)


def _plan_key(paths: list[Path], days: float | None) -> tuple[object, ...] | None:
    """The files as they are on disk (path, size, modification time) and the window."""
    try:
        stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    except OSError:
        return None
    return (*stats, days)


def plan_replay(
    paths: Iterable[Path | str],
    days: float | None = None,
    now: datetime | None = None,
    perpetual: PerpetualFiles | None = None,
) -> ReplayPlan:
    """Open files and plan the window: from the first time every file has data, `days` long.

    `now` (default: the wall clock) only decides which rows lie in the future.
    `perpetual` makes the symbols perpetual futures, with their mark-price and funding
    files (given, or found beside the candle files).

    Within `sharing_plans()`, a plan whose window ended before `now` (so `now` plays
    no part in it) is kept for the next call with the same files, unchanged on disk.
    """
    files = [Path(p) for p in paths]
    kept = _kept.get()
    key = _plan_key(files, days) if kept is not None and perpetual is None else None
    if kept is not None and kept and kept[0][0] == key:
        return kept.pop()[1]
    plan = _plan(files, days, now, perpetual)
    if kept is not None and key is not None:
        kept.clear()
        if plan.end is not None and plan.end <= (now or datetime.now(UTC)):
            kept.append((key, plan))
    return plan


def _plan(
    paths: list[Path], days: float | None, now: datetime | None, perpetual: PerpetualFiles | None
) -> ReplayPlan:
    check_days(days)
    sources = [RecordedFile.open(p, now) for p in paths]
    if not sources:
        raise DataSourceError("no replay file given; pass --replay FILE at least once")
    symbols = [s.symbol for s in sources]
    if len(set(symbols)) != len(symbols):
        raise DataSourceError(f"a symbol is given twice among {', '.join(symbols)}")
    quotes = {s.quote for s in sources}
    if len(quotes) > 1:
        raise DataSourceError(
            f"replay files are quoted in {', '.join(sorted(quotes))}; one run values everything "
            "in one quote currency, so replay symbols with the same quote"
        )
    files = [PlannedFile(s, _first_time(s)) for s in sources]
    start = max(f.first_time for f in files)
    end = start + timedelta(days=days) if days is not None else None
    budget = MAX_CACHED_EVENTS
    for planned in files:
        budget -= _scan(planned, start, end, budget)
    plan = ReplayPlan(files, start, end)
    if perpetual is not None:
        plan.perpetual = load_perpetual(
            [Path(p) for p in paths],
            symbols,
            list(perpetual.marks),
            list(perpetual.funding),
            perpetual.default_rate,
            now,
            find_beside=not perpetual.explicit,
        )
    return plan


@dataclass(frozen=True, slots=True)
class PerpetualFiles:
    """A perpetuals' replay: mark-price and funding files (empty: found beside)."""

    marks: tuple[Path, ...] = ()
    funding: tuple[Path, ...] = ()
    default_rate: Decimal = Decimal("0.0001")
    explicit: bool = False  # True: use exactly these files, even none (a resumed run)


def log_rejected(plan: ReplayPlan) -> None:
    """Say which rows were refused and why: the first few per file, then a count."""
    for planned in plan.files:
        refusals = planned.refusals
        name = planned.source.path.name
        for i, rejected in enumerate(refusals.details):
            level = logging.WARNING if i < MAX_REJECTED_LOGGED else logging.DEBUG
            log.log(
                level,
                "skipped line %d of %s: %s",
                rejected.line,
                name,
                rejected.reason,
                extra={
                    "event": "rejected_input",
                    "path": rejected.path,
                    "line": rejected.line,
                    "reason": rejected.reason,
                },
            )
        if refusals.count > MAX_REJECTED_LOGGED:
            reasons = ", ".join(f"{code} {n}" for code, n in sorted(refusals.by_reason.items()))
            log.warning(
                "%s: %d rows refused in all (%s); the run's report lists them",
                name,
                refusals.count,
                reasons,
                extra={"event": "rejected_input_total", "path": str(planned.source.path)},
            )


def parse_speed(text: str) -> float | None:
    """`max` (None: no pacing), `1x`, `60x` or a bare number, from 0.01x to 10,000,000x."""
    value = text.strip().lower()
    if value == "max":
        return None
    number = value.removesuffix("x")
    try:
        if not number.isascii() or "_" in number:
            raise ValueError(number)  # float() would read full-width digits and 1_0
        factor = float(number)
    except ValueError:
        raise DataSourceError(f"speed {text!r} is not like 1x, 60x or max") from None
    if not MIN_SPEED <= factor <= MAX_SPEED:  # also refuses nan and inf
        raise DataSourceError(
            f"speed {text!r} must be from {MIN_SPEED:g}x to {MAX_SPEED:,.0f}x, or max"
        )
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


__all__ = [
    "CANDLE_COLUMNS",
    "TRADE_COLUMNS",
    "PlannedFile",
    "RecordedFile",
    "Refusals",
    "Rejected",
    "ReplayFile",
    "ReplayPlan",
    "clean_decimal",
    "load_file",
    "log_rejected",
    "paced",
    "parse_interval",
    "parse_speed",
    "plan_replay",
]
