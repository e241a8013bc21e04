"""The runbook's safe first action for each incident type, taken and recorded.

| type              | first action                                                        |
|-------------------|---------------------------------------------------------------------|
| risk-limit        | halt trading (no new entries) through the control channel           |
| data-stop         | a live run drops its feed's sockets, reconnects and backfills       |
| service-crash     | a run as services: the named (or the missing) service is restarted  |
| unresponsive      | a run as services: the named (or the silent) service is restarted   |
| database-outage   | check the database; while it is down the run's own retry holds the  |
|                   | pipeline (DB_OUTAGE_TOLERANCE_SECONDS), then stops it resumable     |
| resource-shortage | record the top consumers of memory, CPU and disk                    |

Every action ends in an `ActionResult`: whether it was taken and what came of it,
in one sentence for the timeline and the report. An action that does not apply
(a finished run, a replay has no live feed, a run in one process has no service
to restart) says so and changes nothing. An incident opened by an alert never
halts trading: the operator decides that.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from engine.config import Settings
from engine.errors import ClaireError, ConfigError
from engine.incident_kinds import FIRST_ACTIONS, IncidentType
from engine.store import RunRecord, RunStatus, Store

COMMAND_TIMEOUT_S: Final = 30.0
RESTART_WAIT_S: Final = 20.0
HEALTH_TIMEOUT_S: Final = 2.0


@dataclass(frozen=True)
class ActionResult:
    action: str  # what the runbook asks for
    taken: bool
    result: str  # what came of it, one sentence
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "taken": self.taken,
            "result": self.result,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class Situation:
    """What the first action needs to know about the run and the database."""

    data_dir: Path
    settings: Settings
    store: Store | None
    store_error: str | None
    run_id: str | None
    run: RunRecord | None  # None also when the database did not answer
    alive: bool  # a process runs the run now
    services: bool  # the run is separate service processes
    note: str
    automatic: bool = False  # opened by an alert
    service: str | None = None  # the service the operator named


def first_action(kind: IncidentType, situation: Situation) -> ActionResult:
    """Take the type's first action; never raises for the action's own failure."""
    action = FIRST_ACTIONS[kind]
    try:
        return _ACTIONS[kind](situation, action)
    except ConfigError:
        raise  # the operator's input (an unknown service): their fix
    except Exception as exc:
        return ActionResult(action, False, f"the action failed: {type(exc).__name__}: {exc}")


def _not_running(s: Situation) -> str | None:
    if s.run_id is None:
        return "there is no run in this data folder"
    if not s.alive:
        if s.run is None:
            return f"run {s.run_id} is not running"
        status = "interrupted" if s.run.status is RunStatus.RUNNING else s.run.status.value
        return f"run {s.run_id} is not running ({status})"
    return None


def _database_down(s: Situation, action: str) -> ActionResult:
    return ActionResult(
        action,
        False,
        f"not taken: commands reach the run through the database, which did not answer "
        f"({s.store_error}).",
    )


# --- risk-limit -------------------------------------------------------------------------


def _halt(s: Situation, action: str) -> ActionResult:
    if s.automatic:
        return ActionResult(
            action,
            False,
            "not taken: an incident opened by an alert does not stop trading; "
            f"`claire risk halt --run {s.run_id} --note TEXT` does.",
        )
    why = _not_running(s)
    if why:
        return ActionResult(action, False, f"{why}: there are no new entries to stop.")
    assert s.run_id is not None
    if s.store is None:
        return _database_down(s, action)
    from engine.ops.commands import Operator
    from engine.ops.control import CommandKind, CommandStatus

    answer = Operator(s.store, s.data_dir).command(
        CommandKind.HALT, s.note, s.run_id, COMMAND_TIMEOUT_S
    )
    at = answer.market_ts.isoformat() if answer.market_ts else "-"
    detail = {"command_id": answer.command_id, "status": answer.status.value, "market_ts": at}
    if answer.status is CommandStatus.DONE:
        return ActionResult(
            action, True, f"trading halted at market time {at}: no new entries.", detail
        )
    reason = answer.result.get("reason", "no reason given")
    return ActionResult(action, False, f"the run refused to halt: {reason}.", detail)


# --- data-stop --------------------------------------------------------------------------


def _reconnect(s: Situation, action: str) -> ActionResult:
    why = _not_running(s)
    if why:
        return ActionResult(action, False, f"{why}: there is no live feed to reconnect.")
    assert s.run_id is not None
    if s.store is None or s.run is None:
        return _database_down(s, action)
    if not s.run.config.get("live"):
        return ActionResult(
            action,
            False,
            f"run {s.run_id} replays recorded data: there is no live feed to reconnect.",
        )
    from engine.ops.commands import Operator
    from engine.ops.control import CommandKind, CommandStatus

    answer = Operator(s.store, s.data_dir).command(
        CommandKind.RECONNECT, s.note, s.run_id, COMMAND_TIMEOUT_S
    )
    detail = {"command_id": answer.command_id, "status": answer.status.value}
    if answer.status is CommandStatus.DONE:
        sockets = int(answer.result.get("sockets", 0))
        return ActionResult(
            action,
            True,
            f"the live feed dropped {sockets} connection(s); it reconnects, resubscribes and "
            "backfills the gap over REST.",
            {**detail, "sockets": sockets},
        )
    reason = answer.result.get("reason", "no reason given")
    return ActionResult(action, False, f"the run refused to reconnect: {reason}.", detail)


# --- service-crash and unresponsive -----------------------------------------------------


def check_service(name: str) -> str:
    from engine.services.host import SERVICES

    if name not in SERVICES:
        raise ConfigError(f"--service {name} is not one of the services: {', '.join(SERVICES)}.")
    return name


def _probe(port: int) -> str | None:
    """None when the service's /health answers 200, else why not."""
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S) as reply:
            return None if reply.status == 200 else f"/health answered {reply.status}"
    except Exception as exc:
        return f"/health did not answer ({type(exc).__name__})"


