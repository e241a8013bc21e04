"""The writer service: every stream into PostgreSQL, acknowledged only once it is committed.

A message re-delivered after a crash is written again, and its unique key makes
that a no-op: nothing is lost, nothing is doubled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from engine.bus.redis import RedisBus
from engine.errors import InvalidEventError
from engine.events import Event, OrderResult, Watermark, from_json
from engine.services.arrivals import ArrivalLatency
from engine.services.worker import SERVICE_STREAMS
from engine.store import EventWriter
from engine.store.retry import OutageTolerance

log = logging.getLogger("claire.services.writer")

GROUP: Final = "writer"


class WriterService:
    def __init__(
        self,
        bus: RedisBus,
        writer: EventWriter,
        *,
        block_ms: int = 200,
        patience: OutageTolerance | None = None,
        arrivals: ArrivalLatency | None = None,
    ) -> None:
        self.bus = bus
        self.writer = writer
        # A database outage: the batch is written again with backoff, nothing acknowledged
        # meanwhile; past the tolerance the service exits and its restart starts over.
        self.patience = patience or OutageTolerance(seconds=0)
        self.block_ms = block_ms
        self.written = 0
        self.processed = 0
        # Publication time (ms, the Redis entry id) of each recent market event, so a
        # fill's latency from its market event to its commit here can be measured.
        self._published_ms: dict[str, int] = {}
        self.fill_latencies_ms: list[float] = []
        # A live run's: the feed's arrival time of each fill's market event -> commit.
        self.arrivals = arrivals

    def prepare(self) -> None:
        for stream in SERVICE_STREAMS:
            self.bus.create_group(stream, GROUP)

    def run_once(self, stop: Callable[[], bool]) -> int:
        """Write what is pending or new on every stream; how many messages it took."""
        if stop():
            return 0
        taken: dict[str, list[str]] = {}
        events: list[Event] = []
        for start in ("0", ">"):  # our own unacknowledged messages first, then new ones
            reply = self.bus.read_raw(
                GROUP,
                GROUP,
                dict.fromkeys(SERVICE_STREAMS, start),
                count=2000,
                block_ms=None if start == "0" else self.block_ms,
            )
            for stream, entries in reply:
                for msg_id, payload in entries:
                    taken.setdefault(stream, []).append(msg_id)
                    if payload is None:
                        continue  # trimmed away while pending
                    try:
                        event = from_json(payload)
                        events.append(event)
                        if stream == "market_data":
                            self._published_ms[event.event_id] = int(msg_id.split("-")[0])
                            if self.arrivals is not None and isinstance(event, Watermark):
                                self.arrivals.remember(event)
                    except InvalidEventError as exc:
                        self.bus._dead_letter(stream, msg_id, payload, f"{exc.reason}: {exc}")
            if taken:
                break
        if not taken:
            return 0
        self.written += self.patience.call(
            lambda: self.writer.write(events), f"writing {len(events)} events"
        )
        committed_ms = time.time() * 1000
        for event in events:
            if isinstance(event, OrderResult) and event.status.is_fill:
                self._fill_committed(event, committed_ms)
        if len(self._published_ms) > 100_000:
            self._published_ms.clear()
        for stream, ids in taken.items():
            self.bus.ack(stream, GROUP, ids)
        count = sum(len(ids) for ids in taken.values())
        self.processed += count
        return count

    def _fill_committed(self, fill: OrderResult, committed_ms: float) -> None:
        published = self._published_ms.get(fill.market_event_id or "")
        if published is not None:
            self.fill_latencies_ms.append(committed_ms - published)
        if self.arrivals is not None:
            arrived = self.arrivals.arrival_of(fill.market_event_id)
            if arrived is not None:
                self.arrivals.add(committed_ms - arrived, int(committed_ms))
