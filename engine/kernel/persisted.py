"""A pipeline driven with every event it publishes written to PostgreSQL, in batches,
each in one transaction with a checkpoint of the pipeline's state taken right after
the batch's last market event. A run killed at any moment therefore has, in the
database, a consistent prefix of its events and the exact state that produced them.

A batch due by size or age is written by a thread of its own while the pipeline goes
on (the server works on the other core), one batch in flight at most. While it is
being written the next batch grows, up to BEHIND_AT_MOST times the batch size; then
the run waits for it, so a slow or unreachable database still holds the run back.
A day's end sends its batch at once. `flush` (a stop, an operator's command, the
run's end) writes and waits for the commit; `on_flush` is told after each commit.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date

from engine.events import Event, MarketData
from engine.kernel.checkpoint import capture
from engine.kernel.pipeline import Pipeline
from engine.store import EventWriter, Store
from engine.store.retry import OutageTolerance
from engine.store.runs import Checkpoint

FINAL_SNAPSHOT_CAUSE = "run-end"
# While a batch is being written the next one grows, up to this many times the batch size
# in market events; then the run waits for the database.
BEHIND_AT_MOST = 4


class _GaveUp(Exception):
    """A batch riding out an outage in the background, given up for a stop that cannot wait."""


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
        # sent at once (its report waits for that commit: `on_flush`).
        self.day: date | None = None  # the UTC day of market time so far
        self._writing: ThreadPoolExecutor | None = None
        self._in_flight: tuple[Future[int], list[Event]] | None = None
        self._impatient = threading.Event()  # set: a batch in flight stops retrying

    def process(self, event: MarketData) -> None:
        self.process_group((event,))

    def process_group(self, events: Sequence[MarketData]) -> None:
        """Market events that share one time; a checkpoint only ever falls between groups."""
        day = events[0].ts.date()
        if self.day is not None and day > self.day:
            self.day = day
            self._send(patient=True, wait=False)
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
            self._send(patient=True, wait=False)

    def flush(self, patient: bool = True) -> None:
        """Write the buffered events and the state after the last market event, atomically,
        and wait until they are committed.

        While the database is unreachable the same batch is written again, for up to
        the run's outage tolerance (`patient=False`: once, for a run being stopped).
        """
        self._send(patient, wait=True)

    def close(self) -> None:
        """End the writing thread once a batch still being written is done; one riding out
        an outage gives up (the run is over: it keeps what it committed, and a checkpoint
        resumes it from there)."""
        if self._writing is not None:
            self._impatient.set()
            self._writing.shutdown(wait=True)
            self._writing = None
            self._impatient.clear()

    def _send(self, patient: bool, wait: bool) -> None:
        if not wait and self._writing_behind():
            return  # the events wait in the buffer and go with the next batch
        if not patient:
            self._impatient.set()
        try:
            self._settle()  # one batch in flight at most, and in order
        except _GaveUp:
            pass  # its events are back in the buffer, for the write below
        finally:
            self._impatient.clear()
        last = self._last_event
        if last is None and not self._buffer:
            return
        checkpoint = None
        if last is not None:
            # Encoded here: the pipeline moves on while the batch is written.
            checkpoint = Checkpoint(
                last_event_id=last.event_id,
                last_event_ts=last.ts,
                market_events=self.pipeline.stats.market_events,
                state=json.dumps(capture(self.pipeline), separators=(",", ":")),
            )
        events = list(self._buffer)
        self._buffer.clear()  # the pipeline appends to this very list
        self._pending = 0
        self._last_flush = self._monotonic()

        def write() -> int:
            if patient:
                return self._tolerance(wait).call(
                    lambda: self.writer.write(events, checkpoint), f"writing run {self.run_id}"
                )
            return self.writer.write(events, checkpoint)

        if not wait:
            if self._writing is None:
                self._writing = ThreadPoolExecutor(1, thread_name_prefix=f"writer-{self.run_id}")
            self._in_flight = (self._writing.submit(write), events)
            return
        try:
            written = write()
        except BaseException:
            self._buffer[:0] = events  # written with the next batch
            raise
        self._committed(written)

    def _writing_behind(self) -> bool:
        """The batch in flight is still being written, and the buffer has room to grow:
        batches then grow to what the database keeps up with."""
        return (
            self._in_flight is not None
            and not self._in_flight[0].done()
            and self._pending < BEHIND_AT_MOST * self._flush_every_events
        )

    def _tolerance(self, here: bool) -> OutageTolerance:
        """The run's tolerance; in the background, one a stop can cut short."""
        if here:
            return self.tolerance
        own = self.tolerance.sleep

        def nap(seconds: float) -> None:
            if own is time.sleep:
                self._impatient.wait(seconds)
            else:
                own(seconds)
            if self._impatient.is_set():
                raise _GaveUp

        return dataclasses.replace(self.tolerance, sleep=nap)

    def _settle(self) -> None:
        """The batch in flight committed (told to `on_flush`), or its error raised with its
        events back at the head of the buffer, to be written with the next batch."""
        if self._in_flight is None:
            return
        future, events = self._in_flight
        try:
            written = future.result()
        except BaseException:
            if future.done():  # not a wait cut short: the batch failed
                self._in_flight = None
                self._buffer[:0] = events
            raise
        self._in_flight = None
        self._committed(written)

    def _committed(self, written: int) -> None:
        self.rows_written += written
        if self.on_flush is not None:
            self.on_flush()

    def finish(self) -> None:
        """A last snapshot with the final marks, then everything to the database."""
        if self._last_event is not None:
            self.pipeline.portfolio.snapshot(self.pipeline.clock.now(), FINAL_SNAPSHOT_CAUSE)
        self.flush()


__all__ = ["FINAL_SNAPSHOT_CAUSE", "PersistedRun"]
