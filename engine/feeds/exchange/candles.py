"""Turning kline pushes into closed candles, and spotting holes: pure logic, no I/O.

Exchanges push the open window over and over while it fills. A window is closed
when the first push of a later window arrives; its last push is then final. If
windows were skipped (a dropped connection, skipped pushes) or the open window's
final values may have been missed (we reconnected while it was open), the
assembler asks for a REST backfill of exactly that range instead of guessing.
A lone lost final push with no lost window after it cannot be seen from the
stream (MEXC's kline push has no "closed" flag); that candle would carry the
last values pushed.
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
        self.duplicates = 0

    def reconnected(self) -> None:
        """Pushes may have been missed: the open window's values can no longer be trusted."""
        self.pending_unsure = self.pending is not None

    def emitted(self, open_ms: int) -> bool:
        """Record an emitted candle; False if it is not newer than the last one."""
        if self.last_emitted_ms is not None and open_ms <= self.last_emitted_ms:
            self.duplicates += 1
            return False
        self.last_emitted_ms = open_ms
        return True

    def push(self, kline: RawKline) -> CandleStep:
        if self.last_emitted_ms is not None and kline.open_ms <= self.last_emitted_ms:
            return CandleStep()  # a re-sent window we already emitted
        pending = self.pending
        if pending is None:
            self.pending = kline
            self.pending_unsure = False
            expected = (
                None if self.last_emitted_ms is None else self.last_emitted_ms + self.interval_ms
            )
            if expected is not None and kline.open_ms > expected:
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
        if unsure or kline.open_ms > pending.open_ms + self.interval_ms:
            # Whole windows went missing, so the pending window's final push may have
            # gone with them: take it and the missing ones from REST.
            return CandleStep(None, pending.open_ms, kline.open_ms)
        return CandleStep(pending)
