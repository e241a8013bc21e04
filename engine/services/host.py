"""`claire engine run NAME`: one service of a run, in this process, until stopped.

The run (its settings, strategy and data) is read from PostgreSQL, where the
supervisor recorded it; the bus is the data folder's Redis (or `CLAIRE_REDIS_URL`),
with the run's own stream names. SIGTERM and SIGINT stop the service between two
steps: what it committed stays, what it had not is done again by its next start.
Each service serves `/health`, `/status` and `/metrics` on its port.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, Final

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from engine.alerts.incidents import IncidentTrigger
from engine.alerts.notify import Notifier
from engine.bus.redis import RedisBus
from engine.config import Settings
from engine.errors import ClaireError, StrategyError
from engine.events import Alert, Event
from engine.feeds.replay import paced, parse_speed
from engine.home.processes import note_problems
from engine.incident_kinds import IncidentType
from engine.kernel.pipeline import build_replay_pipeline
from engine.runtime.orphans import end_with_parent
from engine.runtime.redis import redis_service
from engine.services.arrivals import ArrivalLatency
from engine.services.control import RiskControl
from engine.services.feed import FeedService
from engine.services.http import HealthServer
from engine.services.live_run import is_live, live_parts, live_specs_of, warm_up
from engine.services.run_metrics import RunMetrics
from engine.services.run_stop import StopFlag, note_feed_stopped
from engine.services.worker import (
    SERVICE_STREAMS,
    STEPS,
    Components,
    ServiceWorker,
    build_components,
)
from engine.services.writer import GROUP as WRITER_GROUP
from engine.services.writer import WriterService
from engine.signal.base import Strategy
from engine.signal.watch import CallbackWatch
from engine.stopping import StopRequested
from engine.store import EventWriter, RunRecord, RunStatus, Store
from engine.store.retry import OutageTolerance

log = logging.getLogger("claire.services")

PORTS: Final = {
    "feed": 8000,
    "signal": 8001,
    "risk": 8002,
    "execution": 8003,
    "portfolio": 8004,
    "writer": 8005,
    "alerts": 8006,
}
SERVICES: Final = ("feed", "execution", "portfolio", "signal", "risk", "writer", "alerts")
# The run figures on each service's /metrics: those of the streams it publishes.
PUBLISHES: Final = {
    "feed": ("market_data",),
    "execution": ("order_results",),
    "portfolio": ("portfolio_snapshots",),
    "signal": ("signals",),
    "risk": ("orders", "risk_events", "alerts"),
    "writer": (),
    "alerts": ("alerts",),
}
MAX_LAG: Final = 100_000  # unread messages before /health turns 503


# Opens the incident an alert calls for, with the service's store (engine.run wires it).
IncidentOpening = Callable[[Store, IncidentType, Alert], None]


def stream_prefix(run_id: str) -> str:
    return f"claire:{run_id}"


class ServiceStop:
    """Set by SIGTERM or SIGINT; the service stops between two steps."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None


@dataclass(frozen=True)
class StrategyGuard:
    """The strategy's watchdog, handed in from above (engine.run.service_process):
    `loading(store, name)` while the strategy is built, `watching(store, watch, stop)`
    while the signal service calls it. A strategy that hangs fails the run."""

    loading: Callable[[Store, str], AbstractContextManager[None]]
    watching: Callable[[Store, CallbackWatch, ServiceStop], AbstractContextManager[None]]


@contextmanager
def _stop_on_signals(stop: ServiceStop) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.signum = signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@dataclass(frozen=True)
class ServiceMetrics:
    """What one service's `/metrics` carries, in its own registry."""

    registry: CollectorRegistry
    consumed: Counter
    published: Counter
    latency: Histogram
    lag: Gauge
    run: RunMetrics


