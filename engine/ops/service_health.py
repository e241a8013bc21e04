"""The services of a run as services, for `claire status`: process, health, restarts, lag.

Each service is found as its process (`claire engine run NAME --run RUN_ID`), asked
for its own `/health` and `/status` (consumer lag) on its port, and counted for its
restarts in `service_events`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime
from typing import Any, Final

import psutil

from engine.config import Settings
from engine.services.host import PORTS, SERVICES
from engine.services.ports import service_ports
from engine.store import Store

PROBE_TIMEOUT_S: Final = 1.0


def service_pids(run_id: str) -> dict[str, psutil.Process]:
    """Service name -> process, for every `claire engine run NAME --run RUN_ID` alive."""
    out: dict[str, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        args = proc.info.get("cmdline") or []
        if "engine" not in args or "--run" not in args:
            continue
        at = args.index("engine")
        if args[at + 1 : at + 2] != ["run"] or len(args) < at + 3:
            continue
        if args[args.index("--run") + 1 : args.index("--run") + 2] == [run_id]:
            out[args[at + 2]] = proc
    return out


def probe(port: int) -> tuple[str, int | None]:
    """A service's health (`healthy`, `unhealthy: why` or `no answer`) and its lag."""
    base = f"http://127.0.0.1:{port}"
    lag = _lag(base)
    try:
        with urllib.request.urlopen(base + "/health", timeout=PROBE_TIMEOUT_S) as reply:  # noqa: S310
            return ("healthy" if reply.status == 200 else "unhealthy"), lag
    except urllib.error.HTTPError as exc:
        try:
            reasons = json.loads(exc.read()).get("reasons") or []
        except ValueError:
            reasons = []
        return "unhealthy" + (": " + "; ".join(map(str, reasons)) if reasons else ""), lag
    except Exception as exc:
        return f"no answer ({type(exc).__name__})", lag


def _lag(base: str) -> int | None:
    """Unread and unacknowledged messages over the service's input streams, from /status."""
    try:
        with urllib.request.urlopen(base + "/status", timeout=PROBE_TIMEOUT_S) as reply:  # noqa: S310
            found = json.loads(reply.read()).get("lag")
    except Exception:  # its /status is optional to the verdict: /health decides
        return None
    if not isinstance(found, dict):
        return None
    return sum(int(v) for v in found.values() if isinstance(v, int | float))


def restarts(events: list[dict[str, Any]]) -> Counter[str]:
    return Counter(e["service"] for e in events if e["kind"] == "restart")


def service_health(
    store: Store, run_id: str, settings: Settings, now: datetime, alive: bool
) -> list[dict[str, Any]]:
    """One row per service of a run as services (none for a run in one process)."""
    events = store.service_events(run_id)
    if not events:
        return []
    running = service_pids(run_id) if alive else {}
    ports = service_ports(settings) or dict(PORTS)
    counted = restarts(events)
    rows = []
    for name in SERVICES:
        process = running.get(name)
        row: dict[str, Any] = {
            "name": name,
            "alive": process is not None,
            "pid": process.pid if process is not None else None,
            "uptime_s": _uptime(process, now),
            "restarts": counted.get(name, 0),
            "port": ports.get(name),
            "health": "down" if alive else "stopped",
            "lag": None,
        }
        if process is not None and name in ports:
            row["health"], row["lag"] = probe(ports[name])
        rows.append(row)
    return rows


def _uptime(process: psutil.Process | None, now: datetime) -> float | None:
    if process is None:
        return None
    try:
        return max(0.0, now.timestamp() - float(process.create_time()))
    except (psutil.Error, OSError):
        return None


__all__ = ["probe", "restarts", "service_health", "service_pids"]
