"""The supervisor: a run as one process per service, restarted when one crashes.

`claire papertest start --services` records the run, starts the data folder's
PostgreSQL and Redis, and each service as `claire engine run NAME` (so `pgrep -f
"claire engine run risk"` finds it). A service that exits without being asked is
started again after an exponential backoff with jitter (0.5 s doubling up to 10 s),
within a budget of `restart_budget` restarts per service; past it, the run stops
loudly as failed. A service that fails the run itself (the strategy raised or hung:
engine.run.watchdog) is not restarted: the run fails with its sentence. Every start,
exit (with its code) and restart is recorded in `service_events`. The run is
complete when the feed has published all its data and every consumer group has
handled and acknowledged every message; then, or on Ctrl-C or SIGTERM, the
services are stopped in pipeline order (feed first, writer last) with SIGTERM,
which each honours between two steps. A service ends when
the supervisor does, even after `kill -9` of it (engine.runtime.orphans), and
starts without the secrets it does not use (exchange keys; notification URLs but
for the alerts service).
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

import redis

from engine.bus.redis import RedisBus
from engine.errors import ClaireError
from engine.runtime.orphans import parent_death_preexec
from engine.runtime.redis import EmbeddedRedis, ExternalRedis, redis_service
from engine.services.host import SERVICES, create_groups, drained, finished, stream_prefix
from engine.store import DatabaseUnavailable, RunStatus, Store

log = logging.getLogger("claire.supervisor")

BUS_DOWN: Final = (redis.ConnectionError, redis.TimeoutError, OSError)  # Redis not answering
BACKOFF_START_S: Final = 0.5
BACKOFF_MAX_S: Final = 10.0
FLUSH_START_S: Final = 1.0
FLUSH_MAX_S: Final = 10.0


def service_command(name: str, run_id: str, data_dir: Path, port: int | None) -> list[str]:
    """`claire engine run NAME ...`, through the installed `claire` when there is one."""
    script = Path(sys.executable).with_name("claire")
    launcher = [str(script)] if script.exists() else [shutil.which("claire") or "claire"]
    args = [*launcher, "engine", "run", name, "--run", run_id, "--data-dir", str(data_dir)]
    if port is not None:
        args += ["--port", str(port)]
    return args


# What no service uses, kept out of their environment: exchange keys, and the
# notification URLs for every service but the one that notifies.
HIDDEN_FROM_SERVICES: Final = ("MEXC_API_KEY", "MEXC_API_SECRET", "CLAIRE_NOTIFY_URLS")
SECRETS_BY_SERVICE: Final = {"alerts": ("CLAIRE_NOTIFY_URLS",)}


def service_environment(name: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a service starts with: this one, without the secrets it does not use."""
    kept = SECRETS_BY_SERVICE.get(name, ())
    hidden = {k for k in HIDDEN_FROM_SERVICES if k not in kept}
    return {k: v for k, v in environ.items() if k.upper() not in hidden}


@dataclass(frozen=True)
class Ending:
    """An operator's stop: why, and whether what was published is handled first."""

    reason: str
    drain: bool  # a planned stop: the feed stops, the others finish what it published


class Attendant(Protocol):
    """What looks after the run between two looks at the services (engine.run wires the
    operator's commands and the backups in): an `Ending` stops the run."""

    def between(self, bus: RedisBus) -> Ending | None: ...

    def completed(self) -> None: ...

    def stopped(self, bus: RedisBus, ending: Ending) -> None: ...