def service_metrics(name: str, run_id: str) -> ServiceMetrics:
    registry = CollectorRegistry()
    consumed = Counter("claire_events_consumed", "Events handled", ["stream"], registry=registry)
    published = Counter("claire_events_published", "Events published", registry=registry)
    latency = Histogram(
        "claire_step_seconds", "Time to handle one step", registry=registry,
        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    )  # fmt: skip
    restarts = Gauge("claire_service_restarts", "Restarts of this service", registry=registry)
    restarts.set(int(os.environ.get("CLAIRE_SERVICE_RESTARTS", "0")))
    lag = Gauge("claire_consumer_lag", "Messages not yet handled", ["stream"], registry=registry)
    run = RunMetrics(run_id, registry, PUBLISHES[name])
    return ServiceMetrics(registry, consumed, published, latency, lag, run)


def run_service(
    name: str,
    run_id: str,
    data_dir: Path,
    settings: Settings,
    port: int | None = None,
    stop: Callable[[], bool] | None = None,
    incidents: IncidentOpening | None = None,
    guard: StrategyGuard | None = None,
) -> None:
    """Run one service of `run_id` until it is stopped (or, for the feed, its data ends).

    `incidents` opens an incident for an alert (INCIDENT_ON_ALERT, alerts service only);
    without it the alerts service only notifies. `guard` watches the strategy's code.
    A strategy error fails the run, recorded here: its supervisor does not restart a
    service for it, and stops the others.
    """
    from engine.home.database import open_store

    if name not in SERVICES:
        raise ClaireError(f"service {name!r} is not one of {', '.join(SERVICES)}.")
    supervisor = os.environ.get("CLAIRE_SUPERVISOR_PID")
    if supervisor and supervisor.isdigit():
        end_with_parent(int(supervisor))  # never outlives the supervisor (kill -9 included)
    stopper = ServiceStop()
    with ExitStack() as stack:
        if stop is None:
            stack.enter_context(_stop_on_signals(stopper))
        # A service (re)started while the database is down waits for it, within the tolerance.
        patient = OutageTolerance(seconds=settings.db_outage_tolerance_seconds)
        store, _ = patient.call(
            lambda: stack.enter_context(open_store(settings, data_dir)), "opening the database"
        )
        redis_server = redis_service(data_dir)
        stack.callback(redis_server.stop)
        bus = RedisBus(redis_server.start(), prefix=stream_prefix(run_id), max_len=200_000)
        stack.callback(bus.close)
        run = patient.call(lambda: store.get_run(run_id), f"reading run {run_id}")
        if run is None:
            raise ClaireError(f"no run {run_id} in {data_dir}.")
        metrics = service_metrics(name, run_id)
        signalled = stop or stopper
        told = StopFlag(bus, name)  # a stack's steward stops its services through Redis

        def should_stop() -> bool:
            return signalled() or told()

        service = _Service(name, run, bus, store, stack, patient, metrics, should_stop, data_dir)
        service.serve_health(PORTS[name] if port is None else port, settings.claire_http_host)
        log.info("service started", extra={"event": "service_start", "service": name})
        if not should_stop():
            _run_body(service, incidents, guard, stopper)
        if told.told and not signalled():
            _idle_after_stop(service, signalled)


def _run_body(
    service: _Service,
    incidents: IncidentOpening | None,
    guard: StrategyGuard | None,
    stopper: ServiceStop,
) -> None:
    if service.name == "feed":
        service.run_feed()
    elif service.name == "writer":
        service.run_writer()
    else:
        try:
            service.run_worker(incidents, guard, stopper)
        except StrategyError as exc:
            why, run_id, store = str(exc), service.run.run_id, service.store
            service.patient.call(
                lambda: store.end_run(run_id, RunStatus.FAILED, datetime.now(UTC), why),
                f"recording the end of run {run_id}",
            )
            raise


def _idle_after_stop(service: _Service, signalled: Callable[[], bool]) -> None:
    """Told to stop by the run's steward: stay up, idle, until the process is ended (a
    container that exited would be started again)."""
    if service.name == "feed":
        note_feed_stopped(service.bus)
    service.figures["state"] = "stopped"
    log.info("service stopped by the operator", extra={"event": "service_stopped"})
    while not signalled():
        time.sleep(0.2)


