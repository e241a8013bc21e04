"""A live run driven in this process: the exchange's feed through the pipeline, with
its checkpoints, the operator's commands and its duties, until its planned end or a
stop (Ctrl-C and SIGTERM alike)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError
from engine.events import Event
from engine.home.processes import note_http_port, note_problems
from engine.kernel.pipeline import Pipeline
from engine.kernel.progress import ProgressSink
from engine.kernel.recorded import settings_from_snapshot
from engine.run.attendant import RunAttendant, attended
from engine.run.context import RunContext, database_check
from engine.run.create import create_live_run
from engine.run.outcome import RunOutcome
from engine.run.session import held_run
from engine.run.watchdog import watching
from engine.services.run_metrics import RunMetrics, serving
from engine.signal.loader import StrategyChoice
from engine.signal.watch import CallbackWatch
from engine.stopping import OperatorStop
from engine.store import RunRecord, RunStatus, Store

if TYPE_CHECKING:
    from engine.feeds.exchange import FeedSettings, LiveFeed
    from engine.markets import SymbolSpec


async def drive_live(
    ctx: RunContext,
    feed_settings: FeedSettings,
    days: float | None,
    resume: RunRecord | None,
    progress: ProgressSink | None,
    new_id: str | None = None,
    preflight: dict[str, Any] | None = None,
) -> RunOutcome:
    """A new live run (or the resume of `resume`), driven until it ends."""
    from engine.feeds.exchange import LiveFeed
    from engine.kernel.live import live_specs

    feed = LiveFeed(feed_settings)
    try:
        await feed.start()
        specs = await live_specs(feed)
        quotes = {s.quote for s in specs.values()}
        if len(quotes) != 1:
            raise ConfigError(
                f"symbols are quoted in {', '.join(sorted(quotes))}; one run values everything "
                "in one quote currency, so choose symbols with the same quote."
            )
        quote = quotes.pop()
        with ctx.store() as (store, database):
            if resume is None:
                run_id, market_start, planned_end = create_live_run(
                    ctx, store, feed_settings, days, quote, new_id, preflight
                )
                settings, checkpoint = ctx.settings, None
            else:
                run_id, planned_end = resume.run_id, resume.planned_end
                settings = settings_from_snapshot(resume.config.get("settings", {}))
                ctx.choice = StrategyChoice.from_config(resume.config, settings.strategy)
                checkpoint = store.load_checkpoint(run_id)
                market_start = resume.started_at
                if resume.status is not RunStatus.RUNNING:
                    store.reopen_run(run_id)
            window = (market_start, planned_end, quote)
            live = _LiveRun(ctx, feed, specs, settings, store, run_id, window)
            return await live.drive(database, checkpoint, progress)
    finally:
        await feed.close()


class _LiveRun:
    def __init__(
        self,
        ctx: RunContext,
        feed: LiveFeed,
        specs: dict[str, SymbolSpec],
        settings: Any,
        store: Store,
        run_id: str,
        window: tuple[datetime | None, datetime | None, str],
    ) -> None:
        self.ctx, self.feed, self.specs, self.settings = ctx, feed, specs, settings
        self.store, self.run_id = store, run_id
        self.market_start, self.planned_end, self.quote = window

    async def drive(
        self, database: str, checkpoint: Any, progress: ProgressSink | None
    ) -> RunOutcome:
        from engine.kernel.live import build_live_pipeline, drive

        ctx, store, run_id = self.ctx, self.store, self.run_id
        settings, specs = self.settings, self.specs
        metrics = RunMetrics(run_id)
        resumed_at = checkpoint.last_event_ts if checkpoint else None
        with ExitStack() as stack:
            ops = stack.enter_context(ctx.duties.session(store, run_id, resumed_at=resumed_at))

            watch = CallbackWatch()
            timeout = settings.strategy_timeout_seconds
            stack.enter_context(watching(watch, timeout, None, store, run_id))

            def build(observer: Callable[[Event], None]) -> Pipeline:
                pipeline = build_live_pipeline(
                    settings,
                    specs,
                    ctx.build_strategy(watch),
                    observers=[observer, ops.observe, metrics.observe],
                )
                pipeline.signals.watch = watch
                return pipeline

            stop_signal = None
            # SIGTERM (docker stop, service managers) stops a live run as Ctrl-C does.
            loop = asyncio.get_running_loop()
            task = asyncio.current_task()
            terminated: list[int] = []

            def on_sigterm() -> None:
                terminated.append(signal.SIGTERM)
                if task is not None:
                    task.cancel()

            loop.add_signal_handler(signal.SIGTERM, on_sigterm)
            attendant: RunAttendant | None = None
            port: int | None = None
            checks = {"database": database_check(store)}
            try:
                with (
                    serving(
                        metrics, checks, ctx.settings.claire_http_host, ctx.settings.http_port()
                    ) as server,
                    held_run(ctx, store, run_id, build, checkpoint) as (run, done),
                ):
                    ops.attach(run)
                    run.reconnect = self.feed.reconnect
                    attendant = ctx.attendant(store, run)
                    port = server.port if server is not None else None
                    if port is not None and attendant is not None:
                        note_http_port(ctx.data_dir, run_id, port)
                    feed_progress = ctx.progress(
                        run.pipeline, progress, self.market_start, self.planned_end, self.quote
                    )
                    await drive(
                        self.feed,
                        run.pipeline,
                        attended(run.process, attendant),
                        warmup=checkpoint is None,
                        until=self.planned_end,
                        progress=feed_progress,
                    )
            except asyncio.CancelledError:
                # asyncio turns Ctrl-C into cancellation; SIGTERM cancels through on_sigterm.
                stop_signal = terminated[0] if terminated else signal.SIGINT
            except OperatorStop:
                pass  # recorded as stopped, with the operator's reason
            finally:
                loop.remove_signal_handler(signal.SIGTERM)
                if attendant is not None:
                    attendant.close()
        # The session has ended: its reports and notifications that failed are known now.
        problems = [*(attendant.problems() if attendant is not None else []), *ops.problems]
        ctx.warn(problems)
        note_problems(ctx.data_dir, run_id, problems)  # and `claire status` says them
        summary = ctx.summary(run.pipeline, None, self.quote, self.market_start)
        return ctx.outcome(store, database, run_id, summary, done, None, stop_signal, port)


__all__ = ["drive_live"]
