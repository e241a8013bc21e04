"""The strategy's watchdog: a call of the strategy's code never holds a run.

A thread looks at the strategy's call in progress (engine.signal.watch) twenty
times a second:

- a call that has run STRATEGY_TIMEOUT_SECONDS is interrupted with
  `StrategyTimeout` (the run fails with the strategy's name, the callback and the
  market time, as for any strategy error);
- a call that is still running a second after Ctrl-C or SIGTERM is interrupted
  with the stop (the run stops, resumable, as for any stop);
- a call that does not give way to either within HARD_END_S (code that swallows
  the exception, or waits in C) ends the process: the run's end is recorded (failed,
  or stopped), the sentence printed, and the process exits at once, without the
  events of the market time in progress. The database keeps the events and the
  checkpoint of the last batch written, so a resume after a stop is exact.

A stop or a failure therefore ends a run within STRATEGY_TIMEOUT_SECONDS +
HARD_END_S + RECORD_S, or STOP_GRACE_S + HARD_END_S + RECORD_S after a signal,
whatever the strategy does (the record takes well under a second normally).

In a run of one process per service, the signal service's process runs its strategy
under this same watchdog (engine.run.service_process hands it in), and every service
builds the strategy under it: a failure is recorded on the run, which its supervisor
sees when the service exits, and stops the others.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Final, Protocol

from engine.errors import StrategyError, StrategyLoadError
from engine.signal.watch import CallbackWatch, Running, StrategyTimeout
from engine.stopping import StopRequested
from engine.store import RunStatus, Store

log = logging.getLogger("claire.run")

POLL_S: Final = 0.05
STOP_GRACE_S: Final = 1.0  # a stuck call this long after a signal is interrupted
HARD_END_S: Final = 2.0  # a call that ignores the interruption this long ends the process
RECORD_S: Final = 5.0  # what the process gives its last record and sentence before it exits


class Stop(Protocol):
    """What the watchdog reads of a stop: the signal asked for, if one was."""

    @property
    def signum(self) -> int | None: ...


def _stop_class(signum: int) -> type[BaseException]:
    """StopRequested for `signum`, raisable by class (as an asynchronous exception is)."""

    def init(self: StopRequested) -> None:
        StopRequested.__init__(self, signum)

    return type("StopRequested", (StopRequested,), {"__init__": init})


def _interrupt(thread_id: int, exc: type[BaseException]) -> None:
    """Raise `exc` in the thread at its next Python instruction."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))


