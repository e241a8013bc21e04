"""What every step of a run's lifecycle shares: the settings, the data folder, the
clock, the strategy, the run's duties and what has been said about it so far."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.clock import Clock
from engine.config import Settings
from engine.errors import StrategyError
from engine.feeds.replay import ReplayPlan
from engine.home.database import open_store
from engine.kernel.persisted import PersistedRun
from engine.kernel.pipeline import Pipeline, RunSummary, summarize
from engine.kernel.progress import ProgressFeed, ProgressSink
from engine.run.attendant import Attend, RunAttendant
from engine.run.duties import RunOps
from engine.run.outcome import RunOutcome
from engine.signal.base import Strategy
from engine.signal.loader import StrategyChoice, json_values
from engine.signal.watch import CallbackWatch, StrategyTimeout
from engine.store import Store
from engine.store.retry import OutageTolerance

log = logging.getLogger("claire.run")


@dataclass
class RunContext:
    settings: Settings
    data_dir: Path
    clock: Clock
    choice: StrategyChoice
    flush_every_events: int = 1000
    attend: Attend | None = None
    reports: bool = False  # a replay's daily and final reports as it goes (a live run's always)
    on_warning: Callable[[str], None] | None = None
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tolerance = OutageTolerance(seconds=self.settings.db_outage_tolerance_seconds)
        self.duties = RunOps(self.settings, self.data_dir)  # logs, alerts out, reports

    def store(self) -> AbstractContextManager[tuple[Store, str]]:
        return open_store(self.settings, self.data_dir)

    def warn(self, warnings: list[str]) -> None:
        for warning in warnings:
            self.warnings.append(warning)
            log.warning(warning, extra={"event": "run_warning"})
            if self.on_warning is not None:
                self.on_warning(warning)

    def config(self, settings: Settings, preflight: dict[str, Any] | None = None) -> dict[str, Any]:
        config = {"settings": settings.redacted(), "strategy": self.choice.as_config()}
        if preflight is not None:
            config["preflight"] = preflight  # the go/no-go the run started on
        return config

    def build_strategy(self, watch: CallbackWatch) -> Strategy:
        """The strategy built under the watchdog; `sys.exit` in its constructor is its error."""
        choice = self.choice
        name = choice.strategy_class().__name__
        try:
            with watch.running(name, "__init__"):
                return choice.build()
        except StrategyTimeout:
            raise StrategyError(watch.timeout_message) from None
        except SystemExit as exc:
            raise StrategyError(
                f"strategy {name} called sys.exit({exc.code!r}) in __init__; a strategy never "
                "ends the process: fix the strategy and start a new run"
            ) from None

    def attendant(self, store: Store, run: PersistedRun) -> RunAttendant | None:
        return self.attend(store, run) if self.attend is not None else None

    def progress(
        self,
        pipeline: Pipeline,
        sink: ProgressSink | None,
        start: datetime | None,
        end: datetime | None,
        quote: str,
    ) -> ProgressFeed | None:
        if sink is None:
            return None
        return ProgressFeed(pipeline, sink, start=start, end=end, quote=quote)

    def summary(
        self, pipeline: Pipeline, plan: ReplayPlan | None, quote: str, start: datetime | None
    ) -> RunSummary:
        return summarize(
            pipeline,
            plan,
            quote,
            strategy=self.choice.spec,
            strategy_params=json_values(self.choice.parameters()),
            market_start=start,
        )

    def outcome(
        self,
        store: Store,
        database: str,
        run_id: str,
        summary: RunSummary,
        done: int,
        speed: str | None,
        stop_signal: int | None,
        http_port: int | None = None,
    ) -> RunOutcome:
        record = store.get_run(run_id)
        assert record is not None
        return RunOutcome(
            run_id,
            record.status,
            summary,
            self.data_dir,
            database,
            done,
            started_at=record.started_at,
            ended_at=record.ended_at,
            end_reason=record.end_reason,
            speed=speed,
            warnings=tuple(self.warnings),
            stop_signal=stop_signal,
            data_source=record.data_source,
            http_port=http_port,
        )


def database_check(store: Store) -> Callable[[], str | None]:
    def check() -> str | None:
        store.db.fetch_one("SELECT 1 AS one", {})
        return None

    return check


__all__ = ["RunContext", "database_check"]