class _Service:
    """One service process's parts while it runs: its bus, store, metrics and figures."""

    def __init__(
        self,
        name: str,
        run: RunRecord,
        bus: RedisBus,
        store: Store,
        stack: ExitStack,
        patient: OutageTolerance,
        metrics: ServiceMetrics,
        should_stop: Callable[[], bool],
        data_dir: Path,
    ) -> None:
        from engine.kernel.recorded import plan_for_run

        self.name, self.run, self.bus, self.store, self.stack = name, run, bus, store, stack
        self.data_dir = data_dir
        self.patient, self.metrics, self.should_stop = patient, metrics, should_stop
        self.figures: dict[str, Any] = {
            "service": name,
            "run_id": run.run_id,
            "state": "starting",
        }
        if is_live(run):  # a live run: no replay data, its specs as recorded
            self.plan, self.choice, self.run_settings = None, *live_parts(run)
        else:
            self.plan, self.choice, self.run_settings = plan_for_run(run)

    def serve_health(self, port: int, host: str) -> None:
        bus, store = self.bus, self.store

        def bus_ok() -> str | None:
            return None if bus.redis.ping() else "the bus does not answer"

        def db_ok() -> str | None:
            with store.db.session(timeout_s=1.0) as session:  # an outage answers at once
                session.fetch_one("SELECT 1 AS one", {})
            return None

        # Lag is measured when asked (health, status, a scrape), never on the hot path.
        probe = LagProbe(bus, self.name)
        for stream in probe.streams:
            self.metrics.lag.labels(stream).set_function(partial(probe.of, stream))

        def lag_ok() -> str | None:
            worst = max(probe().values(), default=0)
            return f"consumer lag {worst} over {MAX_LAG}" if worst > MAX_LAG else None

        http = HealthServer(
            self.name,
            port,
            self.metrics.registry,
            {"bus": bus_ok, "database": db_ok, "lag": lag_ok},
            lambda: {**self.figures, "lag": probe()},
            host,
        )
        http.start()
        self.stack.callback(http.stop)

    def run_feed(self) -> None:
        create_groups(self.bus)  # before the first message: trimming never skips a group
        if self.plan is None:
            # The exchange client is imported by a live feed only: a replay's services
            # start without it.
            from engine.services.live_feed import run_live_feed

            self.figures["state"] = "running"
            live = run_live_feed(
                self.bus, self.run, self.run_settings, self.should_stop,
                self.metrics.run.observe_all,
            )  # fmt: skip
            self._fed(live.finished, live.published)
            return
        speed = str((self.run.config.get("replay") or {}).get("speed") or "max")
        factor = parse_speed(speed)
        plan = self.plan
        feed = FeedService(
            self.bus, lambda: paced(plan.events(), factor), self.metrics.run.observe_all
        )
        self.figures["state"] = "running"
        self._fed(feed.run(self.should_stop), feed.published)

    def _fed(self, finished: bool, published: int) -> None:
        self.figures.update(state="done" if finished else "stopped", published=published)
        self.metrics.published.inc(published)
        while finished and not self.should_stop():
            time.sleep(0.2)  # stay up for health checks until the supervisor stops us

    def run_writer(self) -> None:
        arrivals = None if self.plan is not None else ArrivalLatency(self.bus)
        writer = WriterService(
            self.bus, EventWriter(self.store, self.run.run_id), patience=self.patient,
            arrivals=arrivals,
        )  # fmt: skip
        writer.prepare()
        self.figures["state"] = "running"
        self.stack.callback(_save_latency, self.bus, writer)
        if arrivals is not None:  # a live run: arrival -> fill committed, for the benchmark
            self.stack.callback(arrivals.save, "writer:fill_arrival_latency")
        rounds = 0
        while not self.should_stop():
            took = writer.run_once(self.should_stop)
            self.metrics.consumed.labels("all").inc(took)
            rounds += 1
            if rounds % 50 == 0:
                for stream in SERVICE_STREAMS:
                    self.bus.trim_acknowledged(stream)
            self.figures.update(written=writer.written, processed=writer.processed)

    def run_worker(
        self, incidents: IncidentOpening | None, guard: StrategyGuard | None, stop: ServiceStop
    ) -> None:
        outputs: list[Event] = []
        settings = self.run_settings
        if self.plan is None:
            specs = live_specs_of(self.run)
        else:
            specs = build_replay_pipeline(settings, self.plan, self._strategy(guard)).specs
        parts = build_components(settings, specs, self._strategy(guard), outputs.append)
        committed = None
        if self.name == "alerts":
            committed = self.stack.enter_context(
                _notifying(settings, self.run.run_id, self.store, incidents, self.data_dir)
            )
        control = RiskControl(self.bus, parts.risk, parts.clock) if self.name == "risk" else None
        if self.plan is None and self.name == "signal":  # arrival -> decision, measured only
            arrivals = ArrivalLatency(self.bus)
            committed = arrivals.handled
            self.stack.callback(arrivals.save, "signal:decision_latency")
        worker = ServiceWorker(
            self.name, self.bus, parts, outputs, committed=committed, control=control
        )
        fresh = self.plan is None and self.bus.redis.get(worker.state_key) is None
        worker.prepare()
        self.figures["state"] = "running"
        watched: AbstractContextManager[None] = nullcontext()
        if guard is not None and self.name == "signal":  # the one that calls the strategy
            watched = guard.watching(self.store, parts.signals.watch, stop)
        try:
            with watched:
                if fresh:  # a live run's first start: the feed's warm-up, watched too
                    warm_up(self.name, self.bus, parts, self.should_stop)
                self._steps(worker, parts, outputs)
        except StopRequested:
            pass  # the watchdog ended a stuck call on the stop: the step is done again later
        self.figures["state"] = "stopped"

    def _strategy(self, guard: StrategyGuard | None) -> Strategy:
        """The run's strategy, built under the watchdog when there is one."""
        if guard is None:
            return self.choice.build()
        with guard.loading(self.store, self.choice.strategy_class().__name__):
            return self.choice.build()

    def _steps(self, worker: ServiceWorker, parts: Components, outputs: list[Event]) -> None:
        metrics = self.metrics
        while not self.should_stop():
            began = time.perf_counter()
            if not worker.run_step(self.should_stop):
                break
            metrics.latency.observe(time.perf_counter() - began)
            metrics.published.inc(len(outputs))
            metrics.run.observe_time(parts.clock.now())
            metrics.run.observe_all(outputs)
            self.figures.update(
                groups=worker.groups_done,
                processed=worker.processed,
                published=worker.published,
                last_event_ts=worker.last_event_ts,
            )


