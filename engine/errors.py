"""The engine's exceptions, each message one sentence that says what to do next.

ClaireError
 +-- ConfigError          a setting is missing, malformed or out of range
 +-- InvalidEventError    an event failed validation (bad number, status, JSON, symbol)
 +-- DataSourceError      a replay file or market feed cannot be read
 +-- StrategyLoadError    a user strategy cannot be imported or built
 +-- StrategyError        a user strategy raised while the run called it
 +-- StoreError           the database refused or could not be reached
 +-- ExchangeError        the exchange refused, throttled or could not be reached
"""

from __future__ import annotations


class ClaireError(Exception):
    """Base of every error the command line turns into one red line."""


class ConfigError(ClaireError):
    pass


class InvalidEventError(ClaireError, ValueError):
    """Raised when an event or a field of one is not acceptable; `reason` is machine-readable."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class DataSourceError(ClaireError):
    pass


class StrategyLoadError(ClaireError):
    pass


class StrategyError(ClaireError):
    """The strategy raised; the message names it, the exception, and the file and line."""


class StoreError(ClaireError):
    pass


class ExchangeError(ClaireError):
    pass


class UnlistedSymbolsError(ExchangeError):
    """Symbols asked for that the exchange does not list in the market asked for."""

    def __init__(self, message: str, symbols: list[str]) -> None:
        super().__init__(message)
        self.symbols = symbols


class RunNotResumable(ClaireError):
    """A run cannot be continued: it completed, failed, or its data or database changed."""


class RunInterrupted(ClaireError):
    """The run stopped on an outage; its checkpoint is intact and it can be resumed."""
