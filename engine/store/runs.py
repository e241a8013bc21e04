"""What the store says about a run: its record, where to resume, and its stored config."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from engine.runtime.urls import redact_url

SECRET_MARK: Final = "**********"  # noqa: S105 - the mask, not a password
# Keys whose values are secrets wherever they appear in a config.
_SECRET_KEY: Final = re.compile(
    r"(secret|password|passwd|token|api_?key|credential)", re.IGNORECASE
)


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    CRASHED = "crashed"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    config: dict[str, Any]
    data_source: str
    started_at: datetime
    planned_end: datetime | None
    ended_at: datetime | None
    status: RunStatus
    last_event_id: str | None
    last_event_ts: datetime | None
    end_reason: str | None = None  # why a failed or stopped run ended

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunRecord:
        return cls(
            run_id=row["run_id"],
            config=dict(row.get("config") or {}),
            data_source=row["data_source"],
            started_at=_utc(row["started_at"]),
            planned_end=_utc(row.get("planned_end")),
            ended_at=_utc(row.get("ended_at")),
            status=RunStatus(row["status"]),
            last_event_id=row.get("last_event_id"),
            last_event_ts=_utc(row.get("last_event_ts")),
            end_reason=row.get("end_reason"),
        )


@dataclass(frozen=True, slots=True)
class Cursor:
    """The last market event of one symbol that the run processed."""

    event_id: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a restarted run picks up: skip market events at or before these."""

    run_id: str
    last_event_id: str | None
    last_event_ts: datetime | None
    cursors: Mapping[str, Cursor] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The pipeline's state right after the market event `last_event_id`."""

    last_event_id: str
    last_event_ts: datetime
    market_events: int
    state: Mapping[str, Any] | str  # as JSON values, or as JSON text ready to store


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def redact_config(value: Any, key: str = "") -> Any:
    """A JSON-ready copy of a config with secrets masked; the stored config never holds one.

    Settings.redacted() masks its own secrets already; this second layer catches
    anything else (a nested dict, a URL with a password in a plain string).
    """
    if isinstance(value, Mapping):
        return {str(k): redact_config(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_config(v, key) for v in value]
    if _SECRET_KEY.search(key) and value not in (None, ""):
        return SECRET_MARK
    if isinstance(value, str):
        return redact_url(value) if "://" in value else value
    if isinstance(value, Decimal | Path | StrEnum):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_config(str(value), key)


def config_json(config: Mapping[str, Any]) -> str:
    return json.dumps(redact_config(config), sort_keys=True)
