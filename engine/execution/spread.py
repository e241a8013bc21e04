"""Spread estimates for the half spread every taker fill pays, as pure functions.

Recorded candles and trades carry no order book, so the spread is estimated from
them, per symbol and rolling:

- candles: the Corwin-Schultz (2012) high-low estimator over each pair of adjacent
  bars (with their adjustment for a gap between one close and the next range),
  negative pair estimates counted as zero, averaged over the last `window` pairs;
  or, where it is larger, Roll's (1984) estimator from the bounce of closes between
  bid and ask (2 * sqrt(-cov) of successive close-to-close returns over the same
  bars). On a thin market many bars trade at one price and the high-low estimator
  reads no spread there, while their closes still bounce between bid and ask;
- trades: the distance between the latest buyer-initiated print (at the ask) and
  the latest seller-initiated print (at the bid), relative to their middle, taken
  each time the print side flips, averaged over the last `window` flips;
- live: the exchange's best bid and ask (a `Quote`) replaces the estimate.

Only what was known before the order met the market goes into its estimate.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise
from typing import Any

from engine.events import ZERO, Side

_K = 3 - 2 * math.sqrt(2)


def corwin_schultz(
    high1: float, low1: float, high2: float, low2: float, close1: float | None = None
) -> float:
    """Relative spread from two adjacent bars; 0 where the estimate would be negative."""
    if close1 is not None:
        # A gap between bars is price movement, not spread: shift the second bar onto the close.
        if low2 > close1:
            high2, low2 = high2 - (low2 - close1), close1
        elif high2 < close1:
            high2, low2 = close1, low2 + (close1 - high2)
    if min(high1, low1, high2, low2) <= 0:
        return 0.0
    beta = math.log(high1 / low1) ** 2 + math.log(high2 / low2) ** 2
    gamma = math.log(max(high1, high2) / min(low1, low2)) ** 2
    alpha = (math.sqrt(2 * beta) - math.sqrt(beta)) / _K - math.sqrt(gamma / _K)
    spread = 2 * (math.exp(alpha) - 1) / (1 + math.exp(alpha))
    return max(spread, 0.0)


def roll(closes: list[float]) -> float:
    """Relative spread from the serial covariance of close-to-close returns; 0 without bounce."""
    if len(closes) < 3 or min(closes) <= 0:
        return 0.0
    returns = [math.log(b / a) for a, b in pairwise(closes)]
    first, second = returns[:-1], returns[1:]
    n = len(first)
    mean1, mean2 = sum(first) / n, sum(second) / n
    cov = sum((a - mean1) * (b - mean2) for a, b in zip(first, second, strict=True)) / n
    return 2 * math.sqrt(-cov) if cov < 0 else 0.0


def _decimal(value: float) -> Decimal:
    return Decimal(repr(round(value, 10)))


@dataclass(slots=True)
class SpreadEstimate:
    """Rolling estimate for one symbol; `relative` is the full spread as a fraction.

    A bar's pair estimate is computed only when a fill asks for the spread (at most
    the last `window` of them), so symbols that are not being traded cost next to
    nothing.
    """

    window: int
    samples: deque[float] = field(default_factory=deque)
    bars: deque[tuple[float, float, float]] = field(default_factory=deque)  # high, low, close
    pending: int = 0  # bars whose pair estimate is not in `samples` yet
    last_print: dict[str, float] = field(default_factory=dict)  # side -> price
    last_side: str | None = None
    bounce: float | None = None  # Roll's estimate over `bars`; None until asked for again

    def relative(self) -> Decimal | None:
        if self.pending:
            bars = list(self.bars)
            start = max(1, len(bars) - self.pending)
            for i in range(start, len(bars)):
                (h1, l1, c1), (h2, l2, _) = bars[i - 1], bars[i]
                self._add(corwin_schultz(h1, l1, h2, l2, c1))
            self.pending = 0
        if not self.samples:
            return None
        high_low = sum(self.samples) / len(self.samples)
        if self.bars:
            if self.bounce is None:
                self.bounce = roll([c for _, _, c in self.bars])
            high_low = max(high_low, self.bounce)
        return _decimal(high_low)

    def _add(self, sample: float) -> None:
        self.samples.append(sample)
        if len(self.samples) > self.window:
            self.samples.popleft()

    def on_bar(self, high: Decimal, low: Decimal, close: Decimal) -> None:
        self.bars.append((float(high), float(low), float(close)))
        if len(self.bars) > self.window + 1:
            self.bars.popleft()
        self.pending += 1
        self.bounce = None

    def on_print(self, side: Side, price: Decimal) -> None:
        self.last_print[side.value] = float(price)
        if self.last_side is not None and self.last_side != side.value:
            ask, bid = self.last_print["buy"], self.last_print["sell"]
            self._add(max((ask - bid) / ((ask + bid) / 2), 0.0))
        self.last_side = side.value

    def export(self) -> dict[str, object]:
        return {
            "samples": list(self.samples),
            "bars": [list(b) for b in self.bars],
            "pending": self.pending,
            "last_print": dict(self.last_print),
            "last_side": self.last_side,
        }

    @classmethod
    def restore(cls, window: int, state: dict[str, Any]) -> SpreadEstimate:
        est = cls(window, deque(state["samples"]), deque(tuple(b) for b in state["bars"]))
        est.pending = state["pending"]
        est.last_print = dict(state["last_print"])
        est.last_side = state["last_side"]
        return est


def half_spread_bps(relative: Decimal | None) -> Decimal:
    """Half of a relative spread, in basis points (0 when nothing is known yet)."""
    return ZERO if relative is None else relative * 5000
