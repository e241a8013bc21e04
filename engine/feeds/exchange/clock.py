"""The exchange's clock, estimated from the times it stamps on its messages: pure logic.

A message stamped `t` by the exchange and received when our monotonic clock reads
`m` says the exchange's clock read at least `t` at `m`: it was sent before it
arrived. The estimate carries the latest such bound forward at the rate of our
own clock, so it lags the exchange by about one network delay and never runs
ahead of it. It is the clock that stamped the data itself, so it needs no extra
request and no trust in the local wall clock.

A bound from long ago loses `DRIFT_ALLOWANCE` per second of age, so a local
clock that runs fast cannot carry the estimate ahead of the exchange: fresh
messages keep it up. Between messages it still never moves backwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Local oscillators drift by tens of parts per million; allow ten times more.
DRIFT_ALLOWANCE = 1e-3  # ms of exchange time per ms of local time


class ExchangeClock:
    """`observe` the stamp of every message as it arrives; `now_ms` is the estimate."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._offset_ms: float | None = None  # exchange ms minus local ms, best bound
        self._at_ms = 0.0  # local ms when the bound was taken or last aged

    def observe(self, exchange_ms: int) -> None:
        """A message stamped `exchange_ms` arrived just now."""
        if exchange_ms <= 0:
            return
        local_ms = self._monotonic() * 1000
        bound = exchange_ms - local_ms
        current = self._aged(local_ms)
        if current is None or bound > current:
            self._offset_ms, self._at_ms = bound, local_ms

    def now_ms(self) -> int | None:
        """The exchange's time now, in epoch ms; None before the first message."""
        local_ms = self._monotonic() * 1000
        offset = self._aged(local_ms)
        return None if offset is None else int(local_ms + offset)

    def _aged(self, local_ms: float) -> float | None:
        if self._offset_ms is None:
            return None
        return self._offset_ms - max(0.0, local_ms - self._at_ms) * DRIFT_ALLOWANCE
