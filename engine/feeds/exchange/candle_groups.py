"""Closed candles of several symbols, released together per end time: pure logic, no I/O.

Candles that end at the same time are one timestamp group: the pipeline values
the whole account on consistent marks only once every symbol's candle for that
time is in. A group is released, its candles sorted by symbol, as soon as every
symbol has closed its window up to that end time, or when the exchange's clock
is the grace past it (a symbol that has not closed by then is late and is left
out). Groups leave in time order; a candle for a group already released is late
and leaves at once, alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from engine.feeds.exchange.client import RawKline


class CandleGroups:
    def __init__(self, symbols: Iterable[str], interval_ms: int, grace_ms: int) -> None:
        self.symbols = tuple(sorted(symbols))
        self.interval_ms = interval_ms
        self.grace_ms = grace_ms
        self._held: dict[int, dict[str, RawKline]] = {}  # end ms -> symbol -> kline
        self._late: list[tuple[str, RawKline]] = []
        self.released_through_ms: int | None = None  # end time of the last group released

    def add(self, symbol: str, kline: RawKline) -> None:
        """A closed candle, held until its group is complete or due."""
        end_ms = kline.open_ms + self.interval_ms
        if self.released_through_ms is not None and end_ms <= self.released_through_ms:
            self._late.append((symbol, kline))
        else:
            self._held.setdefault(end_ms, {})[symbol] = kline

    def next_due_ms(self) -> int | None:
        """When, on the exchange's clock, the oldest held group is released regardless."""
        return min(self._held) + self.grace_ms if self._held else None

    def release(
        self, closed_through_ms: Mapping[str, int | None], now_ms: int | None
    ) -> list[list[tuple[str, RawKline]]]:
        """Late candles one by one, then every complete or due group, oldest first.

        `closed_through_ms` is, per symbol, the end time up to which its windows are
        closed (None: none yet); `now_ms` is the exchange's time, None if unknown.
        """
        out: list[list[tuple[str, RawKline]]] = [[item] for item in self._late]
        self._late.clear()
        for end_ms in sorted(self._held):
            complete = all(
                (through := closed_through_ms.get(symbol)) is not None and through >= end_ms
                for symbol in self.symbols
            )
            due = now_ms is not None and now_ms >= end_ms + self.grace_ms
            if not (complete or due):
                break  # a later group must not overtake this one
            group = self._held.pop(end_ms)
            out.append([(symbol, group[symbol]) for symbol in sorted(group)])
            self.released_through_ms = end_ms
        return out
