"""A paper run in this data folder: started, resumed or run as services, and closed.

A run's life: its record is created (engine.run.create), it is held and driven by a
runtime (in this process: engine.run.replay_drive and engine.run.live_drive; as
supervised service processes: engine.run.services_runtime), attended between its
market events (engine.run.steward), and its end is recorded (engine.run.session).

How a run ends: `completed`; `stopped` (Ctrl-C, SIGTERM, an operator's stop);
interrupted, when the database stayed away longer than DB_OUTAGE_TOLERANCE_SECONDS
or the process died (both resumable); `failed` only for an error a resume would
repeat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.clock import Clock, WallClock
from engine.config import Settings
from engine.feeds.replay import PerpetualFiles, log_rejected, parse_speed
from engine.home.folder import resolve_data_dir
from engine.kernel.progress import ProgressSink
from engine.kernel.recorded import plan_for_run, record_rejected
from engine.kernel.run_checks import strategy_warnings
from engine.limits import check_days
from engine.run.attendant import Attend
from engine.run.context import RunContext
from engine.run.create import create_replay_run
from engine.run.outcome import RunOutcome
from engine.run.replay_drive import drive_replay
from engine.run.resumable import resumable
from engine.signal.loader import StrategyChoice
from engine.store import RunRecord, RunStatus, Store

if TYPE_CHECKING:
    from engine.feeds.exchange import FeedSettings


class PaperRunner:
    """Opens the data folder's database, runs or resumes a run, and closes it all.

    `choice` is the strategy and its parameters (default: the settings' STRATEGY);
    `on_warning` hears, before a new run starts, what looks wrong about it.
    """

    def __init__(
        self,
        settings: Settings,
        data_dir: Path | str | None = None,
        clock: Clock | None = None,
        flush_every_events: int = 1000,
        choice: StrategyChoice | None = None,
        on_warning: Callable[[str], None] | None = None,
        attend: Attend | None = None,
        reports: bool = False,
    ) -> None:
        self.ctx = RunContext(
            settings,
            resolve_data_dir(data_dir, settings),
            clock or WallClock(),
            choice or StrategyChoice(settings.strategy),
            flush_every_events=flush_every_events,
            attend=attend,
            reports=reports,
            on_warning=on_warning,
        )

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def data_dir(self) -> Path:
        return self.ctx.data_dir

    @property
    def choice(self) -> StrategyChoice:
        return self.ctx.choice

    def start(
        self,
        files: list[Path],
        days: float | None,
        speed: str,
        progress: ProgressSink | None = None,
        perpetual: PerpetualFiles | None = None,
        *,
        run_id: str | None = None,
        preflight: dict[str, Any] | None = None,
    ) -> RunOutcome:
        """A replay run; `run_id` names it (default: a new id), `preflight` is kept with it."""
        factor = parse_speed(speed)
        with self.ctx.store() as (store, database):
            run_id, plan = create_replay_run(
                self.ctx, store, files, days, speed, perpetual, run_id, preflight
            )
            return drive_replay(
                self.ctx, store, database, run_id, plan, self.settings, None, factor, speed,
                progress,
            )  # fmt: skip

    def start_live(
        self,
        feed_settings: FeedSettings,
        days: float | None,
        progress: ProgressSink | None = None,
        *,
        run_id: str | None = None,
        preflight: dict[str, Any] | None = None,
    ) -> RunOutcome:
        """A live run; `run_id` names it (default: a new id), `preflight` is kept with it."""
        from engine.run.live_drive import drive_live  # a replay starts without it

        check_days(days)
        strategy = self.choice.strategy_class()  # fail before anything is created
        kinds = {"trades"} | ({"candles"} if feed_settings.candle_timeframe else set())
        self.ctx.warn(strategy_warnings(strategy, kinds))
        return asyncio.run(
            drive_live(self.ctx, feed_settings, days, None, progress, run_id, preflight)
        )

    def start_services(
        self,
        files: list[Path],
        days: float | None,
        perpetual: PerpetualFiles | None = None,
        ports: dict[str, int] | None = None,
        speed: str = "max",
        *,
        run_id: str | None = None,
        detached: bool = False,
    ) -> tuple[str, RunStatus, int | None]:
        """A replay run as one process per service over Redis Streams, supervised."""
        # The services' modules (Redis's client among them) load only for a run as services.
        from engine.run.services_runtime import run_services

        return run_services(
            self.ctx, files, days, perpetual, ports, speed,
            run_id=run_id, detached=detached, reports=self.ctx.reports,
        )  # fmt: skip

    def start_live_services(
        self,
        feed_settings: FeedSettings,
        days: float | None,
        ports: dict[str, int] | None = None,
        *,
        run_id: str | None = None,
        detached: bool = False,
    ) -> tuple[str, RunStatus, int | None]:
        """A live run as one process per service over Redis Streams, supervised; its
        daily reports as each day ends, as a live run's in one process."""
        from engine.run.live_services import run_live_services

        check_days(days)
        strategy = self.choice.strategy_class()  # fail before anything is created
        kinds = {"trades"} | ({"candles"} if feed_settings.candle_timeframe else set())
        self.ctx.warn(strategy_warnings(strategy, kinds))
        return run_live_services(
            self.ctx, feed_settings, days, ports, run_id=run_id, detached=detached, reports=True
        )

    def record_services_run(
        self, files: list[Path], days: float | None, speed: str, run_id: str
    ) -> bool:
        """Record a replay run whose services are started elsewhere (a container stack)."""
        from engine.run.services_runtime import record_services_run

        return record_services_run(self.ctx, files, days, speed, run_id)

    def resume(
        self,
        run_id: str | None = None,
        speed: str | None = None,
        progress: ProgressSink | None = None,
    ) -> RunOutcome:
        """Continue an interrupted run, at the speed it was started with unless `speed`."""
        with self.ctx.store() as (store, _):
            run = resumable(store, self.data_dir, run_id, services=False)
            live = run.config.get("live")
            if live:
                from engine.feeds.exchange import FeedSettings

                feed_settings = FeedSettings.from_env(
                    live["symbols"],
                    exchange=live["exchange"],
                    market=live["market"],
                    candle_timeframe=live.get("timeframe", "5m"),
                )
        if live:
            from engine.run.live_drive import drive_live

            return asyncio.run(drive_live(self.ctx, feed_settings, None, run, progress))
        with self.ctx.store() as (store, database):
            replay = run.config.get("replay") or {}
            plan, self.ctx.choice, settings = plan_for_run(run)
            log_rejected(plan)
            record_rejected(store, run.run_id, plan)
            speed = speed or replay.get("speed") or "max"
            factor = parse_speed(speed)
            checkpoint = store.load_checkpoint(run.run_id)
            if run.status is not RunStatus.RUNNING:
                store.reopen_run(run.run_id)
            return drive_replay(
                self.ctx, store, database, run.run_id, plan, settings, checkpoint, factor,
                speed, progress,
            )  # fmt: skip

    def resume_services(
        self, run_id: str | None = None, *, detached: bool = False
    ) -> tuple[str, RunStatus, int | None]:
        """Continue an interrupted run as services, from the state its services kept in
        Redis; supervised as when it started."""
        from engine.run.services_runtime import resume_services

        return resume_services(self.ctx, run_id, detached=detached, reports=self.ctx.reports)

    def resumable(self, store: Store, run_id: str | None) -> RunRecord:
        """The run `resume(run_id)` would continue (the newest interrupted one by default)."""
        return resumable(store, self.data_dir, run_id)


__all__ = ["PaperRunner"]
