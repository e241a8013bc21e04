"""Preflight: is the exchange reachable, are the symbols listed, how far off is our clock."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import ccxt as ccxt_errors  # the error classes live at the top level

from engine.errors import ExchangeError
from engine.feeds.exchange.backoff import RestCaller
from engine.feeds.exchange.client import build_exchange
from engine.feeds.exchange.markets import engine_symbol
from engine.feeds.exchange.settings import FeedSettings


@dataclass(frozen=True, slots=True)
class ExchangeCheck:
    exchange: str
    market: str
    reachable: bool
    missing_symbols: tuple[str, ...]
    clock_skew_ms: int | None  # exchange time minus ours, at the middle of the request
    round_trip_ms: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.reachable and not self.missing_symbols


async def check_exchange(settings: FeedSettings) -> ExchangeCheck:
    """One server-time request and one market listing; never raises for a network failure."""
    exchange = build_exchange(settings)
    rest = RestCaller(exchange, settings.with_(rest_max_retries=1))
    try:
        t0 = time.time() * 1000
        server_ms = await rest("server time", lambda: server_time(exchange, settings))
        t1 = time.time() * 1000
        skew = round(server_ms - (t0 + t1) / 2)
        markets = await rest("loading markets", lambda: exchange.load_markets())
        futures = settings.market == "futures"
        listed = {
            engine_symbol(m)
            for m in markets.values()
            if (bool(m.get("swap")) if futures else bool(m.get("spot"))) and m.get("base")
        }
        missing = tuple(s for s in settings.symbols if s not in listed)
        return ExchangeCheck(
            settings.exchange, settings.market, True, missing, skew, round(t1 - t0)
        )
    except (ExchangeError, ccxt_errors.BaseError, OSError) as exc:
        return ExchangeCheck(settings.exchange, settings.market, False, (), None, None, str(exc))
    finally:
        with contextlib.suppress(Exception):
            await exchange.close()


async def server_time(exchange: Any, settings: FeedSettings) -> int:
    """The exchange's clock over REST, in epoch ms."""
    if settings.is_mexc and settings.market == "futures":
        body = await exchange.contractPublicGetPing()
        return int(body["data"])
    if settings.is_mexc:
        body = await exchange.spotPublicGetTime()
        return int(body["serverTime"])
    return int(await exchange.fetch_time())
