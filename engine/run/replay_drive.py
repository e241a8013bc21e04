"""A replay driven in this process: the recorded market events, paced, through the
pipeline, with its checkpoints, the operator's commands and its duties."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from engine.config import Settings
from engine.events import Event, MarketEvent
from engine.feeds.replay import ReplayPlan, paced
from engine.home.processes import note_http_port, note_problems
from engine.kernel.pipeline import Pipeline, build_replay_pipeline, by_time, replay_end
from engine.kernel.progress import ProgressSink
from engine.kernel.recorded import after_checkpoint
from engine.run.attendant import RunAttendant, nothing
from engine.run.context import RunContext, database_check
from engine.run.outcome import RunOutcome
from engine.run.session import held_run
from engine.run.watchdog import watching
from engine.services.run_metrics import RunMetrics, serving
from engine.signal.watch import CallbackWatch
from engine.stopping import OperatorStop, StopRequested, StopSignals
from engine.store import Store
from engine.store.runs import Checkpoint


def drive_replay(
    ctx: RunContext,
    store: Store,
    database: str,
    run_id: str,
    plan: ReplayPlan,
    settings: Settings,
    checkpoint: Checkpoint | None,
    factor: float | None,
    speed: str,
    progress: ProgressSink | None,
) -> RunOutcome:
    metrics = RunMetrics(run_id)
    resumed_at = checkpoint.last_event_ts if checkpoint else None
    rejected = 0 if checkpoint else len(plan.rejected)
    session = ctx.duties.session(
        store, run_id, resumed_at=resumed_at, rejected_input=rejected, reports=ctx.reports
    )

    stop_signal = None
    feed = None
    attendant: RunAttendant | None = None
    done = checkpoint.market_events if checkpoint else 0
    watch = CallbackWatch()
    with (
        StopSignals() as stop,
        session as ops,
        serving(
            metrics,
            {"database": database_check(store)},
            ctx.settings.claire_http_host,
            ctx.settings.http_port(),
        ) as server,
        watching(watch, ctx.settings.strategy_timeout_seconds, stop, store, run_id),
    ):

        def build(observer: Callable[[Event], None]) -> Pipeline:
            pipeline = build_replay_pipeline(
                settings,
                plan,
                ctx.build_strategy(watch),
                observers=[observer, ops.observe, metrics.observe],
            )
            pipeline.signals.watch = watch
            return pipeline

        try:
            with held_run(ctx, store, run_id, build, checkpoint) as (run, done):
                ops.attach(run)
                attendant = ctx.attendant(store, run)
                if server is not None and attendant is not None:
                    note_http_port(ctx.data_dir, run_id, server.port)
                between = attendant.between if attendant is not None else nothing
                sleep = attendant.pace(stop.sleep) if attendant is not None else stop.sleep
                feed = ctx.progress(
                    run.pipeline, progress, plan.start, replay_end(plan), plan.quote
                )
                for group in by_time(paced(_events(plan, checkpoint), factor, sleep=sleep)):
                    stop.check()
                    between()
                    run.process_group(group)
                    if feed is not None:
                        feed(group[-1].ts)
                stop.check()  # a stop during the last event still stops, not completes
                between()
        except StopRequested as exc:
            stop_signal = exc.signum
        except OperatorStop:
            pass  # recorded as stopped, with the operator's reason
        finally:
            if attendant is not None:
                attendant.close()
    if feed is not None:
        feed.finish()
    problems = [*(attendant.problems() if attendant is not None else []), *ops.problems]
    ctx.warn(problems)
    note_problems(ctx.data_dir, run_id, problems)  # and `claire status` says them
    summary = ctx.summary(run.pipeline, plan, plan.quote, plan.start)
    port = server.port if server is not None else None
    return ctx.outcome(store, database, run_id, summary, done, speed, stop_signal, port)


def _events(plan: ReplayPlan, checkpoint: Checkpoint | None) -> Iterator[MarketEvent]:
    """The replay's market events, after those a checkpoint has seen."""
    events = plan.events()
    return after_checkpoint(events, checkpoint) if checkpoint is not None else events


__all__ = ["drive_replay"]
