"""Alerts that open an incident: once per alert episode, off the pipeline's path.

`INCIDENT_ON_ALERT="daily_drawdown=risk-limit,data_stop=data-stop"` maps alert
rules to incident types. When an alert of a mapped rule fires, `on_alert` notes its
episode and hands it to a worker thread, which opens the incident (bundle, first
action, report); the pipeline never waits for it, and nothing the worker does is
read back into a decision, so a run's fills are the same with or without it. A
second firing alert of the same episode opens nothing. An incident opened this way
never halts trading (engine.incidents.playbook).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Final

from engine.events import Alert, AlertStatus
from engine.incident_kinds import IncidentType

log = logging.getLogger("claire.alerts")

CLOSE_WAIT_S: Final = 120.0

OpenIncident = Callable[[IncidentType, Alert], object]


class IncidentTrigger:
    def __init__(self, mapping: Mapping[str, IncidentType], open_incident: OpenIncident) -> None:
        self.mapping = dict(mapping)
        self._open = open_incident
        self._seen: set[str] = set()
        self._queue: queue.SimpleQueue[tuple[IncidentType, Alert] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.opened = 0
        self.failed = 0

    def on_alert(self, alert: Alert) -> bool:
        """Called for every alert the pipeline publishes; True when it opens an incident."""
        if alert.status is not AlertStatus.FIRING:
            return False
        kind = self.mapping.get(alert.rule)
        if kind is None:
            return False
        episode = alert.episode_id or alert.event_id
        if episode in self._seen:
            return False
        self._seen.add(episode)
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="claire-incidents", daemon=True)
            self._thread.start()
        self._queue.put((kind, alert))
        return True

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            kind, alert = item
            try:
                self._open(kind, alert)
                self.opened += 1
            except Exception:  # an incident that cannot be opened must not stop the run
                self.failed += 1
                log.exception(
                    "could not open a %s incident for alert %s",
                    kind.label,
                    alert.rule,
                    extra={"event": "incident_failed", "rule": alert.rule},
                )

    def close(self, timeout_s: float = CLOSE_WAIT_S) -> bool:
        """Let the incidents in hand finish (bounded); True when none is left."""
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        self._queue.put(None)
        thread.join(timeout_s)
        return not thread.is_alive()


__all__ = ["IncidentTrigger"]
