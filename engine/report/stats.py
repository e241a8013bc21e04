"""Performance statistics as pure functions over equity points, returns and trips.

Everything is `Decimal` and exact where it can be; square roots use Decimal's.
Conventions (stated in every report):

- Daily returns are the change of equity from one UTC day's end to the next (the
  first day from the initial capital); a partial first or last day counts as a day.
- Sharpe = mean / sample standard deviation (ddof 1) x sqrt(365); Sortino = mean /
  downside deviation (sqrt of the mean of squared negative returns over all days)
  x sqrt(365). Crypto trades every day, so a year has 365 daily periods.
- Max drawdown is the deepest fall of equity below its running peak (the peak
  starts at the initial capital); its duration runs from that peak to the time
  equity first got back to it, or to the last point if it never did.
- Profit factor = gross win / gross loss of round trips (None without a loss);
  expectancy = the mean net PnL per round trip; expectancy ratio =
  (1 + average win / |average loss|) x win rate - 1.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Final

ZERO: Final = Decimal(0)
PERIODS_PER_YEAR: Final = 365
ANNUALISATION: Final = (
    "daily returns (UTC days, partial first and last days included), annualised with "
    "365 periods a year because crypto trades every day"
)

Point = tuple[datetime, Decimal]


def day_end_equity(points: Sequence[Point]) -> list[tuple[date, Decimal]]:
    """The last equity of each UTC day that has points, in order."""
    out: list[tuple[date, Decimal]] = []
    for ts, equity in points:
        day = ts.date()
        if out and out[-1][0] == day:
            out[-1] = (day, equity)
        else:
            out.append((day, equity))
    return out


def returns(start: Decimal, ends: Sequence[Decimal]) -> list[Decimal]:
    """Each period's return from the previous end (the first from `start`)."""
    out = []
    previous = start
    for end in ends:
        out.append(end / previous - 1 if previous else ZERO)
        previous = end
    return out


def mean(values: Sequence[Decimal]) -> Decimal:
    return sum(values, ZERO) / len(values) if values else ZERO


def stdev(values: Sequence[Decimal]) -> Decimal:
    """Sample standard deviation (ddof 1); zero for fewer than two values."""
    if len(values) < 2:
        return ZERO
    m = mean(values)
    return (sum(((v - m) ** 2 for v in values), ZERO) / (len(values) - 1)).sqrt()


def sharpe(daily: Sequence[Decimal], periods: int = PERIODS_PER_YEAR) -> Decimal | None:
    """Annualised Sharpe ratio of daily returns; None for fewer than two or no variation."""
    sd = stdev(daily)
    if len(daily) < 2 or sd == 0:
        return None
    return mean(daily) / sd * Decimal(periods).sqrt()


def sortino(daily: Sequence[Decimal], periods: int = PERIODS_PER_YEAR) -> Decimal | None:
    """Annualised Sortino ratio; None for fewer than two returns or none below zero."""
    if len(daily) < 2:
        return None
    downside = (sum((r * r for r in daily if r < 0), ZERO) / len(daily)).sqrt()
    if downside == 0:
        return None
    return mean(daily) / downside * Decimal(periods).sqrt()


@dataclass(frozen=True, slots=True)
class Drawdown:
    frac: Decimal  # the deepest fall below the running peak, 0.05 is 5 %
    peak_at: datetime | None
    valley_at: datetime | None
    recovered_at: datetime | None
    duration_s: int  # peak to recovery, or to the last point if not recovered


def drawdown_series(points: Sequence[Point], start_peak: Decimal) -> list[Point]:
    """Each point's fall below the running peak, which starts at `start_peak`."""
    peak = start_peak
    out = []
    for ts, equity in points:
        peak = max(peak, equity)
        out.append((ts, (peak - equity) / peak if peak > 0 else ZERO))
    return out


