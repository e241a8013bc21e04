"""Turning kline pushes into closed candles, and spotting holes: pure logic, no I/O.

Exchanges push the open window over and over while it fills. A window is closed
when the first push of a later window arrives, or when the exchange's clock has
passed its end by the grace (`close_due`), whichever comes first: a thin symbol
whose next push is late still gets its candle on time. Its last push is then
final; a push for a window that is already closed is ignored, and counted in
`late_updates` when the window was closed by the clock.

If windows were skipped (a dropped connection, skipped pushes) or the open
window's final values may have been missed (we reconnected while it was open),
the assembler asks for a REST backfill of exactly that range instead of
guessing. A lone lost final push with no lost window after it cannot be seen
from the stream (MEXC's kline push has no "closed" flag); that candle would
carry the last values pushed.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.feeds.exchange.client import RawKline


@dataclass(frozen=True, slots=True)
class CandleStep:
    """What to do after a push: emit `closed` first, then backfill [from_ms, to_ms)."""

    closed: RawKline | None = None
    backfill_from_ms: int | None = None
    backfill_to_ms: int | None = None


class CandleAssembler:
    """Per symbol and interval."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_ms = interval_ms
        self.pending: RawKline | None = None
        self.pending_unsure = False
        self.last_emitted_ms: int | None = None  # open time of the last emitted candle
        self.closed_ms: int | None = None  # open time of the last window closed or backfilled
        self.clock_closed_ms: int | None = None  # open time of the last window closed by time
        self.duplicates = 0
        self.late_updates = 0

    @property
    def closed_through_ms(self) -> int | None:
        """End time of the last closed window: nothing before it is still open."""
        return None if self.closed_ms is None else self.closed_ms + self.interval_ms

    @property
    def due_ms(self) -> int | None:
        """End time of the open window, or None when no window is open."""
        return None if self.pending is None else self.pending.open_ms + self.interval_ms

    def reconnected(self) -> None:
        """Pushes may have been missed: the open window's values can no longer be trusted."""
        self.pending_unsure = self.pending is not None

    def emitted(self, open_ms: int) -> bool:
        """Record an emitted candle; False if it is not newer than the last one."""
        if self.last_emitted_ms is not None and open_ms <= self.last_emitted_ms:
            self.duplicates += 1
            return False
        self.last_emitted_ms = open_ms
        self._closed(open_ms)
        return True

    def push(self, kline: RawKline) -> CandleStep:
        if self.closed_ms is not None and kline.open_ms <= self.closed_ms:
            # A re-sent window already closed; after a close by the clock it is news
            # that came too late, and the candle already emitted stays final.
            if self.clock_closed_ms is not None and kline.open_ms == self.clock_closed_ms:
                self.late_updates += 1
            return CandleStep()
        pending = self.pending
        if pending is None:
            self.pending = kline
            self.pending_unsure = False
            expected = self.closed_through_ms
            if expected is not None and kline.open_ms > expected:
                self._closed(kline.open_ms - self.interval_ms)
                return CandleStep(None, expected, kline.open_ms)
            return CandleStep()
        if kline.open_ms == pending.open_ms:
            self.pending = kline
            return CandleStep()
        if kline.open_ms < pending.open_ms:
            return CandleStep()  # stale push from before the open window
        # A later window started: the pending one is closed.
        self.pending = kline
        unsure, self.pending_unsure = self.pending_unsure, False
        self._closed(kline.open_ms - self.interval_ms)
        if unsure or kline.open_ms > pending.open_ms + self.interval_ms:
            # Whole windows went missing, so the pending window's final push may have
            # gone with them: take it and the missing ones from REST.
            return CandleStep(None, pending.open_ms, kline.open_ms)
        return CandleStep(pending)

    def close_due(self, now_ms: int, grace_ms: int) -> CandleStep:
        """Close the open window if the exchange's clock is `grace_ms` past its end."""
        pending = self.pending
        if pending is None or now_ms < pending.open_ms + self.interval_ms + grace_ms:
            return CandleStep()
        self.pending = None
        unsure, self.pending_unsure = self.pending_unsure, False
        self._closed(pending.open_ms)
        self.clock_closed_ms = pending.open_ms
        if unsure:
            return CandleStep(None, pending.open_ms, pending.open_ms + self.interval_ms)
        return CandleStep(pending)

    def _closed(self, open_ms: int) -> None:
        if self.closed_ms is None or open_ms > self.closed_ms:
            self.closed_ms = open_ms
