"""The fake exchange's clock: the time of the data it plays.

A real exchange stamps its messages and serves its server time from one clock,
and the data it pushes happened on that clock. The fake one plays recorded data
from the past, fast, so its clock follows the tapes instead: it reads the wall
clock until a tape first plays, then jumps to the time of each item released
(a trade, a kline push) and runs on at the wall clock's rate in between. It
never moves backwards once a tape plays, so tapes of different dates do not
mix in one test.
"""

from __future__ import annotations

import time


class TapeClock:
    def __init__(self) -> None:
        self._anchor_ms: int | None = None
        self._anchor_mono = 0.0

    def now_ms(self) -> int:
        if self._anchor_ms is None:
            return int(time.time() * 1000)
        return self._anchor_ms + int((time.monotonic() - self._anchor_mono) * 1000)

    def reach(self, ms: int) -> None:
        """The exchange released something that happened at `ms`."""
        if self._anchor_ms is None or ms > self.now_ms():
            self._anchor_ms, self._anchor_mono = ms, time.monotonic()
