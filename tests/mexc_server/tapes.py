"""What the fake exchange has "traded so far": tapes released a step at a time.

A tape's cursor is the exchange's own clock. It moves on whether or not anyone is
connected, so a client that drops misses pushes and must backfill over REST, as
with the real exchange. REST only ever serves what has been released.

The recordings hold no order book, so the book ticker is derived from the trades:
after each batch the best bid and ask sit around the last trade (`book_after`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

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


BOOK_SPREAD_TICKS = 10
BOOK_TICK = Decimal("0.00000001")  # XRPETH's price step; the perpetual plays the same tape
BOOK_OTHER_SIDE_QTY = "1000.0"


@dataclass(frozen=True, slots=True)
class TapeBook:
    """Best bid and ask as text, as the exchange would send them."""

    bid: str
    bid_qty: str
    ask: str
    ask_qty: str


def book_after(trade: TapeTrade) -> TapeBook:
    """The book a trade leaves: it hit the bid (a taker sell) or lifted the ask (a buy).

    The side it traded on shows the trade's price and size; the other side sits
    BOOK_SPREAD_TICKS away with BOOK_OTHER_SIDE_QTY.
    """
    price = Decimal(trade.price)
    spread = BOOK_TICK * BOOK_SPREAD_TICKS
    if trade.side == "sell":
        return TapeBook(trade.price, trade.amount, str(price + spread), BOOK_OTHER_SIDE_QTY)
    return TapeBook(str(price - spread), BOOK_OTHER_SIDE_QTY, trade.price, trade.amount)