def max_drawdown(
    points: Sequence[Point], start_peak: Decimal, start: datetime | None = None
) -> Drawdown:
    """The deepest drawdown over `points` and how long it lasted.

    A peak set before the points (`start_peak` at or above the first point) counts
    from `start`, or from the first point's time if not given.
    """
    if not points:
        return Drawdown(ZERO, None, None, None, 0)
    peak, peak_at = start_peak, start if start is not None else points[0][0]
    best = Drawdown(ZERO, None, None, None, 0)
    for ts, equity in points:
        if equity >= peak:
            if best.frac > 0 and best.recovered_at is None and best.peak_at == peak_at:
                best = replace(best, recovered_at=ts, duration_s=_seconds(peak_at, ts))
            peak, peak_at = equity, ts
            continue
        fall = (peak - equity) / peak if peak > 0 else ZERO
        if fall > best.frac:
            best = Drawdown(fall, peak_at, ts, None, 0)
    if best.frac > 0 and best.recovered_at is None:
        best = replace(best, duration_s=_seconds(best.peak_at, points[-1][0]))
    return best


def _seconds(start: datetime | None, end: datetime) -> int:
    return int((end - start).total_seconds()) if start is not None else 0


def time_weighted_mean(points: Sequence[Point], end: datetime) -> Decimal:
    """Mean of a step function: each value holds from its time to the next point's (or `end`)."""
    if not points:
        return ZERO
    total = ZERO
    span = ZERO
    for (ts, value), following in zip(points, [*points[1:], (end, ZERO)], strict=True):
        seconds = Decimal(max(0, int((following[0] - ts).total_seconds())))
        total += value * seconds
        span += seconds
    if span == 0:
        return mean([v for _, v in points])
    return total / span


@dataclass(frozen=True, slots=True)
class TripFigures:
    round_trips: int
    wins: int
    win_rate_frac: Decimal
    avg_win: Decimal
    avg_loss: Decimal  # negative (or zero)
    gross_win: Decimal
    gross_loss: Decimal  # positive
    profit_factor: Decimal | None
    expectancy: Decimal
    expectancy_ratio: Decimal | None


def trip_figures(net_pnls: Sequence[Decimal]) -> TripFigures:
    """Win rate, averages, profit factor and expectancy of round trips' net PnL.

    A trip wins when its net PnL is above zero; the rest are losses.
    """
    wins = [p for p in net_pnls if p > 0]
    losses = [p for p in net_pnls if p <= 0]
    gross_win = sum(wins, ZERO)
    gross_loss = -sum(losses, ZERO)
    n = len(net_pnls)
    win_rate = Decimal(len(wins)) / n if n else ZERO
    avg_win = gross_win / len(wins) if wins else ZERO
    avg_loss = -gross_loss / len(losses) if losses else ZERO
    ratio = (1 + avg_win / abs(avg_loss)) * win_rate - 1 if avg_loss != 0 else None
    return TripFigures(
        round_trips=n,
        wins=len(wins),
        win_rate_frac=win_rate,
        avg_win=avg_win,
        avg_loss=avg_loss,
        gross_win=gross_win,
        gross_loss=gross_loss,
        profit_factor=gross_win / gross_loss if gross_loss > 0 else None,
        expectancy=sum(net_pnls, ZERO) / n if n else ZERO,
        expectancy_ratio=ratio,
    )


def max_in_window(times: Sequence[datetime], window_s: int = 60) -> int:
    """The most times that fall within any `window_s` seconds (times in order)."""
    window: deque[datetime] = deque()
    best = 0
    for ts in times:
        window.append(ts)
        while (ts - window[0]).total_seconds() >= window_s:
            window.popleft()
        best = max(best, len(window))
    return best


def longest_silence(times: Sequence[datetime], cadence_s: int = 0) -> int:
    """The longest gap between two times beyond the expected cadence, in seconds."""
    longest = 0
    for before, after in pairwise(times):
        longest = max(longest, int((after - before).total_seconds()) - cadence_s)
    return max(longest, 0)
