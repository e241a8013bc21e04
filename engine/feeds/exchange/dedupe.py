"""Which trades are new: pure logic, no I/O.

After a reconnect, a backfill or an exchange re-send, the same trade can arrive
twice. With trade ids that is a set lookup. MEXC's futures deals (and older spot
pushes) carry no id, so they are keyed by content: (time, price, size, side) plus
the ordinal among identical trades in the same millisecond, because two real
trades can be identical. Each source of trades in order (one socket session,
one REST answer) is a `Delivery`; a trade is new once a delivery has shown more
copies of it than were already emitted.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from decimal import Decimal

from engine.events import Side


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One trade as parsed from the exchange, before it becomes an event."""

    time_ms: int
    price: Decimal  # exact, from the exchange's text
    qty: Decimal  # base units
    side: Side  # the taker's side
    trade_id: str | None

    @property
    def content(self) -> tuple[str, str, str]:
        # normalize() so "23.0" and "23" count as the same trade
        return (str(self.price.normalize()), str(self.qty.normalize()), self.side.value)


@dataclass(frozen=True, slots=True)
class Gap:
    """Trade ids strictly between `after_id` and `before_id` are missing."""

    after_id: int
    before_id: int
    after_ms: int


class TradeDeduper:
    """Per-symbol memory of emitted trades."""

    def __init__(self, window: int = 20_000) -> None:
        self._ids: set[str] = set()
        self._order: deque[str] = deque()
        self._window = window
        self.last_id: int | None = None  # highest numeric id emitted
        self.last_ms: int | None = None  # latest trade time emitted
        self._at_last_ms: Counter[tuple[str, str, str]] = Counter()
        self.duplicates = 0

    def delivery(self) -> Delivery:
        return Delivery(self)

    def resume(
        self, last_ms: int, last_id: int | None, at_last_ms: Counter[tuple[str, str, str]]
    ) -> None:
        """Continue after trades emitted elsewhere (an earlier process of the same feed)."""
        self.last_ms, self.last_id = last_ms, last_id
        self._at_last_ms = Counter(at_last_ms)

    def gap_before(self, record: TradeRecord) -> Gap | None:
        """A gap if `record` has a numeric id beyond the next expected one."""
        if self.last_id is None or record.trade_id is None or not record.trade_id.isdigit():
            return None
        trade_id = int(record.trade_id)
        if trade_id > self.last_id + 1:
            return Gap(self.last_id, trade_id, self.last_ms or 0)
        return None

    def _remember_id(self, key: str) -> None:
        self._ids.add(key)
        self._order.append(key)
        if len(self._order) > self._window:
            self._ids.discard(self._order.popleft())


class Delivery:
    """One ordered source of trades; `accept` returns the trade's key, or None if seen."""

    def __init__(self, dedupe: TradeDeduper) -> None:
        self._d = dedupe
        self._shown: Counter[tuple[int, tuple[str, str, str]]] = Counter()

    def accept(self, record: TradeRecord) -> str | None:
        d = self._d
        if record.trade_id is not None:
            key = f"id:{record.trade_id}"
            numeric = record.trade_id.isdigit()
            old_id = numeric and d.last_id is not None and int(record.trade_id) <= d.last_id
            if key in d._ids or old_id:
                d.duplicates += 1
                return None
            d._remember_id(key)
            if numeric:
                d.last_id = int(record.trade_id)
            self._advance_time(record)
            return key
        content = record.content
        shown = self._shown[(record.time_ms, content)] = self._shown[(record.time_ms, content)] + 1
        if d.last_ms is not None and (
            record.time_ms < d.last_ms
            or (record.time_ms == d.last_ms and shown <= d._at_last_ms[content])
        ):
            d.duplicates += 1
            return None
        self._advance_time(record)
        ordinal = d._at_last_ms[content]
        return f"c:{record.time_ms}|{'|'.join(content)}|{ordinal}"

    def _advance_time(self, record: TradeRecord) -> None:
        d = self._d
        if d.last_ms is None or record.time_ms > d.last_ms:
            d.last_ms = record.time_ms
            d._at_last_ms = Counter()
            # Counts for older milliseconds can no longer matter.
            self._shown = Counter({k: v for k, v in self._shown.items() if k[0] >= record.time_ms})
        if record.time_ms == d.last_ms:
            d._at_last_ms[record.content] += 1