@dataclass
class Child:
    name: str
    port: int | None
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    backoff: float = BACKOFF_START_S
    exits: list[int] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        store: Store,
        run_id: str,
        data_dir: Path,
        *,
        ports: dict[str, int] | None = None,
        restart_budget: int = 10,
        log_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        attendant: Attendant | None = None,
        drain_s: float = 60.0,
    ) -> None:
        self.store = store
        self.attendant = attendant
        self._orphan_guard = parent_death_preexec()
        self.ending: Ending | None = None
        self.drain_s = drain_s
        self.run_id = run_id
        self.data_dir = data_dir
        self.restart_budget = restart_budget
        self.log_dir = log_dir or data_dir / "logs"
        self._clock = clock
        self.children = {name: Child(name, (ports or {}).get(name)) for name in SERVICES}
        self._stop_requested: int | None = None
        self._unrecorded: deque[tuple[str, str, int | None, int | None, datetime]] = deque()
        self._next_flush = 0.0
        self._flush_delay = FLUSH_START_S

    # --- records ----------------------------------------------------------------------

    def _record(self, service: str, kind: str, pid: int | None, code: int | None = None) -> None:
        """Store a service event; while the database is down, keep it and store it later."""
        self._unrecorded.append((service, kind, pid, code, datetime.now(UTC)))
        self.flush_records()

    def flush_records(self, *, force: bool = False) -> bool:
        """Store the events kept during a database outage; True when none is left.

        A failed attempt waits 1 s doubling to 10 s before the next (unless `force`),
        so an outage never holds up the supervision of the services."""
        if not force and self._clock() < self._next_flush:
            return not self._unrecorded
        while self._unrecorded:
            try:
                self.store.record_service_event(self.run_id, *self._unrecorded[0])
            except DatabaseUnavailable as exc:
                if self._flush_delay == FLUSH_START_S:
                    log.warning(
                        "the database does not answer (%s); service events are kept and "
                        "stored when it is back",
                        exc.detail or "unreachable",
                    )
                self._next_flush = self._clock() + self._flush_delay
                self._flush_delay = min(self._flush_delay * 2, FLUSH_MAX_S)
                return False
            self._unrecorded.popleft()
        self._flush_delay = FLUSH_START_S
        return True

    # --- children ---------------------------------------------------------------------

    def _start(self, child: Child) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = (self.log_dir / f"{child.name}.log").open("ab")
        env = service_environment(child.name, os.environ)
        env["CLAIRE_SERVICE_RESTARTS"] = str(child.restarts)
        env["CLAIRE_SUPERVISOR_PID"] = str(os.getpid())  # it ends when this process does
        child.process = subprocess.Popen(  # noqa: S603 - our own command line
            service_command(child.name, self.run_id, self.data_dir, child.port),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a Ctrl-C reaches the supervisor, which stops them in order
            preexec_fn=self._orphan_guard,  # ends with this process even while it starts
        )
        log_file.close()
        kind = "restart" if child.restarts else "start"
        self._record(child.name, kind, child.process.pid)
        log.info("%s %s (pid %d)", kind, child.name, child.process.pid)

    def _check(self, child: Child) -> None:
        proc = child.process
        if proc is None:
            if self._clock() >= child.next_start:
                self._start(child)
            return
        code = proc.poll()
        if code is None:
            return
        child.process = None
        child.exits.append(code)
        self._record(child.name, "exit", proc.pid, code)
        if child.name == "feed" and code == 0:
            child.next_start = float("inf")  # the feed ends when its data does
            return
        failed = self._failed_run()
        if failed is not None:  # a strategy error or hang: a restart would fail the same way
            raise ServiceFailed(failed)
        if child.restarts >= self.restart_budget:
            raise ServiceFailed(
                f"service {child.name} exited with code {code} and was restarted "
                f"{child.restarts} times already; see {self.log_dir / (child.name + '.log')}."
            )
        child.restarts += 1
        delay = min(child.backoff, BACKOFF_MAX_S) * random.uniform(0.8, 1.2)
        child.backoff = min(child.backoff * 2, BACKOFF_MAX_S)
        child.next_start = self._clock() + delay
        log.warning("service %s exited (%d); restarting in %.1f s", child.name, code, delay)

    def _failed_run(self) -> str | None:
        """Why the run failed, when a service recorded it as failed (a strategy error)."""
        try:
            run = self.store.get_run(self.run_id)
        except DatabaseUnavailable:
            return None  # restarted as for any exit; its next start says it again
        if run is None or run.status is not RunStatus.FAILED:
            return None
        return run.end_reason or f"run {self.run_id} failed"

    def stop_all(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every service in pipeline order, each given time to finish its step."""
        for name in SERVICES:
            self._stop_one(name, timeout_s)

    def _stop_one(self, name: str, timeout_s: float = 30.0) -> None:
        child = self.children[name]
        proc = child.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(timeout=timeout_s)
        self._record(name, "stop", proc.pid, code)
        child.process = None
        child.next_start = float("inf")  # stopped on purpose: not started again

    # --- the run ----------------------------------------------------------------------

    def run(
        self, poll_s: float = 0.1, progress: Callable[[dict[str, object]], None] | None = None
    ) -> RunStatus:
        """Supervise until the run completes, a stop is requested, or a service fails."""
        redis_server = redis_service(self.data_dir)
        bus = RedisBus(redis_server.start(), prefix=stream_prefix(self.run_id))
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            create_groups(bus)
            while self._stop_requested is None:
                if not self._redis_up(bus, redis_server):
                    time.sleep(poll_s)
                    continue
                for child in self.children.values():
                    self._check(child)
                if self._unrecorded:
                    self.flush_records()
                status = self._between(bus, progress)
                if status is not None:
                    return status
                time.sleep(poll_s)
            self.stop_all()
            return RunStatus.STOPPED
        except BaseException:
            self.stop_all()
            raise
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            bus.close()
            redis_server.stop()

    def _between(
        self, bus: RedisBus, progress: Callable[[dict[str, object]], None] | None
    ) -> RunStatus | None:
        """One round's look at the run: complete, stopped by its attendant, or going on.
        Only the look is retried when Redis dies meanwhile; what follows it is not."""
        try:
            complete = finished(bus)
            if not complete and self.attendant is not None:
                self.ending = self.attendant.between(bus)
            if progress is not None and not complete and self.ending is None:
                progress({"groups": int(bus.redis.get(bus.key("feed:position")) or 0)})
        except BUS_DOWN as exc:
            log.warning("the bus stopped answering: %s", exc)  # the next round restarts it
            return None
        if complete:
            self.stop_all()
            if self.attendant is not None:
                self.attendant.completed()
            return RunStatus.COMPLETED
        if self.ending is not None:
            assert self.attendant is not None
            self._stop_for(self.ending, bus)
            self.attendant.stopped(bus, self.ending)
            return RunStatus.STOPPED
        return None

    def _stop_for(self, ending: Ending, bus: RedisBus) -> None:
        """An operator's stop: a planned one stops the feed and lets the others handle what
        it published (within `drain_s`) before they stop in pipeline order."""
        if ending.drain:
            self._stop_one("feed")
            deadline = self._clock() + self.drain_s
            while not drained(bus) and self._clock() < deadline:
                for name, child in self.children.items():
                    if name != "feed":
                        self._check(child)
                time.sleep(0.1)
        self.stop_all()

    def _redis_up(self, bus: RedisBus, server: EmbeddedRedis | ExternalRedis) -> bool:
        """Ping the bus; an embedded Redis that died is started again from its AOF."""
        try:
            return bool(bus.redis.ping())
        except BUS_DOWN:
            pass
        self._record("redis", "exit", None)
        if isinstance(server, EmbeddedRedis):
            log.warning("the embedded Redis is down; starting it again")
            try:
                server.restart()
                self._record("redis", "restart", server.pid)
            except ClaireError as exc:
                log.warning("Redis did not start again yet: %s", exc)
        return False

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stop_requested = signum

    @property
    def stop_signal(self) -> int | None:
        return self._stop_requested


class ServiceFailed(RuntimeError):
    """A service kept crashing past its restart budget."""
