"""The service processes' ports."""

from __future__ import annotations

from engine.config import Settings
from engine.services.host import SERVICES


def service_ports(settings: Settings) -> dict[str, int] | None:
    """`CLAIRE_SERVICE_PORT_BASE` (checked by the settings): the services' ports from there
    on, in pipeline order; None when it is not set (each service's own port)."""
    base = settings.claire_service_port_base
    if base is None:
        return None
    return {name: base + n for n, name in enumerate(SERVICES)}


__all__ = ["service_ports"]
