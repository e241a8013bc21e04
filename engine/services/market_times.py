"""A live feed's events cut into market times on the exchange's clock: pure logic, no I/O.

A market time closes at every `interval_ms` of exchange time (the multiples of the
interval since the epoch): it holds the events that arrived before it closed and
are stamped at or before its close, in the order they arrived. An event that
arrives after the market time of its stamp has closed (late) goes into the next
one. A boundary with nothing in it still closes, so the services hear the market's
time move at least every interval while it is quiet; when the exchange's clock jumps
by more than `MAX_QUIET_CLOSES` intervals at once (the feed was away, or its estimate
of that clock caught up), only the boundaries with events and the latest close.

Candles that end together close a market time of their own, at their end (or,
when that time has closed already, at the last close): the events due by then,
then the candles.

`PublishedMarks` remembers what was published last per symbol and kind, so a feed
started again after a crash publishes nothing at or before it a second time.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from engine.events import Candle, FundingSettlement, MarketData, Trade

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# When the exchange's clock jumps by more boundaries than this (a feed that was away,
# a clock estimate that caught up), only those with events and the latest close.
MAX_QUIET_CLOSES = 40


def to_ms(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True, slots=True)
class MarketTime:
    """The events of one market time, in order; its watermark is at `close_ms`."""

    events: tuple[MarketData, ...]
    close_ms: int

    @property
    def close(self) -> datetime:
        return from_ms(self.close_ms)


@dataclass
class MarketTimes:
    """Cuts events into market times; `closed_ms` is the last close (None before the first)."""

    interval_ms: int
    closed_ms: int | None = None
    _pending: list[tuple[int, MarketData]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.interval_ms <= 0:
            raise ValueError("the watermark interval must be positive")

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _boundary(self, ms: int) -> int:
        """The close of the market time an event stamped `ms` goes into."""
        step = self.interval_ms
        due = -(-ms // step) * step  # the first boundary at or after the stamp
        if self.closed_ms is not None and due <= self.closed_ms:
            due = (self.closed_ms // step + 1) * step  # late: the next one
        return due

    def tick(self, now_ms: int) -> list[MarketTime]:
        """The market times the exchange's clock at `now_ms` has closed."""
        step = self.interval_ms
        last = now_ms // step * step
        if self.closed_ms is not None and last <= self.closed_ms:
            return []
        due: dict[int, list[MarketData]] = {}
        keep: list[tuple[int, MarketData]] = []
        for ms, event in self._pending:
            b = self._boundary(ms)
            if b <= last:
                due.setdefault(b, []).append(event)
            else:
                keep.append((ms, event))
        self._pending = keep
        first = last if self.closed_ms is None else (self.closed_ms // step + 1) * step
        if (last - first) // step < MAX_QUIET_CLOSES:  # every boundary, empty or not
            for b in range(first, last + 1, step):
                due.setdefault(b, [])
        due.setdefault(last, [])
        self.closed_ms = last
        return [MarketTime(tuple(due[b]), b) for b in sorted(due)]

    def add(self, event: MarketData) -> list[MarketTime]:
        """An event arrived: what its stamp shows the exchange's clock closed before it."""
        ms = to_ms(event.ts)
        out = self.tick(ms - 1)
        self._pending.append((ms, event))
        return out

    def candles(self, candles: Sequence[Candle]) -> list[MarketTime]:
        """Candles that end together arrived: the market times before them, then theirs."""
        if not candles:
            return []
        end = to_ms(candles[0].ts)
        out = self.tick(end - 1)
        close = end if self.closed_ms is None else max(end, self.closed_ms)
        due = [e for ms, e in self._pending if ms <= close]
        self._pending = [(ms, e) for ms, e in self._pending if ms > close]
        out.append(MarketTime((*due, *candles), close))
        self.closed_ms = close
        return out


def mark_key(event: MarketData) -> str:
    kind = type(event).__name__.lower()
    return f"{event.symbol}|{kind}"


def trade_content(trade: Trade) -> str:
    """How the exchange feed keys a trade without an id: price, size and side."""
    return "|".join((str(trade.price.normalize()), str(trade.qty.normalize()), trade.side.value))


@dataclass(frozen=True)
class TradeResume:
    """Where a symbol's trades stopped: its feed continues from here, backfilling the gap."""

    last_ms: int
    last_id: int | None
    at_last_ms: Counter[tuple[str, str, str]]


@dataclass
class _Mark:
    ms: int
    ids: list[str] = field(default_factory=list)
    contents: dict[str, int] = field(default_factory=dict)  # trades: copies per content
    last_id: int | None = None  # trades: the highest numeric trade id

    def dump(self) -> str:
        return json.dumps(
            {"ms": self.ms, "ids": self.ids, "contents": self.contents, "last_id": self.last_id},
            separators=(",", ":"),
        )

    @classmethod
    def load(cls, text: str | bytes) -> _Mark:
        body = json.loads(text)
        last_id = body.get("last_id")
        return cls(
            int(body["ms"]),
            [str(i) for i in body.get("ids", [])],
            {str(k): int(v) for k, v in body.get("contents", {}).items()},
            None if last_id is None else int(last_id),
        )


class PublishedMarks:
    """The latest market time stamp published per symbol and kind, with the ids at it."""

    def __init__(self, saved: dict[str, str] | None = None) -> None:
        self._marks = {k: _Mark.load(v) for k, v in (saved or {}).items()}

    def fresh(self, event: MarketData) -> bool:
        """Not published yet: stamped after the mark, or at it under another id."""
        if isinstance(event, FundingSettlement):
            return True  # derived from the watermarks' time, which continues after them
        mark = self._marks.get(mark_key(event))
        if mark is None:
            return True
        ms = to_ms(event.ts)
        return ms > mark.ms or (ms == mark.ms and event.event_id not in mark.ids)

    def note(self, events: Iterable[MarketData]) -> dict[str, str]:
        """Remember `events` as published; the marks that changed, to store with them."""
        changed: set[str] = set()
        for event in events:
            if isinstance(event, FundingSettlement):
                continue
            key, ms = mark_key(event), to_ms(event.ts)
            mark = self._marks.get(key)
            if mark is None or ms > mark.ms:
                mark = self._marks[key] = _Mark(ms)
            elif ms < mark.ms:
                continue  # a late event: the mark stays at the latest stamp
            mark.ids.append(event.event_id)
            if isinstance(event, Trade):
                content = trade_content(event)
                mark.contents[content] = mark.contents.get(content, 0) + 1
                if event.trade_id.isdigit():
                    mark.last_id = max(int(event.trade_id), mark.last_id or 0)
            changed.add(key)
        return {k: self._marks[k].dump() for k in sorted(changed)}

    def trades_of(self, symbol: str) -> TradeResume | None:
        """Where `symbol`'s published trades stopped, if any were published."""
        mark = self._marks.get(f"{symbol}|trade")
        if mark is None:
            return None
        counts: Counter[tuple[str, str, str]] = Counter()
        for content, n in mark.contents.items():
            price, qty, side = content.split("|")
            counts[(price, qty, side)] = n
        return TradeResume(mark.ms, mark.last_id, counts)