def _restart(s: Situation, action: str) -> ActionResult:
    from engine.stack.containers import stack_exists

    if stack_exists():
        return _restart_container(s, action)
    why = _not_running(s)
    if why:
        return ActionResult(action, False, f"{why}: there is no service to restart.")
    assert s.run_id is not None
    if not s.services:
        return ActionResult(
            action,
            False,
            f"run {s.run_id} is one process: there is no separate service to restart; "
            "nothing was restarted.",
        )
    from engine.incidents.figures import service_processes
    from engine.services.host import SERVICES
    from engine.services.ports import service_ports

    running = service_processes(s.run_id)
    if s.service is not None:
        chosen, reason = check_service(s.service), "named by the operator"
    else:
        ports = service_ports(s.settings) or {}
        missing = [n for n in SERVICES if n not in running and n != "feed"]
        silent = [(n, r) for n in SERVICES if n in ports and (r := _probe(ports[n]))]
        if missing:
            return ActionResult(
                action,
                False,
                f"service {missing[0]} has no process: the supervisor is restarting it with "
                "backoff; nothing else was restarted.",
                {"service": missing[0]},
            )
        if not silent:
            return ActionResult(
                action,
                False,
                "every service is running and none failed its health check; nothing was "
                "restarted (name one with --service).",
            )
        chosen, reason = silent[0]
    process = running.get(chosen)
    if process is None:
        return ActionResult(
            action,
            False,
            f"service {chosen} has no process now: the supervisor restarts it with backoff.",
            {"service": chosen},
        )
    return _signal_service(s, action, chosen, process.pid, reason)


def _restart_container(s: Situation, action: str) -> ActionResult:
    """On a Docker stack: restart the named service's container, else the first that is
    down or unhealthy (a container killed by Docker is not restarted by its policy)."""
    from engine.stack.containers import restart_service, stack_rows
    from engine.stack.health import problems
    from engine.stack.spec import ENGINE_SERVICES

    containers = {service: c for c, (service, _, _) in ENGINE_SERVICES.items()}
    rows = {str(r["service"]): r for r in stack_rows()}
    if s.service is not None:
        chosen = containers[check_service(s.service)]
        reason = "named by the operator"
    else:
        wrong = [
            line for line in problems(list(rows.values())) if line.split()[0] in containers.values()
        ]
        if not wrong:
            return ActionResult(
                action,
                False,
                "every container of the stack runs and is healthy; nothing was restarted "
                "(name a service with --service).",
            )
        chosen, reason = wrong[0].split()[0], wrong[0]
    before = rows.get(chosen, {}).get("restarts")
    restart_service(chosen)
    after = {str(r["service"]): r for r in stack_rows()}.get(chosen, {})
    return ActionResult(
        action,
        True,
        f"container {chosen} ({reason}) restarted through Docker; it is {after.get('state')}.",
        {"container": chosen, "restarts_before": str(before), "state": str(after.get("state"))},
    )


