"""An incident as it is kept: its record, its first action, the alert that opened it.

The record is the same in the data folder (`incidents/ID.json`) and in PostgreSQL
(`incidents`); the timeline beside it is `engine.incidents.timeline`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from engine.errors import ClaireError
from engine.incident_kinds import IncidentType
from engine.incidents.playbook import ActionResult
from engine.incidents.timeline import TimelineEvent
from engine.plain import plain

MAX_NOTE: Final = 2000


class IncidentError(ClaireError):
    pass


@dataclass(frozen=True)
class Incident:
    incident_id: str
    type: IncidentType
    run_id: str | None
    opened_at: datetime
    summary: str
    resolved_at: datetime | None = None
    action_taken: str = ""
    bundle_path: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[TimelineEvent, ...] = ()
    stored: bool = False  # the record and timeline are in PostgreSQL

    @property
    def status(self) -> str:
        return "closed" if self.resolved_at is not None else "open"

    @property
    def action(self) -> ActionResult | None:
        body = self.detail.get("first_action")
        if not body:
            return None
        return ActionResult(
            body["action"], bool(body["taken"]), body["result"], body.get("detail") or {}
        )

    def record(self) -> dict[str, Any]:
        """The local record (without the timeline, which has its own file)."""
        return {
            "incident_id": self.incident_id,
            "type": self.type.stored,
            "run_id": self.run_id,
            "opened_at": self.opened_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "summary": self.summary,
            "action_taken": self.action_taken,
            "bundle_path": self.bundle_path,
            "detail": plain(dict(self.detail)),
            "stored": self.stored,
        }

    def as_json(self) -> dict[str, Any]:
        body = self.record()
        body["type"] = self.type.label
        body["status"] = self.status
        body["timeline"] = [e.as_json() for e in self.events]
        return body

    @classmethod
    def from_record(cls, body: Mapping[str, Any], events: list[TimelineEvent]) -> Incident:
        return cls(
            incident_id=str(body["incident_id"]),
            type=IncidentType.from_stored(str(body["type"])),
            run_id=body.get("run_id"),
            opened_at=_utc(body["opened_at"]),
            summary=str(body.get("summary") or ""),
            resolved_at=_utc(body["resolved_at"]) if body.get("resolved_at") else None,
            action_taken=str(body.get("action_taken") or ""),
            bundle_path=body.get("bundle_path"),
            detail=dict(body.get("detail") or {}),
            events=tuple(events),
            stored=bool(body.get("stored", True)),
        )


def _utc(value: Any) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.astimezone(UTC)


def check_note(note: str, what: str = "--note") -> str:
    text = note.strip()
    if not text:
        raise IncidentError(f"{what} is empty; say what happened, it is kept in the timeline.")
    if len(text) > MAX_NOTE:
        raise IncidentError(f"{what} is {len(text)} characters long; keep it under {MAX_NOTE}.")
    return text


@dataclass(frozen=True)
class AlertCause:
    """The alert that opened an incident by itself."""

    rule: str
    episode_id: str
    message: str
    severity: str
    market_ts: datetime | None = None


__all__ = ["MAX_NOTE", "AlertCause", "Incident", "IncidentError", "check_note"]
