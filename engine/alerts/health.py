"""Wall-clock alert rules in a thread of their own: memory and service health.

These rules depend on the machine, not on the market, so they run on wall time,
outside the pipeline: they can never change a fill. Each look (every
`CLAIRE_HEALTH_INTERVAL_S`) reads the memory in use and asks every health check
how its services are; firing and resolved alerts go to `emit` (the alerts
service's outbox, so they are stored with the run, and the notifier, so they
reach an operator even while the pipeline is stuck).

Health checks are plain callables returning `ServiceHealth` rows. A run in one
process registers `PipelineProbe` (the engine itself: stuck inside one market
event?); when services run as processes of their own, register an `http_check`
per service's `GET /health`.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Sequence
from decimal import Decimal

from engine.alerts.book import AlertBook
from engine.alerts.rules import ServiceHealth, health_readings, rules
from engine.clock import Clock, WallClock
from engine.config import Settings
from engine.events import Alert

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Sequence[ServiceHealth]]


def system_memory_frac() -> Decimal:
    import psutil

    return Decimal(str(psutil.virtual_memory().percent)) / 100


class PipelineProbe:
    """The single-process engine is unhealthy while one market event keeps it busy.

    `busy` says whether the pipeline is inside a market event now and `progress`
    counts the market events done; busy with no progress since the last look is a
    stuck engine (the rule's duration turns that into `service down > 30 s`).
    """

    def __init__(
        self, busy: Callable[[], bool], progress: Callable[[], int], name: str = "engine"
    ) -> None:
        self._busy = busy
        self._progress = progress
        self.name = name
        self._last: int | None = None

    def __call__(self) -> list[ServiceHealth]:
        busy, done = self._busy(), self._progress()
        stuck = busy and done == self._last
        self._last = done
        reason = "busy with one market event since the last look" if stuck else ""
        return [ServiceHealth(self.name, not stuck, reason)]


def http_check(name: str, url: str, timeout_s: float = 2.0) -> HealthCheck:
    """A service's `GET /health`: healthy on 200 with `{"status": "ok"}`."""

    def check() -> list[ServiceHealth]:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
                body = json.loads(response.read() or b"{}")
                ok = response.status == 200 and body.get("status") == "ok"
                return [ServiceHealth(name, ok, "" if ok else f"status {body.get('status')!r}")]
        except Exception as exc:  # unreachable, 503, bad JSON: all mean unhealthy
            return [ServiceHealth(name, False, type(exc).__name__)]

    return check


class HealthMonitor:
    def __init__(
        self,
        settings: Settings,
        emit: Callable[[Alert], None],
        checks: Sequence[HealthCheck] = (),
        *,
        memory: Callable[[], Decimal | None] = system_memory_frac,
        clock: Clock | None = None,
        interval_s: float | None = None,
    ) -> None:
        self.book = AlertBook(rules(settings), settings.alert_clear_seconds)
        self._emit = emit
        self.checks = list(checks)
        self._memory = memory
        self._clock = clock or WallClock()
        self.interval_s = float(interval_s or settings.claire_health_interval_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: list[ServiceHealth] = []

    def look(self) -> list[Alert]:
        """One look: read memory and every check, and emit what fires or resolves."""
        services: list[ServiceHealth] = []
        for check in self.checks:
            try:
                services.extend(check())
            except Exception:
                log.exception("a health check failed", extra={"event": "health_check_failed"})
        self.last = services
        try:
            memory = self._memory()
        except Exception:
            memory = None
        alerts = self.book.observe(
            health_readings(memory, services, self.book.table), self._clock.now(), None
        )
        for alert in alerts:
            self._emit(alert)
        return alerts

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.look()

    def start(self) -> HealthMonitor:
        self._thread = threading.Thread(target=self._loop, name="claire-health", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
