"""What the fake exchange has "traded so far": tapes released a step at a time.

A tape's cursor is the exchange's own clock. It moves on whether or not anyone is
connected, so a client that drops misses pushes and must backfill over REST, as
with the real exchange. REST only ever serves what has been released.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.mexc_server.data import TapeCandle, TapeTrade


@dataclass
class TradeTape:
    """Public trades of one symbol; released `batch` at a time once started."""

    records: tuple[TapeTrade, ...]
    limit: int | None = None  # stop after this many trades (keeps tests finite)
    cursor: int = 0
    started: bool = False

    @property
    def end(self) -> int:
        return len(self.records) if self.limit is None else min(self.limit, len(self.records))

    @property
    def released(self) -> tuple[TapeTrade, ...]:
        return self.records[: self.cursor]

    def advance(self, batch: int) -> tuple[TapeTrade, ...]:
        if not self.started or self.cursor >= self.end:
            return ()
        new = self.records[self.cursor : min(self.cursor + batch, self.end)]
        self.cursor += len(new)
        return new


@dataclass
class CandleTape:
    """Candles of one symbol and interval.

    The first `history` candles are already closed when the server starts (REST
    warm-up material). After that each candle is pushed twice, as MEXC does while
    a window is open: first a partial (open price only), then its final values.
    It becomes "released" to REST once its final push has gone out.
    """

    records: tuple[TapeCandle, ...]
    interval_s: int
    history: int = 50
    limit: int | None = None
    cursor: int = field(default=-1)
    phase: int = 0  # 0: next push is a partial of records[cursor]; 1: the final
    started: bool = False

    def __post_init__(self) -> None:
        if self.cursor < 0:
            self.cursor = self.history

    @property
    def end(self) -> int:
        return len(self.records) if self.limit is None else min(self.limit, len(self.records))

    @property
    def released(self) -> tuple[TapeCandle, ...]:
        return self.records[: self.cursor]

    def advance(self) -> tuple[TapeCandle, bool] | None:
        """The next push: (candle values, final?) or None when stopped or finished."""
        if not self.started or self.cursor >= self.end:
            return None
        record = self.records[self.cursor]
        if self.phase == 0:
            self.phase = 1
            partial = TapeCandle(
                record.open_time_ms, record.open, record.open, record.open, record.open, "0"
            )
            return partial, False
        self.phase = 0
        self.cursor += 1
        return record, True