@contextmanager
def _notifying(
    settings: Settings,
    run_id: str,
    store: Store,
    incidents: IncidentOpening | None,
    data_dir: Path,
) -> Iterator[Callable[[list[Event], list[Event]], None]]:
    """The alerts service sends every alert it handles or raises to the notification
    channels, and opens the incidents `INCIDENT_ON_ALERT` asks for (in the background),
    once its step is committed. A step redone after a crash may send one again.
    Notifications that fail are the run's problems: its end and `claire status` say them."""
    notifier = Notifier.from_settings(settings).start()
    noted: list[str] = []

    def note() -> None:
        problems = notifier.problems()
        if problems != noted:
            note_problems(data_dir, run_id, problems)
            noted[:] = problems

    mapping = settings.incident_on_alert_map()

    def open_incident(kind: IncidentType, alert: Alert) -> None:
        if incidents is not None:
            incidents(store, kind, alert)

    trigger = IncidentTrigger(mapping, open_incident) if mapping and incidents else None

    def send(inputs: list[Event], outputs: list[Event]) -> None:
        for event in (*inputs, *outputs):
            if isinstance(event, Alert):
                notifier.notify_alert(event, run_id)
                if trigger is not None:
                    trigger.on_alert(event)
        note()

    try:
        yield send
    finally:
        if trigger is not None:
            trigger.close()
        notifier.close()
        note()


