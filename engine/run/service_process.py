"""One service process of a run (`claire engine run NAME`), with the incident desk
wired in for the alerts service."""

from __future__ import annotations

from pathlib import Path

from engine.config import Settings
from engine.events import Alert
from engine.incident_kinds import IncidentType
from engine.incidents.desk import IncidentDesk
from engine.services.host import run_service
from engine.store import Store


def run_service_process(
    name: str, run_id: str, data_dir: Path, settings: Settings, port: int | None = None
) -> None:
    """Run one service of `run_id` until SIGTERM or Ctrl-C (the feed also ends with its data)."""

    def open_incident(store: Store, kind: IncidentType, alert: Alert) -> None:
        IncidentDesk(data_dir, settings, store).open_for_alert(kind, alert, run_id)

    run_service(name, run_id, data_dir, settings, port, incidents=open_incident)


__all__ = ["run_service_process"]
