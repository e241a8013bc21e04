"""The service processes' ports."""

from __future__ import annotations

import os

from engine.errors import ConfigError
from engine.services.host import SERVICES


def service_ports() -> dict[str, int] | None:
    """`CLAIRE_SERVICE_PORT_BASE`: the services' ports from there on, in pipeline order."""
    base = os.environ.get("CLAIRE_SERVICE_PORT_BASE")
    if not base:
        return None
    if not base.isdigit() or not 1024 <= int(base) <= 65000:
        raise ConfigError(
            f"CLAIRE_SERVICE_PORT_BASE={base} is invalid: use a port from 1024 to 65000."
        )
    return {name: int(base) + n for n, name in enumerate(SERVICES)}


__all__ = ["service_ports"]
