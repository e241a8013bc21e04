"""Holding a run while it is driven, and recording how it ended.

Leaving normally completes the run; Ctrl-C, SIGTERM or cancellation stops it after
a last flush; a database outage longer than the tolerance leaves it interrupted
(RunInterrupted); any other error fails it, and the error is stored as the reason.
All but the last can be resumed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from engine.errors import (
    ClaireError,
    RunInterrupted,
    RunNotResumable,
    StrategyError,
    StrategyLoadError,
)
from engine.events import Event, TradingState
from engine.home.lock import RunLock, run_started
from engine.kernel.checkpoint import restore
from engine.kernel.persisted import PersistedRun
from engine.kernel.pipeline import Pipeline
from engine.kernel.recorded import check_against_fills
from engine.run.context import RunContext
from engine.stopping import OperatorStop, StopRequested
from engine.store import DatabaseUnavailable, RunStatus, Store
from engine.store.runs import Checkpoint

log = logging.getLogger("claire.run")


@contextmanager
def held_run(
    ctx: RunContext,
    store: Store,
    run_id: str,
    build: Callable[[Callable[[Event], None]], Pipeline],
    checkpoint: Checkpoint | None,
) -> Iterator[tuple[PersistedRun, int]]:
    """Hold the run, restore its checkpoint, and record how it ended.

    Yields the persisted run and how many market events it had already done.
    Leaving normally completes the run; Ctrl-C, SIGTERM or cancellation stops
    it after a last flush; a database outage longer than the tolerance leaves
    it interrupted (RunInterrupted); any other error fails it, and the error
    is stored as the reason. All but the last can be resumed.
    """
    lock = RunLock(ctx.data_dir, run_id)
    if not lock.acquire():
        raise RunNotResumable(f"run {run_id} is being run by another process right now.")
    run_started()  # other starts in the folder may go on: they see this run active
    try:
        try:
            run = PersistedRun(
                store,
                run_id,
                build,
                flush_every_events=ctx.flush_every_events,
                tolerance=ctx.tolerance,
            )
        except (StrategyError, StrategyLoadError) as exc:  # its constructor: nothing ran yet
            record_failure(ctx, store, run_id, str(exc))
            raise
        done = 0
        if checkpoint is not None:
            state = checkpoint.state
            restore(run.pipeline, json.loads(state) if isinstance(state, str) else dict(state))
            run.day = checkpoint.last_event_ts.date()
            try:
                check_against_fills(store, run_id, run.pipeline)
            except DatabaseUnavailable as exc:
                raise interrupted(run_id, exc) from None
            done = checkpoint.market_events
            log.info("resuming", extra={"event": "resume", "run_id": run_id, "done": done})
            if run.pipeline.risk.state is TradingState.HALTED:
                ctx.warn(
                    [
                        f"trading in run {run_id} is halted, as it was when the run stopped (a "
                        "planned stop halts it, or the circuit breaker did): the run goes on "
                        "without new entries until `claire risk resume --note TEXT`"
                    ]
                )
        try:
            yield run, done
            run.finish()
            ctx.tolerance.call(
                lambda: store.end_run(run_id, RunStatus.COMPLETED, ctx.clock.now()),
                f"recording the end of run {run_id}",
            )
        except (KeyboardInterrupt, asyncio.CancelledError) as exc:
            final = isinstance(exc, OperatorStop) and exc.final
            record_stop(ctx, run, store, run_id, _stop_reason(exc), final)
            raise
        except DatabaseUnavailable as exc:
            # Its status stays `running` with no process behind it: interrupted.
            raise interrupted(run_id, exc) from None
        except StrategyError as exc:
            # The run cannot continue; what it did up to here is kept for the report.
            try:
                run.flush(patient=False)
            except Exception:  # the failure to record is the strategy's, not this
                log.exception("could not write the events before the strategy failed")
            record_failure(ctx, store, run_id, str(exc))
            raise
        except BaseException as exc:
            record_failure(ctx, store, run_id, _failure(exc))
            raise
        finally:
            run.close()
    finally:
        lock.release()


def record_stop(
    ctx: RunContext, run: PersistedRun, store: Store, run_id: str, reason: str, final: bool = False
) -> None:
    """Ctrl-C or SIGTERM: save what we can at once (no waiting on an outage), mark it.

    `final` (a planned stop): a last snapshot with the final marks first. The signal
    may have cut a write short and broken its connection, so each step gets a second
    attempt, on a fresh connection, before it is given up. A market event still being
    delivered is never checkpointed half-done.
    """
    steps: list[tuple[str, Callable[[], object]]] = [
        (
            "record the stop",
            lambda: store.end_run(run_id, RunStatus.STOPPED, ctx.clock.now(), reason),
        ),
    ]
    if not run.busy:
        save = run.finish if final else (lambda: run.flush(patient=False))
        steps.insert(0, ("save the last events", save))
    for what, step in steps:
        for attempt in (1, 2):
            try:
                step()
                break
            except ClaireError as exc:
                if attempt == 2:
                    log.warning(
                        "could not %s of run %s (%s); it resumes from its last checkpoint",
                        what,
                        run_id,
                        exc,
                        extra={"event": "stop_not_recorded", "run_id": run_id},
                    )


def record_failure(ctx: RunContext, store: Store, run_id: str, reason: str) -> None:
    try:
        store.end_run(run_id, RunStatus.FAILED, ctx.clock.now(), reason)
    except ClaireError as store_exc:
        log.warning(
            "could not record the failure of run %s (%s)",
            run_id,
            store_exc,
            extra={"event": "failure_not_recorded", "run_id": run_id},
            exc_info=log.isEnabledFor(logging.DEBUG),
        )


def interrupted(run_id: str, exc: DatabaseUnavailable) -> RunInterrupted:
    return RunInterrupted(
        f"run {run_id} is interrupted: {str(exc).rstrip('.')}; it continues from its last "
        "checkpoint with `claire papertest start --resume` once PostgreSQL is back."
    )


def _stop_reason(exc: BaseException) -> str:
    if isinstance(exc, OperatorStop):
        return exc.reason
    if isinstance(exc, StopRequested):
        name = "Ctrl-C" if exc.signum == signal.SIGINT else signal.Signals(exc.signum).name
        return f"stopped by {name}; resumable"
    return "stopped; resumable"


def _failure(exc: BaseException) -> str:
    if isinstance(exc, ClaireError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


__all__ = ["held_run", "interrupted", "record_failure", "record_stop"]
