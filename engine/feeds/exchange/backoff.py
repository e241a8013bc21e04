"""Waiting politely: reconnect backoff with jitter, and REST calls that honour 429/418."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ccxt as ccxt_errors  # the error classes live at the top level

from engine.errors import ExchangeError
from engine.feeds.exchange.settings import FeedSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


def backoff_delay_s(
    attempt: int, settings: FeedSettings, rand: Callable[[], float] = random.random
) -> float:
    """initial * 2^attempt, capped, then +-jitter so a crowd of clients spreads out."""
    base_ms: float = min(
        settings.reconnect_max_ms, settings.reconnect_initial_ms * 2 ** min(attempt, 30)
    )
    jitter = 1 + settings.reconnect_jitter_ratio * (2 * rand() - 1)
    return base_ms * jitter / 1000


class RestCaller:
    """Runs ccxt REST calls; waits out `Retry-After` on 429/418 and retries network errors."""

    def __init__(self, exchange: Any, settings: FeedSettings) -> None:
        self._ex = exchange
        self._settings = settings
        self.rate_limited = 0
        self.rate_limit_waits_s: list[float] = []

    async def __call__(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        attempts = self._settings.rest_max_retries + 1
        last: Exception | None = None
        for attempt in range(attempts):
            self._ex.claire_rate_limited = False
            try:
                return await call()
            except ccxt_errors.BaseError as exc:
                last = exc
                if self._ex.claire_rate_limited or isinstance(
                    exc, ccxt_errors.RateLimitExceeded | ccxt_errors.DDoSProtection
                ):
                    await self._wait_out_rate_limit(what)
                elif isinstance(exc, ccxt_errors.NetworkError):  # timeouts, refusals, 5xx
                    delay = backoff_delay_s(attempt, self._settings)
                    log.warning(
                        "%s failed (%s); retrying in %.2f s", what, type(exc).__name__, delay
                    )
                    await asyncio.sleep(delay)
                else:
                    raise ExchangeError(f"{self._ex.id} refused {what}: {_short(exc)}") from None
        raise ExchangeError(
            f"{self._ex.id} {what} still failed after {attempts} attempts: {_short(last)}"
        )

    async def _wait_out_rate_limit(self, what: str) -> None:
        wait = getattr(self._ex, "claire_retry_after_s", None)
        self._ex.claire_retry_after_s = None
        if wait is None:
            wait = self._settings.rate_limit_default_wait_ms / 1000
        self.rate_limited += 1
        self.rate_limit_waits_s.append(wait)
        log.warning("%s was rate limited; waiting %.1f s as Retry-After asks", what, wait)
        await asyncio.sleep(wait)


def _short(exc: object) -> str:
    return str(exc).replace("\n", " ")[:300]
