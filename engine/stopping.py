"""Ctrl-C and SIGTERM during a replay, honoured between two market events.

A signal only sets a flag; the run loop stops before the next market event, so
what it writes last is a consistent checkpoint and the run resumes exactly.
Waits for pacing (`--speed 60x`) end early when a stop is asked for. A second
Ctrl-C interrupts at once.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Self


class StopRequested(KeyboardInterrupt):
    """The run loop stopped on a signal; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class OperatorStop(KeyboardInterrupt):
    """The operator stopped the run through claire (`claire papertest stop`), with a reason.

    Raised between two market events, like a signal's stop; `final` asks for a last
    snapshot with the final marks before the stop is recorded (a planned stop).
    """

    def __init__(self, reason: str, final: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final


class StopSignals:
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._monotonic = monotonic

    def __enter__(self) -> Self:
        try:
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread: signals stay with the caller
            self._restore()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt  # asked twice: stop now
        self.signum = signum

    def request(self, signum: int = signal.SIGINT) -> None:
        """Ask for a stop as a signal would (for callers and tests)."""
        self.signum = signum

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def check(self) -> None:
        if self.signum is not None:
            raise StopRequested(self.signum)

    def sleep(self, seconds: float) -> None:
        """Sleep, in short steps, until `seconds` pass or a stop is asked for."""
        end = self._monotonic() + seconds
        while self.signum is None:
            left = end - self._monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))
