"""Bounds of the numbers a run takes on the command line (settings bound theirs in config.py).

Every number gets a range a real run fits in, checked before anything starts, so
an absurd value (`--days 1e9`, `nan`, `inf`) is one clear sentence instead of an
overflow in the middle of a run.
"""

from __future__ import annotations

import math
from typing import Final

from engine.errors import ConfigError

MIN_DAYS: Final = 1 / 1440  # one minute
MAX_DAYS: Final = 3650.0  # ten years


def check_days(days: float | None) -> None:
    """`--days`: a run length from one minute (0.0007) to ten years (3650)."""
    if days is None:
        return
    if not isinstance(days, int | float) or isinstance(days, bool):
        raise ConfigError(f"--days {days!r} is not a number of days; give one like 7.")
    if not math.isfinite(days) or not MIN_DAYS <= days <= MAX_DAYS:
        raise ConfigError(
            f"--days {days:g} is out of range: give a number of days from 0.0007 (one minute) "
            f"to {MAX_DAYS:g}, like 7."
        )
