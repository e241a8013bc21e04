"""One service process of a run (`claire engine run NAME`), with the incident desk
wired in for the alerts service and the strategy's watchdog for the services that
build or call the strategy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from engine.config import Settings
from engine.events import Alert
from engine.incident_kinds import IncidentType
from engine.incidents.desk import IncidentDesk
from engine.run.watchdog import end_process, loading_strategy, watching
from engine.services.host import ServiceStop, StrategyGuard, run_service
from engine.signal.watch import CallbackWatch
from engine.store import Store


def strategy_guard(settings: Settings, run_id: str) -> StrategyGuard:
    """The watchdog of engine.run.watchdog over a service's strategy: a hang fails the run
    (recorded here; the supervisor stops the others), a stop ends a stuck call."""
    timeout_s = settings.strategy_timeout_seconds

    def loading(store: Store, strategy: str) -> AbstractContextManager[None]:
        return loading_strategy(timeout_s, strategy, end_process(store, run_id, record_stops=False))

    @contextmanager
    def guarded(store: Store, watch: CallbackWatch, stop: ServiceStop) -> Iterator[None]:
        with watching(watch, timeout_s, stop, store, run_id, record_stops=False):
            yield

    return StrategyGuard(loading, guarded)


def run_service_process(
    name: str, run_id: str, data_dir: Path, settings: Settings, port: int | None = None
) -> None:
    """Run one service of `run_id` until SIGTERM or Ctrl-C (the feed also ends with its data)."""

    def open_incident(store: Store, kind: IncidentType, alert: Alert) -> None:
        IncidentDesk(data_dir, settings, store).open_for_alert(kind, alert, run_id)

    run_service(
        name,
        run_id,
        data_dir,
        settings,
        port,
        incidents=open_incident,
        guard=strategy_guard(settings, run_id),
    )


__all__ = ["run_service_process", "strategy_guard"]
