"""Many spot symbols at the exchange's real pace, from the one recorded trade tape.

Each synthetic symbol (`X001ETH`, `X002ETH`, ... all quoted in ETH, with XRPETH's
precisions) plays the XRPETH trades from its own point of the tape, moved to the
present: symbol i starts i/n of the way through the recording, so the symbols do
not trade in step. Its 1-minute candles are made from its trades. `PacedMexcServer`
releases each trade, book ticker and kline push when the wall clock reaches its time
(clock speed 1x); the trade and candle tapes run from the server's start, listened
to or not, as a real exchange's do.

The registry of spot symbols is the module's `SPOT_SYMBOLS`: the paced server adds
its symbols to it, for the process it runs in. Like MEXC it takes 30 spot channels a
connection: the feed opens one connection per 10 symbols.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from tests.mexc_server.data import TapeCandle, TapeTrade, load_trades
from tests.mexc_server.server import SPOT_SYMBOLS, MexcServer
from tests.mexc_server.tapes import CandleTape, TradeTape

QUOTE = "ETH"
MINUTE_MS = 60_000


def synthetic_names(count: int) -> list[str]:
    return [f"X{i:03d}{QUOTE}" for i in range(1, count + 1)]


def synthetic_trades(
    tape: tuple[TapeTrade, ...], index: int, count: int, start_ms: int, until_ms: int
) -> tuple[TapeTrade, ...]:
    """Symbol `index` of `count`: the tape from its own offset, its first trade at
    `start_ms`, wrapping at the tape's end, up to `until_ms`; ids from 1 in order."""
    first = tape[0].time_ms
    span = max(1, tape[-1].time_ms - first + 1)
    offset = span * index // max(1, count)
    moved = sorted(
        ((start_ms + (t.time_ms - first - offset) % span, n, t) for n, t in enumerate(tape)),
        key=lambda item: (item[0], item[1]),
    )
    return tuple(
        TapeTrade(at, i, t.side, t.price, t.amount)
        for i, (at, _, t) in enumerate((m for m in moved if m[0] <= until_ms), start=1)
    )


def minute_candles(
    trades: tuple[TapeTrade, ...], from_ms: int, until_ms: int
) -> tuple[TapeCandle, ...]:
    """1-minute candles of `trades` from the minute of `from_ms` to that of `until_ms`;
    a minute without trades stays at the last close with no volume."""
    out: list[TapeCandle] = []
    start = from_ms - from_ms % MINUTE_MS
    last = trades[0].price if trades else "1"
    i = 0
    for open_ms in range(start, until_ms - until_ms % MINUTE_MS + 1, MINUTE_MS):
        while i < len(trades) and trades[i].time_ms < open_ms:
            last = trades[i].price
            i += 1
        inside = []
        while i < len(trades) and trades[i].time_ms < open_ms + MINUTE_MS:
            inside.append(trades[i])
            i += 1
        if not inside:
            out.append(TapeCandle(open_ms, last, last, last, last, "0"))
            continue
        prices = [Decimal(t.price) for t in inside]
        high = inside[prices.index(max(prices))].price
        low = inside[prices.index(min(prices))].price
        volume = str(sum((Decimal(t.amount) for t in inside), Decimal(0)))
        out.append(TapeCandle(open_ms, inside[0].price, high, low, inside[-1].price, volume))
        last = inside[-1].price
    return tuple(out)


class PacedMexcServer(MexcServer):
    """The local server with `symbols` synthetic spot symbols at real pace for
    `minutes` (and `history` closed 1-minute candles before its start)."""

    def __init__(self, symbols: int, minutes: float, history: int = 50, tick_s: float = 0.01):
        super().__init__(tick_s=tick_s)
        self.quotes = True
        self.names = synthetic_names(symbols)
        self.began_ms = int(time.time() * 1000)
        since = self.began_ms - history * MINUTE_MS
        until = self.began_ms + int((minutes + 5) * MINUTE_MS)
        tape = load_trades()
        for index, name in enumerate(self.names):
            SPOT_SYMBOLS[name] = (name.removesuffix(QUOTE), QUOTE, 1, 8)
            trades = synthetic_trades(tape, index, symbols, since, until)
            start = next((i for i, t in enumerate(trades) if t.time_ms > self.began_ms), 0)
            self.spot_trades[name] = TradeTape(trades, cursor=start, started=True)
            candles = minute_candles(trades, since, until)
            opened = sum(1 for c in candles if c.open_time_ms + MINUTE_MS <= self.began_ms)
            self.spot_klines[(name, "Min1")] = CandleTape(candles, 60, opened, started=True)

    async def _play(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            now = int(time.time() * 1000)
            for name in self.names:
                tape = self.spot_trades[name]
                due = 0
                while (
                    tape.cursor + due < tape.end and tape.records[tape.cursor + due].time_ms <= now
                ):
                    due += 1
                new = tape.advance(due) if due else ()
                if new:
                    self.clock.reach(new[-1].time_ms)
                    await self._push_trades(name, new, futures=False)
                await self._play_candles((name, "Min1"), now)

    async def _play_candles(self, key: tuple[str, str], now: int) -> None:
        ktape = self.spot_klines[key]
        while ktape.cursor < ktape.end:
            candle = ktape.records[ktape.cursor]
            # A window's first push comes as it opens, its last just before it ends.
            at = candle.open_time_ms + (MINUTE_MS - 1 if ktape.phase else 0)
            if at > now:
                return
            step = ktape.advance()
            if step is None:
                return
            self.clock.reach(at)
            await self.push_kline(key, step[0], futures=False)


__all__ = ["PacedMexcServer", "minute_candles", "synthetic_names", "synthetic_trades"]
