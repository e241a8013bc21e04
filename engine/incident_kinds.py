"""The runbook's six incident types, incident ids, and the alert -> incident mapping.

Pure functions only: what the operator types (`risk-limit`) and what the database
keeps (`risk_limit`, `unresponsive_service`) are two spellings of one `IncidentType`.

    IncidentType.parse("Risk-Limit")                 # IncidentType.RISK_LIMIT
    incident_id(date(2026, 11, 23), 7)               # "INC-20261123-0007"
    parse_alert_mapping("daily_drawdown=risk-limit")  # {"daily_drawdown": RISK_LIMIT}
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from enum import Enum
from typing import Final

from engine.errors import ConfigError


class IncidentType(Enum):
    """(the operator's name, the database's name)."""

    SERVICE_CRASH = ("service-crash", "service_crash")
    RISK_LIMIT = ("risk-limit", "risk_limit")
    UNRESPONSIVE = ("unresponsive", "unresponsive_service")
    DATABASE_OUTAGE = ("database-outage", "database_outage")
    RESOURCE_SHORTAGE = ("resource-shortage", "resource_shortage")
    DATA_STOP = ("data-stop", "data_stop")

    @property
    def label(self) -> str:
        """What the operator types and reads: `risk-limit`."""
        return self.value[0]

    @property
    def stored(self) -> str:
        """What the `incidents` table keeps: `risk_limit`."""
        return self.value[1]

    @classmethod
    def parse(cls, text: str) -> IncidentType:
        """The type named `text`, in either spelling and any letter case."""
        wanted = text.strip().lower()
        for kind in cls:
            if wanted in (kind.label, kind.stored, kind.stored.replace("_", "-")):
                return kind
        raise ConfigError(
            f"incident type {text.strip()!r} is unknown; use one of {', '.join(TYPE_NAMES)}."
        )

    @classmethod
    def from_stored(cls, stored: str) -> IncidentType:
        for kind in cls:
            if kind.stored == stored:
                return kind
        raise ConfigError(f"incident type {stored!r} in the database is unknown.")


TYPE_NAMES: Final = tuple(kind.label for kind in IncidentType)

FIRST_ACTIONS: Final = {
    IncidentType.SERVICE_CRASH: "restart the crashed service",
    IncidentType.RISK_LIMIT: "stop new entries (halt trading)",
    IncidentType.UNRESPONSIVE: "restart the unresponsive service",
    IncidentType.DATABASE_OUTAGE: "hold the pipeline until the database answers",
    IncidentType.RESOURCE_SHORTAGE: "record the top consumers of memory, CPU and disk",
    IncidentType.DATA_STOP: "reconnect the live feed and backfill the gap",
}

# --- incident ids ----------------------------------------------------------------------

_ID: Final = re.compile(r"^INC-(\d{8})-(\d{4,})$")


def incident_id(day: date, number: int) -> str:
    """`INC-YYYYMMDD-NNNN`: readable, and sorted by time as text (within 9999 a day)."""
    if number < 1:
        raise ValueError(f"incident numbers start at 1, not {number}")
    return f"INC-{day:%Y%m%d}-{number:04d}"


def parse_incident_id(text: str) -> tuple[date, int] | None:
    match = _ID.match(text.strip())
    if match is None:
        return None
    digits = match.group(1)
    try:
        day = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None
    return day, int(match.group(2))


def next_incident_id(day: date, existing: Iterable[str]) -> str:
    """The id after every one of `day` in `existing` (ids of other days do not count)."""
    taken = [n for d, n in filter(None, map(parse_incident_id, existing)) if d == day]
    return incident_id(day, max(taken, default=0) + 1)


def check_incident_id(text: str) -> str:
    if parse_incident_id(text) is None:
        raise ConfigError(
            f"{text.strip()!r} is not an incident id like INC-20261123-0001; "
            "`claire incident list` shows them."
        )
    return text.strip()


# --- alerts that open incidents ---------------------------------------------------------

# Every rule an alert can carry: the alarm table (engine.alerts.rules), risk's
# trading-state changes and liquidations, and the live feed's own alerts.
ALERT_RULES: Final = frozenset(
    {
        "daily_drawdown_high",
        "exposure_high",
        "open_positions_high",
        "no_signals",
        "data_stop",
        "service_down",
        "memory_high",
        "daily_drawdown",
        "circuit_breaker",
        "operator_halt",
        "liquidation",
        "backfill_failed",
        "backfill_incomplete",
    }
)


def parse_alert_mapping(text: str) -> dict[str, IncidentType]:
    """`RULE=TYPE` pairs separated by commas (`daily_drawdown=risk-limit,...`); empty or
    `off`: none. An unknown rule or type, or a rule named twice, is a ValueError."""
    out: dict[str, IncidentType] = {}
    if text.strip().lower() in ("", "off"):
        return out
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        rule, sep, kind = (s.strip() for s in part.partition("="))
        if not sep or not rule or not kind:
            raise ValueError(f"{part!r} is not RULE=TYPE, like daily_drawdown=risk-limit")
        rule = rule.lower()
        if rule not in ALERT_RULES:
            raise ValueError(
                f"alert rule {rule!r} is unknown; use one of {', '.join(sorted(ALERT_RULES))}"
            )
        try:
            chosen = IncidentType.parse(kind)
        except ConfigError:
            raise ValueError(
                f"incident type {kind!r} is unknown; use one of {', '.join(TYPE_NAMES)}"
            ) from None
        if rule in out:
            raise ValueError(f"alert rule {rule!r} is mapped twice")
        out[rule] = chosen
    return out


__all__ = [
    "ALERT_RULES",
    "FIRST_ACTIONS",
    "TYPE_NAMES",
    "IncidentType",
    "check_incident_id",
    "incident_id",
    "next_incident_id",
    "parse_alert_mapping",
    "parse_incident_id",
]