def create_groups(bus: RedisBus) -> None:
    """Every consumer group of a run, each from the start of its stream.

    Done before anything is published (by the supervisor and by the feed), so no
    service's group comes to exist after the writer trimmed what the others read.
    """
    for service, steps in STEPS.items():
        for step in steps:
            for stream, _ in step.inputs:
                bus.create_group(stream, service)
    for stream in SERVICE_STREAMS:
        bus.create_group(stream, WRITER_GROUP)


def _save_latency(bus: RedisBus, writer: WriterService) -> None:
    """Fill latencies (market event published -> fill committed), for the benchmark."""
    values = sorted(writer.fill_latencies_ms)
    if not values:
        return
    summary = {
        "fills": len(values),
        "p50_ms": values[len(values) // 2],
        "p99_ms": values[min(len(values) - 1, int(len(values) * 0.99))],
        "max_ms": values[-1],
    }
    bus.redis.set(bus.key("writer:fill_latency"), json.dumps(summary))


class LagProbe:
    """Unread plus unacknowledged messages per input stream of a service's consumer
    group, measured at most every `ttl_s` seconds (counting unread entries reads them)."""

    def __init__(self, bus: RedisBus, service: str, ttl_s: float = 2.0) -> None:
        self.bus = bus
        self.group = WRITER_GROUP if service == "writer" else service
        inputs = {s for step in STEPS.get(service, ()) for s, _ in step.inputs}
        self.streams = tuple(sorted(inputs)) if service in STEPS else SERVICE_STREAMS
        if service == "feed":
            self.streams = ()
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._at = -float("inf")
        self._last: dict[str, int] = {}

    def __call__(self) -> dict[str, int]:
        with self._lock:
            if time.monotonic() - self._at >= self.ttl_s:
                self._last = {s: stream_lag(self.bus, s, self.group) for s in self.streams}
                self._at = time.monotonic()
            return dict(self._last)

    def of(self, stream: str) -> int:
        return self().get(stream, 0)


def stream_lag(bus: RedisBus, stream: str, group: str) -> int:
    key = bus.key(stream)
    try:
        groups = bus.redis.xinfo_groups(key)
    except redis.ResponseError:  # the stream does not exist yet
        return 0
    for info in groups:
        gname = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
        if gname != group:
            continue
        if info.get("lag") is not None:  # Redis 7 counts it
            return int(info["lag"]) + int(info["pending"])
        return len(_unread(bus, key, info, MAX_LAG + 1)) + int(info["pending"])
    return 0


def drained(bus: RedisBus) -> bool:
    """Whether every group has read and acknowledged every message of every stream.

    A supervisor asks this every tenth of a second once the feed is done: one XINFO per
    stream and at most one entry read per group, however far behind a group is.
    """
    for stream in SERVICE_STREAMS:
        key = bus.key(stream)
        try:
            groups = bus.redis.xinfo_groups(key)
        except redis.ResponseError:  # the stream does not exist yet
            continue
        for info in groups:
            if int(info["pending"]) or _unread(bus, key, info, 1):
                return False
    return True


def finished(bus: RedisBus) -> bool:
    """Whether the feed has published all it will (`feed:done`: the file's end, or a live
    run's planned end) and every service has handled all of it."""
    return bool(bus.redis.get(bus.key("feed:done"))) and drained(bus)


def _unread(bus: RedisBus, key: str, group: dict[str, Any], count: int) -> list[Any]:
    """Up to `count` entries of stream `key` after the last one delivered to `group`."""
    last = group["last-delivered-id"]
    last = last.decode() if isinstance(last, bytes) else last
    return list(bus.redis.xrange(key, min=f"({last}", max="+", count=count) or [])
