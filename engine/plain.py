"""Values made plain for people and JSON: fixed-point decimals, ISO 8601 UTC times.

Reports, exports and summaries use this; the event wire format keeps Decimal text
exactly as it was and lives in `engine.events`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any


def plain_decimal(value: Decimal) -> str:
    """Fixed-point text without exponent or trailing zeros: 0E-8 is 0, 1E+2 is 100."""
    return format(value.normalize(), "f") if value.is_finite() else str(value)


def iso_utc(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """Decimals and times as text, through dicts, lists and tuples; the rest unchanged."""
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def plain_dict(value: Any) -> dict[str, Any]:
    """`plain` of a mapping, typed as the dict it is."""
    out = plain(value)
    assert isinstance(out, dict)
    return out
