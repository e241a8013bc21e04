"""A single-process bus with the Redis Streams contract.

Delivery is synchronous and ordered, so a replay through it is deterministic.
Messages are kept until every group has acked them (or `trim` drops them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.bus.base import DEAD_LETTERS, Bus, DeadLetter, Delivery, Pending
from engine.errors import InvalidEventError
from engine.events import Event, from_json


@dataclass(slots=True)
class _PendingEntry:
    consumer: str
    delivered_at_ms: int
    times_delivered: int


@dataclass(slots=True)
class _Group:
    next_seq: int
    pending: dict[int, _PendingEntry] = field(default_factory=dict)


@dataclass(slots=True)
class _Stream:
    first_seq: int = 1  # sequence number of messages[0]
    next_seq: int = 1
    messages: list[Event | str | _Dead] = field(default_factory=list)
    groups: dict[str, _Group] = field(default_factory=dict)


class _Dead:
    """Marks a message that failed to decode, so other groups skip it without a second record."""

    __slots__ = ()


_DEAD = _Dead()


def _ms() -> int:
    return time.monotonic_ns() // 1_000_000


class InProcessBus(Bus):
    def __init__(self, now_ms: Callable[[], int] = _ms) -> None:
        self._streams: dict[str, _Stream] = {}
        self._now_ms = now_ms
        self._dead: list[DeadLetter] = []
        self.published = 0  # lets a dispatcher see whether a handler published anything

    def _stream(self, name: str) -> _Stream:
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = _Stream()
        return stream

    def publish(self, event: Event, stream: str | None = None) -> str:
        s = self._stream(stream or event.STREAM)
        seq = s.next_seq
        s.messages.append(event)
        s.next_seq = seq + 1
        self.published += 1
        return f"{seq}-0"

    def publish_raw(self, stream: str, payload: str) -> str:
        s = self._stream(stream)
        seq = s.next_seq
        s.messages.append(payload)
        s.next_seq = seq + 1
        self.published += 1
        return f"{seq}-0"

    def create_group(
        self, stream: str, group: str, start: Literal["first", "latest"] = "first"
    ) -> None:
        s = self._stream(stream)
        if group not in s.groups:
            s.groups[group] = _Group(next_seq=s.next_seq if start == "latest" else s.first_seq)

    def _group(self, stream: str, group: str) -> tuple[_Stream, _Group]:
        s = self._streams.get(stream)
        g = s.groups.get(group) if s else None
        if s is None or g is None:
            raise KeyError(f"no consumer group {group!r} on stream {stream!r}; create it first")
        return s, g

    def _event_at(self, stream: str, s: _Stream, seq: int) -> Event | None:
        item = s.messages[seq - s.first_seq]
        if isinstance(item, Event):
            return item
        if isinstance(item, _Dead):
            return None
        try:
            event = from_json(item)
        except InvalidEventError as exc:
            self._dead.append(DeadLetter(stream, f"{seq}-0", item, f"{exc.reason}: {exc}"))
            s.messages[seq - s.first_seq] = _DEAD
            return None
        s.messages[seq - s.first_seq] = event
        return event

    def read(
        self, stream: str, group: str, consumer: str, count: int = 100, block_ms: int = 0
    ) -> list[Delivery]:
        s, g = self._group(stream, group)
        out: list[Delivery] = []
        now = self._now_ms()
        seq = max(g.next_seq, s.first_seq)
        end = s.next_seq
        while seq < end and len(out) < count:
            event = self._event_at(stream, s, seq)
            if event is not None:
                g.pending[seq] = _PendingEntry(consumer, now, 1)
                out.append(Delivery(stream, f"{seq}-0", event, 1))
            seq += 1
        g.next_seq = seq
        return out

    def take(self, stream: str, group: str) -> list[Event]:
        """Read and ack everything new at once: the fast path of a synchronous pipeline."""
        s, g = self._group(stream, group)
        start = max(g.next_seq, s.first_seq)
        end = s.next_seq
        if start >= end:
            return []
        g.next_seq = end
        items = s.messages[start - s.first_seq : end - s.first_seq]
        if all(isinstance(item, Event) for item in items):
            return items  # type: ignore[return-value]
        events = []
        for offset in range(len(items)):
            event = self._event_at(stream, s, start + offset)
            if event is not None:
                events.append(event)
        return events

    def dispatcher(self, routes: Sequence[tuple[str, str, Callable[[Any], None]]]) -> Dispatcher:
        """Compile (stream, group, handler) routes, highest priority first, for `drain`."""
        compiled: list[_Route] = []
        for stream, group, handler in routes:
            self.create_group(stream, group)
            s, g = self._group(stream, group)
            last = compiled[-1] if compiled else None
            if last is not None and last.stream is s and last.groups[0].next_seq == g.next_seq:
                # Adjacent readers of one stream become one fan-out, message by message.
                last.groups.append(g)
                last.handlers.append(handler)
            else:
                compiled.append(_Route(stream, s, [g], [handler]))
        return Dispatcher(self, compiled)

    def ack(self, stream: str, group: str, msg_ids: Iterable[str]) -> int:
        _, g = self._group(stream, group)
        done = 0
        for msg_id in msg_ids:
            if g.pending.pop(int(msg_id.partition("-")[0]), None) is not None:
                done += 1
        return done

    def pending(self, stream: str, group: str) -> list[Pending]:
        _, g = self._group(stream, group)
        now = self._now_ms()
        return [
            Pending(f"{seq}-0", e.consumer, now - e.delivered_at_ms, e.times_delivered)
            for seq, e in sorted(g.pending.items())
        ]

    def claim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int = 100
    ) -> list[Delivery]:
        s, g = self._group(stream, group)
        now = self._now_ms()
        out: list[Delivery] = []
        for seq in sorted(g.pending):
            if len(out) >= count:
                break
            entry = g.pending[seq]
            if now - entry.delivered_at_ms < min_idle_ms:
                continue
            if seq < s.first_seq:  # trimmed away meanwhile, as XAUTOCLAIM drops it
                del g.pending[seq]
                continue
            event = self._event_at(stream, s, seq)
            if event is None:
                del g.pending[seq]
                continue
            entry.consumer = consumer
            entry.delivered_at_ms = now
            entry.times_delivered += 1
            out.append(Delivery(stream, f"{seq}-0", event, entry.times_delivered))
        return out

    def length(self, stream: str) -> int:
        s = self._streams.get(stream)
        return len(s.messages) if s else 0

    def trim(self, stream: str, maxlen: int) -> int:
        s = self._streams.get(stream)
        if s is None or len(s.messages) <= maxlen:
            return 0
        drop = len(s.messages) - maxlen
        del s.messages[:drop]
        s.first_seq += drop
        return drop

    def compact(self) -> None:
        """Drop messages every group has read and acked, so a long run keeps memory flat."""
        for s in self._streams.values():
            if not s.groups:
                continue
            lowest = min(
                min(g.pending, default=g.next_seq) if g.pending else g.next_seq
                for g in s.groups.values()
            )
            drop = lowest - s.first_seq
            if drop > 0:
                del s.messages[:drop]
                s.first_seq = lowest

    def dead_letters(self) -> list[DeadLetter]:
        return list(self._dead)


@dataclass(slots=True)
class _Route:
    name: str
    stream: _Stream
    groups: list[_Group]
    handlers: list[Callable[[Any], None]]


class Dispatcher:
    """Delivers new messages to handlers in priority order until every route is idle.

    After any route delivers, scanning restarts from the top, so a route runs only
    when all routes above it have nothing new: this is what makes a single-process
    run deterministic and lets a fill reach the portfolio before the next signal.
    Delivery reads and acks in one step: a handler that raises stops the run.
    """

    __slots__ = ("_bus", "_routes")

    def __init__(self, bus: InProcessBus, routes: list[_Route]) -> None:
        self._bus = bus
        self._routes = routes

    def drain(self) -> None:
        bus = self._bus
        routes = self._routes
        count = len(routes)
        i = 0
        while i < count:
            route = routes[i]
            s = route.stream
            groups = route.groups
            start = groups[0].next_seq
            end = s.next_seq
            if start >= end:
                i += 1
                continue
            first = s.first_seq
            if start < first:
                start = first
            for g in groups:
                g.next_seq = end
            before = bus.published
            handlers = route.handlers
            for offset in range(start - first, end - first):
                item: Event | str | _Dead | None = s.messages[offset]
                if not isinstance(item, Event):
                    item = bus._event_at(route.name, s, offset + first)
                    if item is None:
                        continue
                for handler in handlers:
                    handler(item)
            # Routes above this one were idle; they still are unless a handler published.
            i = 0 if bus.published != before else i + 1


__all__ = ["DEAD_LETTERS", "Dispatcher", "InProcessBus"]
