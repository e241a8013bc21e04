"""What the web view shows of a run, as one JSON-ready dict.

The operator's status (`engine.ops.status`: trading state, limits, alerts, backup,
processes), the nine dashboard panels (`engine.web.panels`), open incidents and
the health of each service of a run as services, or each container of a Docker
stack. Nothing here holds a secret: URLs are never part of it.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, cast

from engine.config import Settings
from engine.ops.status import OperatorStatus, operator_status
from engine.plain import plain, plain_dict
from engine.store import Store
from engine.store.db import Database
from engine.web.panels import panel_rows, panel_values

STACK_EVERY_S: Final = 5.0  # the Docker engine is asked at most this often
PROBE_TIMEOUT_S: Final = 0.5

OPEN_INCIDENTS_SQL: Final = """
SELECT incident_id, type, opened_at, summary
FROM incidents
WHERE resolved_at IS NULL AND (run_id = %(run_id)s OR run_id IS NULL)
ORDER BY opened_at DESC
LIMIT 20
"""
# What changes when a run writes: its newest snapshot, its state, its newest fill.
FINGERPRINT_SQL: Final = """
SELECT (SELECT event_id FROM portfolio_snapshots WHERE run_id = %(run_id)s
        ORDER BY ts DESC, (cause_id = 'run-end') DESC, event_id DESC LIMIT 1) AS snapshot_id,
       (SELECT status FROM runs WHERE run_id = %(run_id)s) AS status,
       (SELECT count(*) FROM trades WHERE run_id = %(run_id)s) AS fills
"""
NEWEST_RUN_SQL: Final = "SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1"


@dataclass
class ViewSource:
    """Where a view comes from: the open store, its folder and the settings."""

    store: Store
    data_dir: Path
    settings: Settings
    run_id: str | None = None  # None: the newest (or active) run, chosen each time
    external_db: bool = False
    # Shared by the copies `view` makes: the stack's health, and when it was asked.
    _cache: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> tuple[Any, ...]:
        """Cheap: changes whenever the view would (a new run, snapshot, fill or status)."""
        run_id = self.run_id
        if run_id is None:
            row = self.store.db.fetch_one(NEWEST_RUN_SQL, {})
            run_id = row["run_id"] if row else None
        if run_id is None:
            return (None,)
        row = self.store.db.fetch_one(FINGERPRINT_SQL, {"run_id": run_id}) or {}
        return (run_id, row.get("snapshot_id"), row.get("status"), row.get("fills"))

    def status(self, now: datetime) -> OperatorStatus:
        return operator_status(
            self.store,
            self.data_dir,
            self.settings,
            now=now,
            run_id=self.run_id,
            external_db=self.external_db,
        )

    def view(self, since: datetime | None = None) -> dict[str, Any]:
        """The whole view; with `since`, the equity curve only from there on. Every
        figure is read in one read-only snapshot of the database, so the status and
        the panels show the same moment of the run even while it writes."""
        with self.store.db.transaction() as session:
            session.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            # A Store over this one transaction: the same queries, one moment.
            moment = replace(self, store=Store(cast(Database, session)))
            return moment._view(since)

    def _view(self, since: datetime | None) -> dict[str, Any]:
        now = datetime.now(UTC)
        status = self.status(now)
        body: dict[str, Any] = {"status": status.as_json(), "generated_at": plain(now)}
        run_id = status.run_id
        if run_id is None:
            body.update(panels=None, incidents=[], services=[], stack=self.stack())
            return body
        body["snapshot_id"] = self._snapshot_id(run_id)
        body["panels"] = panel_values(self.store, run_id, since)
        body["incidents"] = [
            plain_dict(r) for r in self.store.db.fetch_all(OPEN_INCIDENTS_SQL, {"run_id": run_id})
        ]
        body["services"] = self.services(run_id)
        body["stack"] = self.stack()
        return body

    def equity_since(self, run_id: str, since: datetime) -> list[dict[str, Any]]:
        return panel_rows(self.store, run_id, "equity_curve", since)

    def _snapshot_id(self, run_id: str) -> str | None:
        row = self.store.db.fetch_one(self.store.queries["final_snapshot"], {"run_id": run_id})
        return str(row["event_id"]) if row else None

    def services(self, run_id: str) -> list[dict[str, Any]]:
        """Each service of a run as services: its process, uptime, health and lag."""
        if not self.store.service_events(run_id):
            return []
        from engine.incidents.figures import service_processes
        from engine.services.host import SERVICES

        running = service_processes(run_id)
        ports = _service_ports(self.settings)
        out = []
        for name in SERVICES:
            process = running.get(name)
            row: dict[str, Any] = {
                "name": name,
                "alive": process is not None,
                "pid": process.pid if process is not None else None,
                "uptime_s": _uptime(process),
                "health": "up" if process is not None else "down",
                "lag": None,
            }
            if process is not None and name in ports:
                row.update(_probe(ports[name]))
            out.append(row)
        return out

    def stack(self) -> dict[str, Any] | None:
        """The Docker stack's containers and what is wrong, asked at most every few seconds."""
        clock = time.monotonic()
        if "stack_at" in self._cache and clock - self._cache["stack_at"] < STACK_EVERY_S:
            return cast(dict[str, Any] | None, self._cache["stack"])
        try:
            from engine.stack.health import stack_health

            found = stack_health()
        except Exception:  # no Docker engine, or one that does not answer: no stack to show
            found = None
        self._cache.update(stack_at=clock, stack=plain(found) if found is not None else None)
        return cast(dict[str, Any] | None, self._cache["stack"])


def _uptime(process: Any) -> float | None:
    if process is None:
        return None
    try:
        return max(0.0, time.time() - float(process.create_time()))
    except Exception:
        return None


def _service_ports(settings: Settings) -> dict[str, int]:
    from engine.services.ports import service_ports

    return service_ports(settings) or {}


def _probe(port: int) -> dict[str, Any]:
    """A service's own /health and /status: healthy or why not, and its consumer lag."""
    out: dict[str, Any] = {}
    base = f"http://127.0.0.1:{port}"
    try:
        with urllib.request.urlopen(base + "/status", timeout=PROBE_TIMEOUT_S) as reply:  # noqa: S310
            figures = json.loads(reply.read())
        lag = figures.get("lag")
        if isinstance(lag, dict):
            out["lag"] = sum(int(v) for v in lag.values() if isinstance(v, int | float))
        with urllib.request.urlopen(base + "/health", timeout=PROBE_TIMEOUT_S) as reply:  # noqa: S310
            out["health"] = "healthy" if reply.status == 200 else "unhealthy"
    except Exception:
        out["health"] = "unhealthy"
    return out


__all__ = ["ViewSource"]