class StrategyWatchdog:
    def __init__(
        self,
        watch: CallbackWatch,
        timeout_s: float,
        *,
        stop: Stop | None,
        end: Callable[[Running, str, bool], None],
        thread_id: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.watch = watch
        self.timeout_s = timeout_s
        self.stop = stop
        self._end = end  # (call, sentence, failed): record, print, exit
        self._thread_id = thread_id if thread_id is not None else threading.get_ident()
        self._monotonic = monotonic
        self._done = threading.Event()
        self._signal_seen: float | None = None
        self._interrupted: tuple[int, float, str, bool] | None = None  # token, when, why, failed
        self._thread = threading.Thread(target=self._loop, name="strategy-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=1.0)

    def _loop(self) -> None:
        while not self._done.wait(POLL_S):
            try:
                self.check()
            except Exception:  # the watchdog never dies of a check
                log.exception("the strategy watchdog could not check the strategy")

    def check(self) -> None:
        now = self._monotonic()
        if self.stop is not None and self.stop.signum is not None and self._signal_seen is None:
            self._signal_seen = now
        call = self.watch.current
        if call is None:
            return
        if self._interrupted is not None and self._interrupted[0] == call.token:
            _, when, why, failed = self._interrupted
            if now - when >= HARD_END_S:
                self._done.set()
                self._end(call, why, failed)
            return
        signum = self.stop.signum if self.stop is not None else None
        seen = self._signal_seen
        if (
            signum is not None
            and seen is not None
            and now - max(seen, call.started) >= STOP_GRACE_S
        ):
            name = signal.Signals(signum).name
            why = (
                f"stopped by {name} while strategy {call.strategy} was stuck in "
                f"{call.where()}; resumable from its last checkpoint"
            )
            self._interrupted = (call.token, now, why, False)
            _interrupt(self._thread_id, _stop_class(signum))
            return
        if signum is None and now - call.started >= self.timeout_s:  # a stop asked for wins
            why = (
                f"strategy {call.strategy} did not return from {call.where()} within "
                f"{self.timeout_s:g} s (STRATEGY_TIMEOUT_SECONDS); fix the strategy (or raise "
                "the timeout) and start a new run"
            )
            self.watch.timeout_message = why
            self._interrupted = (call.token, now, why, True)
            _interrupt(self._thread_id, StrategyTimeout)


def end_process(
    store: Store, run_id: str, *, record_stops: bool = True
) -> Callable[[Running, str, bool], None]:
    """The last resort: record the run's end, say why, and exit without waiting on anything.

    The record and the sentence get RECORD_S at most (a database that does not answer,
    or a full pipe on stderr, never keeps the process alive). A service of a run records
    only a failure (`record_stops=False`): its supervisor records the stop it asked for."""

    def record(why: str, status: RunStatus) -> None:
        try:
            if record_stops or status is RunStatus.FAILED:
                store.end_run(run_id, status, datetime.now(UTC), why)
        except Exception as exc:  # the exit must happen: the run shows as interrupted then
            log.warning("could not record the end of run %s: %s", run_id, exc)
        log.info(why, extra={"event": "strategy_stuck", "run_id": run_id})
        for handler in logging.getLogger().handlers + log.handlers:
            with contextlib.suppress(Exception):  # exiting regardless
                handler.flush()
        print(f"error: run {run_id} {status.value}: {why}.", file=sys.stderr, flush=True)

    def end(call: Running, why: str, failed: bool) -> None:
        status = RunStatus.FAILED if failed else RunStatus.STOPPED
        last = threading.Thread(target=record, args=(why, status), daemon=True)
        last.start()
        last.join(RECORD_S)
        os._exit(1 if failed else 128 + signal.SIGTERM)

    return end


def _say_and_exit(call: Running, why: str, failed: bool) -> None:
    print(f"error: {why}.", file=sys.stderr, flush=True)
    os._exit(1)


@contextmanager
def loading_strategy(
    timeout_s: float, strategy: str, end: Callable[[Running, str, bool], None] | None = None
) -> Iterator[None]:
    """Loading and building the strategy (its module, its constructor) under the watchdog:
    past the timeout it is a strategy error, and code that ignores the interruption ends
    the process with that sentence (`end`, for a run that exists: `end_process`).
    `sys.exit` is its error too."""
    watch = CallbackWatch()
    dog = StrategyWatchdog(watch, timeout_s, stop=None, end=end or _say_and_exit)
    dog.start()
    try:
        with watch.running(strategy, "__init__"):
            yield
    except StrategyTimeout:
        raise StrategyError(watch.timeout_message) from None
    except StrategyLoadError as exc:
        if isinstance(exc.__cause__, StrategyTimeout):
            raise StrategyError(watch.timeout_message) from None
        raise
    except SystemExit as exc:
        raise StrategyError(
            f"strategy {strategy} called sys.exit({exc.code!r}) while it was loaded or built; "
            "a strategy never ends the process: fix the strategy and start a new run"
        ) from None
    finally:
        dog.close()


@contextmanager
def watching(
    watch: CallbackWatch,
    timeout_s: float,
    stop: Stop | None,
    store: Store,
    run_id: str,
    *,
    record_stops: bool = True,
) -> Iterator[StrategyWatchdog]:
    """A watchdog over the strategy's calls in this thread, for as long as the block runs."""
    end = end_process(store, run_id, record_stops=record_stops)
    dog = StrategyWatchdog(watch, timeout_s, stop=stop, end=end)
    dog.start()
    try:
        yield dog
    finally:
        dog.close()


__all__ = [
    "HARD_END_S",
    "RECORD_S",
    "STOP_GRACE_S",
    "Stop",
    "StrategyWatchdog",
    "end_process",
    "loading_strategy",
    "watching",
]
