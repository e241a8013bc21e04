"""A pipeline driven with every event it publishes written to PostgreSQL, in batches,
each in one transaction with a checkpoint of the pipeline's state taken right after
the batch's last market event. A run killed at any moment therefore has, in the
database, a consistent prefix of its events and the exact state that produced them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date

from engine.events import Event, MarketData
from engine.kernel.checkpoint import capture
from engine.kernel.pipeline import Pipeline
from engine.store import EventWriter, Store
from engine.store.retry import OutageTolerance
from engine.store.runs import Checkpoint

FINAL_SNAPSHOT_CAUSE = "run-end"


class PersistedRun:
    """Drives a pipeline and writes what it publishes, with checkpoints, in batches."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        build: Callable[[Callable[[Event], None]], Pipeline],
        flush_every_events: int = 1000,
        flush_every_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        tolerance: OutageTolerance | None = None,
    ) -> None:
        self.run_id = run_id
        self.writer = EventWriter(store, run_id)
        self.tolerance = tolerance or OutageTolerance(seconds=0)
        self._buffer: list[Event] = []
        self.pipeline = build(self._buffer.append)
        self._flush_every_events = flush_every_events
        self._flush_every_s = flush_every_s
        self._monotonic = monotonic
        self._pending = 0
        self._last_flush = monotonic()
        self._last_event: MarketData | None = None
        self.rows_written = 0
        self.busy = False
        self.on_flush: Callable[[], None] | None = None  # told after each commit
        # A live run's feed: drop its connection and backfill (why -> sockets dropped).
        self.reconnect: Callable[[str], int] | None = None
        # When market time crosses 00:00 UTC, the batch holding the day that ended is
        # written at once (its report waits for that commit).
        self.day: date | None = None  # the UTC day of market time so far

    def process(self, event: MarketData) -> None:
        self.process_group((event,))

    def process_group(self, events: Sequence[MarketData]) -> None:
        """Market events that share one time; a checkpoint only ever falls between groups."""
        day = events[0].ts.date()
        if self.day is not None and day > self.day:
            self.day = day
            self.flush()
        self.day = day
        self.busy = True  # until the events and all they cause are delivered
        self.pipeline.process_group(events)
        self.busy = False
        self._last_event = events[-1]
        self._pending += len(events)
        if (
            self._pending >= self._flush_every_events
            or self._monotonic() - self._last_flush >= self._flush_every_s
        ):
            self.flush()

    def flush(self, patient: bool = True) -> None:
        """Write the buffered events and the state after the last market event, atomically.

        While the database is unreachable the same batch is written again, for up to
        the run's outage tolerance (`patient=False`: once, for a run being stopped).
        """
        last = self._last_event
        if last is None and not self._buffer:
            return
        checkpoint = None
        if last is not None:
            checkpoint = Checkpoint(
                last_event_id=last.event_id,
                last_event_ts=last.ts,
                market_events=self.pipeline.stats.market_events,
                state=capture(self.pipeline),
            )

        def write() -> int:
            return self.writer.write(self._buffer, checkpoint)

        if patient:
            self.rows_written += self.tolerance.call(write, f"writing run {self.run_id}")
        else:
            self.rows_written += write()
        self._buffer.clear()
        self._pending = 0
        self._last_flush = self._monotonic()
        if self.on_flush is not None:
            self.on_flush()

    def finish(self) -> None:
        """A last snapshot with the final marks, then everything to the database."""
        if self._last_event is not None:
            self.pipeline.portfolio.snapshot(self.pipeline.clock.now(), FINAL_SNAPSHOT_CAUSE)
        self.flush()


__all__ = ["FINAL_SNAPSHOT_CAUSE", "PersistedRun"]
