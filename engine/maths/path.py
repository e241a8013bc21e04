"""The price path inside a bar, as a pure function of the candle.

A candle says where the market opened, closed and how far it went, not when. The
paper exchange walks it as four points joined by straight lines: the open at the
bar's start, then the two extremes in the order the bar's direction implies (a bar
that closed up went down first: open, low, high, close; a bar that closed down went
up first: open, high, low, close; a flat bar visits the extreme nearer its open
first), at one and two thirds of the bar, and the close at its end. This is the
convention of NautilusTrader's bar execution, with documented times so that order
latency matters: an order that arrives a minute into the bar meets the price of a
minute into the bar, never one from before it arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from engine.events import Candle

_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class PricePath:
    """Points (time, price) in time order; the price between two points is on their line."""

    points: tuple[tuple[datetime, Decimal], ...]

    @property
    def start(self) -> datetime:
        return self.points[0][0]

    @property
    def end(self) -> datetime:
        return self.points[-1][0]

    def price_at(self, t: datetime) -> Decimal:
        """The market at `t` (clamped to the bar)."""
        points = self.points
        if t <= points[0][0]:
            return points[0][1]
        for (t0, p0), (t1, p1) in pairwise(points):
            if t <= t1:
                if p0 == p1 or t1 == t0:
                    return p1 if t == t1 else p0
                return p0 + (p1 - p0) * Decimal((t - t0) // _US) / Decimal((t1 - t0) // _US)
        return points[-1][1]

    def range_from(self, t: datetime) -> tuple[Decimal, Decimal]:
        """Lowest and highest price the market reaches from `t` to the bar's end."""
        prices = [self.price_at(t)]
        prices += [p for pt, p in self.points if pt > t]
        return min(prices), max(prices)


def bar_path(candle: Candle) -> PricePath:
    start, end = candle.open_time, candle.ts
    third = (end - start) / 3
    o, h, lo, c = candle.open, candle.high, candle.low, candle.close
    if c > o:
        first, second = lo, h
    elif c < o:
        first, second = h, lo
    else:
        first, second = (h, lo) if h - o < o - lo else (lo, h)
    return PricePath(((start, o), (start + third, first), (start + 2 * third, second), (end, c)))


def share_of_bar(candle: Candle, since: datetime, until: datetime) -> Decimal:
    """The share of the bar's time in [since, until] (0 when empty): volume is assumed even."""
    start, end = max(since, candle.open_time), min(until, candle.ts)
    if end <= start:
        return Decimal(0)
    return Decimal((end - start) // _US) / Decimal((candle.ts - candle.open_time) // _US)


def first_reach(path: PricePath, since: datetime, level: Decimal) -> datetime | None:
    """The first time from `since` on that the path reaches `level`, or None."""
    start = path.price_at(since)
    if start == level:
        return since
    points = [(since, start)] + [(t, p) for t, p in path.points if t > since]
    for (t0, p0), (t1, p1) in pairwise(points):
        if min(p0, p1) <= level <= max(p0, p1):
            if p1 == p0:
                return t0
            share = (level - p0) / (p1 - p0)
            return t0 + (t1 - t0) * float(share)
    return None


def share_beyond(
    path: PricePath, since: datetime, until: datetime, level: Decimal, below: bool
) -> Decimal:
    """The share of the bar's time in [since, until] that the path spends beyond `level`.

    Beyond is strictly below the level when `below` (a resting buy), strictly above
    otherwise (a resting sell): with volume even over the bar, this share of its
    volume traded through the level while an order was resting there.
    """
    total = (path.end - path.start) // _US
    if until <= since or total <= 0:
        return Decimal(0)
    inside = [(t, p) for t, p in path.points if since < t < until]
    points = [(since, path.price_at(since)), *inside, (until, path.price_at(until))]
    beyond = Decimal(0)
    for (t0, p0), (t1, p1) in pairwise(points):
        d0, d1 = (level - p0, level - p1) if below else (p0 - level, p1 - level)
        span = Decimal((t1 - t0) // _US)
        if d0 > 0 and d1 > 0:
            beyond += span
        elif d0 > 0 or d1 > 0:
            beyond += span * max(d0, d1) / abs(d1 - d0)
    return beyond / Decimal(total)
