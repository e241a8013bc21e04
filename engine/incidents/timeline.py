"""An incident's timeline: what happened to it, in order, and where it is kept.

Each event has a number (1, 2, ...), a UTC time, a kind (opened, bundle, action,
note, closed), a sentence and details. The events are written first to
`incidents/ID.timeline.jsonl` beside the bundle (one JSON object a line, appended
and flushed), then to PostgreSQL's `incident_events`; a database that is down only
delays the second write.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

KINDS: Final = ("opened", "bundle", "action", "note", "closed")
MAX_TEXT: Final = 4000


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    seq: int
    ts: datetime
    kind: str
    text: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"timeline event kind {self.kind!r} is not one of {KINDS}")
        if self.seq < 1:
            raise ValueError("timeline events are numbered from 1")

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts.astimezone(UTC).isoformat(),
            "kind": self.kind,
            "text": self.text,
            "detail": dict(self.detail),
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> TimelineEvent:
        ts = body["ts"]
        when = ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts))
        return cls(
            seq=int(body["seq"]),
            ts=when.astimezone(UTC),
            kind=str(body["kind"]),
            text=str(body["text"]),
            detail=dict(body.get("detail") or {}),
        )


def next_event(
    events: Iterable[TimelineEvent],
    ts: datetime,
    kind: str,
    text: str,
    detail: Mapping[str, Any] | None = None,
) -> TimelineEvent:
    seq = max((e.seq for e in events), default=0) + 1
    return TimelineEvent(seq, ts, kind, text[:MAX_TEXT], dict(detail or {}))


def render_lines(events: Iterable[TimelineEvent]) -> list[str]:
    """One line per event, in order: `2026-11-23 03:00:01 UTC  action  halted trading`."""
    ordered = sorted(events, key=lambda e: (e.seq, e.ts))
    return [
        f"{e.ts.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC  {e.kind:<7} {' '.join(e.text.split())}"
        for e in ordered
    ]


class LocalTimeline:
    """The timeline file of one incident."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self) -> list[TimelineEvent]:
        if not self.path.exists():
            return []
        out: list[TimelineEvent] = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    out.append(TimelineEvent.from_json(json.loads(line)))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash: the others still count
        return sorted(out, key=lambda e: e.seq)

    def append(
        self, ts: datetime, kind: str, text: str, detail: Mapping[str, Any] | None = None
    ) -> TimelineEvent:
        event = next_event(self.events(), ts, kind, text, detail)
        line = json.dumps(event.as_json(), sort_keys=True, default=str)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return event


__all__ = ["KINDS", "LocalTimeline", "TimelineEvent", "next_event", "render_lines"]
