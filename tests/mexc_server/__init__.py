"""A local server that speaks MEXC's public protocol, with fault injection, for tests."""

from tests.mexc_server.server import BLOCKED_TEMPLATE, CONTRACT_MISSING, Faults, MexcServer

__all__ = ["BLOCKED_TEMPLATE", "CONTRACT_MISSING", "Faults", "MexcServer"]