def _signal_service(s: Situation, action: str, name: str, pid: int, why: str) -> ActionResult:
    """Stop the service's process; the supervisor starts it again and records it."""
    assert s.run_id is not None
    from engine.incidents.figures import service_processes

    before = _restarts(s, name)
    # The feed leaves with code 0 when its data is done, which the supervisor does not
    # restart: it is killed. Every other service stops between two steps on SIGTERM.
    sig = signal.SIGKILL if name == "feed" else signal.SIGTERM
    os.kill(pid, sig)
    deadline = time.monotonic() + RESTART_WAIT_S
    new_pid: int | None = None
    while time.monotonic() < deadline:
        proc = service_processes(s.run_id).get(name)
        if proc is not None and proc.pid != pid:
            new_pid = proc.pid
            break
        time.sleep(0.1)
    detail = {"service": name, "old_pid": pid, "new_pid": new_pid, "signal": sig.name}
    if new_pid is None:
        return ActionResult(
            action,
            True,
            f"service {name} (pid {pid}, {why}) got {sig.name}; the supervisor had not started "
            f"it again after {RESTART_WAIT_S:g} s: check `claire status`.",
            detail,
        )
    after = _restarts(s, name)
    detail["restarts_recorded"] = (
        after - before if after is not None and before is not None else None
    )
    return ActionResult(
        action,
        True,
        f"service {name} ({why}) restarted by the supervisor: pid {pid} -> {new_pid}.",
        detail,
    )


def _restarts(s: Situation, name: str) -> int | None:
    if s.store is None or s.run_id is None:
        return None
    try:
        events = s.store.service_events(s.run_id)
    except ClaireError:
        return None
    return sum(1 for e in events if e["service"] == name and e["kind"] == "restart")


# --- database-outage --------------------------------------------------------------------


def _database(s: Situation, action: str) -> ActionResult:
    tolerance = s.settings.db_outage_tolerance_seconds
    run = f"run {s.run_id}" if s.run_id is not None else "no run"
    running = s.run_id is not None and s.alive
    if s.store is None:
        if running:
            held = (
                f"{run} holds its pipeline itself: it writes the same batch again with backoff "
                f"for up to DB_OUTAGE_TOLERANCE_SECONDS ({tolerance} s), then stops, resumable "
                "with `claire papertest start --resume`"
            )
        else:
            held = f"{run} is not running, so no pipeline needs holding"
        return ActionResult(
            action,
            running,
            f"the database does not answer ({s.store_error}); {held}. The timeline is kept "
            "beside the bundle and written to PostgreSQL once it answers.",
            {"database": "down", "tolerance_s": tolerance, "run_alive": running},
        )
    started = time.monotonic()
    try:
        s.store.db.fetch_one("SELECT 1 AS one", {})
    except ClaireError as exc:
        return ActionResult(
            action,
            running,
            f"the database stopped answering ({exc}); the run's own retry holds its pipeline "
            f"for up to {tolerance} s.",
            {"database": "down", "tolerance_s": tolerance, "run_alive": running},
        )
    ms = (time.monotonic() - started) * 1000
    return ActionResult(
        action,
        False,
        f"the database answers ({ms:.0f} ms): nothing to hold; {run} "
        f"{'goes on' if running else 'is not running'}.",
        {"database": "up", "latency_ms": round(ms, 1), "run_alive": running},
    )


# --- resource-shortage ------------------------------------------------------------------


def _mb(value: int) -> str:
    return f"{value / 1_000_000:,.0f} MB"


def _consumers(s: Situation, action: str) -> ActionResult:
    from engine.incidents.figures import largest_files, machine, top_consumers

    box = machine(s.data_dir)
    top = top_consumers(5)
    files = largest_files(s.data_dir, 5)
    memory = ", ".join(f"{p['name']} ({p['pid']}) {_mb(p['rss_bytes'])}" for p in top["memory"])
    cpu = ", ".join(f"{p['name']} ({p['pid']}) {p['cpu_percent']:.0f} %" for p in top["cpu"][:3])
    disk = box["disk"]
    biggest = ", ".join(f"{f['path']} {_mb(f['bytes'])}" for f in files[:3])
    text = (
        f"memory {box['memory']['percent']:.0f} % used, top: {memory}; CPU top: {cpu}; "
        f"disk of the data folder {disk['used_percent']} % used, {_mb(disk['free_bytes'])} free, "
        f"largest files: {biggest or 'none'}."
    )
    return ActionResult(action, True, text, {"machine": box, "top": top, "largest_files": files})


_ACTIONS: Final[dict[IncidentType, Callable[[Situation, str], ActionResult]]] = {
    IncidentType.RISK_LIMIT: _halt,
    IncidentType.DATA_STOP: _reconnect,
    IncidentType.SERVICE_CRASH: _restart,
    IncidentType.UNRESPONSIVE: _restart,
    IncidentType.DATABASE_OUTAGE: _database,
    IncidentType.RESOURCE_SHORTAGE: _consumers,
}


__all__ = ["ActionResult", "Situation", "check_service", "first_action"]
