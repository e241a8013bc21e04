"""Exact Decimals from what exchanges send.

MEXC spot sends prices as strings: those are taken verbatim. MEXC futures sends
JSON numbers, which ccxt has already turned into floats. Python's float repr is
the shortest text that round-trips, so for any value written with at most 15
significant digits `Decimal(repr(x))` gives back exactly the digits on the wire
(15 is the guarantee of IEEE doubles). Longer values are not exact; no MEXC
price or size comes close to that.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from engine.errors import DataSourceError


def exact_decimal(value: object, name: str) -> Decimal:
    """A finite Decimal from a string, int, Decimal or float (via its shortest repr)."""
    if isinstance(value, bool) or value is None:
        raise DataSourceError(f"exchange field {name} is {value!r}, expected a number")
    try:
        if isinstance(value, Decimal):
            result = value
        elif isinstance(value, float):
            result = Decimal(repr(value))
        elif isinstance(value, int | str):
            result = Decimal(str(value).strip())
        else:
            raise InvalidOperation
    except InvalidOperation:
        raise DataSourceError(f"exchange field {name} is {value!r}, expected a number") from None
    if not result.is_finite():
        raise DataSourceError(f"exchange field {name} is {value!r}, expected a finite number")
    return result


def optional_decimal(value: object, name: str) -> Decimal | None:
    return None if value is None or value == "" else exact_decimal(value, name)


def int_ms(value: object, name: str) -> int:
    """Integer milliseconds from an int, a digit string or an integral float."""
    if isinstance(value, bool):
        raise DataSourceError(f"exchange field {name} is {value!r}, expected a time")
    try:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError
            return int(value)
        return int(str(value))
    except (TypeError, ValueError):
        raise DataSourceError(f"exchange field {name} is {value!r}, expected a time") from None


def utc_ms(ms: int) -> datetime:
    """UTC datetime from epoch milliseconds, computed without float rounding."""
    seconds, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=millis * 1000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(ts: datetime) -> int:
    """Epoch milliseconds of a UTC datetime, computed without float rounding."""
    return (ts - _EPOCH) // timedelta(milliseconds=1)
