"""The incident report, Markdown and HTML, from `templates/incident.{md,html}.j2`.

What happened, the first action and its result, the timeline, what the bundle
holds and what it could not capture, and the questions the type leaves open.
Written beside the bundle (`incidents/ID.md`, `incidents/ID.html`) when the
incident is opened and again when it is closed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from engine.incident_kinds import FIRST_ACTIONS, IncidentType

if TYPE_CHECKING:
    from engine.incidents.record import Incident

QUESTIONS: Final = {
    IncidentType.SERVICE_CRASH: (
        "Why did the service exit? Its output is in the bundle (logs/services/), its exits "
        "and restarts in events/service_events.json.",
        "Did the restart lose or double anything? Compare the fills with a replay of the "
        "same data.",
        "How close is the service to its restart budget?",
    ),
    IncidentType.RISK_LIMIT: (
        "Was the move real, or bad market data?",
        "Do the limits stand, or should a setting change before trading resumes?",
        "When does trading resume (`claire risk resume --note TEXT`)?",
    ),
    IncidentType.UNRESPONSIVE: (
        "What was the service waiting for: CPU, memory, the database, Redis, the exchange?",
        "Did it answer again after the restart (`claire status`)?",
        "Did its consumer group fall behind (redis/groups.json)?",
    ),
    IncidentType.DATABASE_OUTAGE: (
        "Why did PostgreSQL stop answering? Its own log says (postgres.log in the data folder).",
        "Did the outage outlast DB_OUTAGE_TOLERANCE_SECONDS, so that the run stopped and "
        "needs `claire papertest start --resume`?",
        "Is the newest backup recent enough (`claire backup list`)?",
    ),
    IncidentType.RESOURCE_SHORTAGE: (
        "Which consumer grows, and is it the run itself?",
        "Is the disk filling with logs, backups or bundles (`claire backup prune`)?",
        "Does the machine fit a 7-day run, or does the run need a larger one?",
    ),
    IncidentType.DATA_STOP: (
        "Was the exchange, the network or the feed at fault?",
        "Did the backfill cover the gap (alerts backfill_failed or backfill_incomplete)?",
        "Were signals refused as stale meanwhile (events/risk_events.json)?",
    ),
}


def context(incident: Incident) -> dict[str, Any]:
    """The incident as the templates read it."""
    detail = incident.detail
    bundle = detail.get("bundle") or {}
    market = detail.get("market_ts")
    from datetime import datetime

    questions = list(QUESTIONS[incident.type])
    if bundle.get("missing"):
        questions.append(
            "The bundle lacks " + ", ".join(m["part"] for m in bundle["missing"]) + ": capture "
            "them by hand once the cause is fixed?"
        )
    if not incident.stored:
        questions.append(
            "The timeline is not in PostgreSQL yet: the next `claire incident` command that "
            "reaches the database writes it."
        )
    return {
        "incident_id": incident.incident_id,
        "type": incident.type.label,
        "type_title": FIRST_ACTIONS[incident.type],
        "status": incident.status,
        "summary": incident.summary,
        "run_id": incident.run_id,
        "opened_at": incident.opened_at,
        "resolved_at": incident.resolved_at,
        "opened_by": detail.get("opened_by") or "-",
        "market_ts": datetime.fromisoformat(market) if market else None,
        "alert": detail.get("alert"),
        "note": detail.get("note"),
        "bundle_path": incident.bundle_path,
        "action": incident.action,
        "timeline": list(incident.events),
        "files": bundle.get("files") or [],
        "missing": bundle.get("missing") or [],
        "redactions": bundle.get("redactions") or [],
        "questions": questions,
    }


def render(incident: Incident, fmt: str) -> str:
    from engine.report.render import environment

    template = environment().get_template(f"incident.{fmt}.j2")
    text: str = template.render(i=context(incident))
    return text


def write_reports(
    incident: Incident, folder: Path, scrub: Callable[[str, str], str] | None = None
) -> list[Path]:
    """`ID.md` and `ID.html` in `folder` (private files), each written atomically."""
    paths = []
    for fmt in ("md", "html"):
        path = folder / f"{incident.incident_id}.{fmt}"
        text = render(incident, fmt)
        if scrub is not None:
            text = scrub(text, path.name)
        tmp = path.with_name(path.name + ".partial")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
        paths.append(path)
    return paths


__all__ = ["QUESTIONS", "context", "render", "write_reports"]
