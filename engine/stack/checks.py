"""What `claire stack up` checks before it creates anything: the live settings of
compose/.env agree with each other, and every host port it will publish is free.

Live settings: `CLAIRE_EXCHANGE` (`mexc`, or empty for the replay of
`CLAIRE_REPLAY_FILES`), `CLAIRE_MARKET` (`spot` or `futures`) and `CLAIRE_SYMBOLS`
(needed for live, all in one quote currency: one run values everything in one),
`CLAIRE_LIVE_DAYS` (a live run's planned length in days; empty: until stopped).
The error names the variable and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from engine.errors import ConfigError
from engine.events import SYMBOL_PATTERN
from engine.limits import MAX_DAYS, MIN_DAYS
from engine.stack.config import StackConfig, port_free
from engine.stack.spec import Service

EXCHANGES: Final = ("mexc",)
MARKETS: Final = ("spot", "futures")
# Quote currencies a symbol can end in, longest first (FDUSD before USD).
QUOTES: Final = tuple(
    sorted(
        ("USDT", "USDC", "USDE", "FDUSD", "TUSD", "USD1", "USD", "BTC", "ETH", "EUR", "BRL", "TRY"),
        key=len,
        reverse=True,
    )
)


@dataclass(frozen=True)
class StackMode:
    """What the stack's run feeds on: an exchange's live market, or replay files."""

    exchange: str  # "" for a replay
    market: str
    symbols: tuple[str, ...]
    files: tuple[str, ...]
    days: float | None = None  # a live run's planned length; None: until stopped

    @property
    def live(self) -> bool:
        return bool(self.exchange)

    def describe(self) -> str:
        if self.live:
            length = f" for {self.days:g} days" if self.days else ""
            return (
                f"live: {self.exchange} {self.market}, symbols {', '.join(self.symbols)}"
                f"{length} (paper trading on the live market)"
            )
        return f"replay: {', '.join(self.files) or 'no files'}"


def quote_of(symbol: str) -> str | None:
    """The quote currency `symbol` ends in, if it is one of QUOTES."""
    for quote in QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return quote
    return None


def stack_mode(env: Mapping[str, str]) -> StackMode:
    """The stack's live settings from compose/.env (and the environment), checked."""
    exchange = env.get("CLAIRE_EXCHANGE", "").strip().lower()
    market = env.get("CLAIRE_MARKET", "").strip().lower() or "spot"
    raw = env.get("CLAIRE_SYMBOLS", "")
    symbols = tuple(
        s.strip().upper().replace("/", "").replace("_", "") for s in raw.split(",") if s.strip()
    )
    default_files = "ETH_BTC-5m.csv,LTC_BTC-5m.csv,ADA_BTC-5m.csv,DASH_BTC-5m.csv"
    files = tuple(
        f.strip() for f in (env.get("CLAIRE_REPLAY_FILES") or default_files).split(",") if f.strip()
    )
    if exchange and exchange not in EXCHANGES:
        raise ConfigError(
            f"CLAIRE_EXCHANGE is {exchange!r}; set it to mexc for a live run, or leave it empty "
            "for the replay of CLAIRE_REPLAY_FILES (compose/.env)."
        )
    if market not in MARKETS:
        raise ConfigError(
            f"CLAIRE_MARKET is {market!r}; set it to spot or futures in compose/.env."
        )
    if exchange:
        _check_symbols(symbols)
    days = _live_days(env.get("CLAIRE_LIVE_DAYS", "")) if exchange else None
    return StackMode(exchange, market, symbols, files, days)


def _live_days(text: str) -> float | None:
    if not text.strip():
        return None
    try:
        days = float(text.strip())
    except ValueError:
        days = -1.0
    if not math.isfinite(days) or not MIN_DAYS <= days <= MAX_DAYS:
        raise ConfigError(
            f"CLAIRE_LIVE_DAYS is {text.strip()!r}; give the live run's length in days "
            f"({MIN_DAYS:g} to {MAX_DAYS:g}, like 7) in compose/.env, or leave it empty to run "
            "until stopped."
        )
    return days


def _check_symbols(symbols: tuple[str, ...]) -> None:
    if not symbols:
        raise ConfigError(
            "CLAIRE_SYMBOLS is empty and CLAIRE_EXCHANGE asks for a live run; set it in "
            "compose/.env, like CLAIRE_SYMBOLS=BTCUSDT,ETHUSDT."
        )
    quotes: dict[str, list[str]] = {}
    for symbol in symbols:
        quote = quote_of(symbol) if SYMBOL_PATTERN.match(symbol) else None
        if quote is None:
            raise ConfigError(
                f"CLAIRE_SYMBOLS names {symbol!r}, not a symbol quoted in a currency claire "
                f"knows ({', '.join(sorted(QUOTES))}); write it like BTCUSDT in compose/.env."
            )
        quotes.setdefault(quote, []).append(symbol)
    if len(quotes) > 1:
        found = "; ".join(f"{', '.join(names)} in {q}" for q, names in sorted(quotes.items()))
        raise ConfigError(
            f"CLAIRE_SYMBOLS mixes quote currencies ({found}); one run values everything in one "
            "quote currency, so choose symbols with the same quote in compose/.env."
        )


def port_variable(service: Service) -> str:
    """The compose/.env variable that sets `service`'s host port."""
    host = service.ports[0][0] if service.ports else ""
    return host.removeprefix("${").split(":-")[0].rstrip("}") or "?"


def busy_ports(
    config: StackConfig,
    services: Iterable[Service],
    free: Callable[[int], bool] = port_free,
    own: Callable[[Service], bool] = lambda _: False,
) -> list[str]:
    """One line per host port a service would publish that something else holds;
    `own(service)` tells a service whose running container holds its port already."""
    found = []
    for service in services:
        if own(service):
            continue
        for host, _ in config.ports(service):
            if not free(host):
                found.append(f"port {host} of {service.name} ({port_variable(service)})")
    return found


def check_ports(
    config: StackConfig,
    services: Iterable[Service],
    free: Callable[[int], bool] = port_free,
    own: Callable[[Service], bool] = lambda _: False,
) -> None:
    """A `ConfigError` naming every busy port, its service and its variable."""
    busy = busy_ports(config, services, free, own)
    if busy:
        raise ConfigError(
            f"{'; '.join(busy)} {'is' if len(busy) == 1 else 'are'} busy on this machine: stop "
            "what uses it, or set the variable in compose/.env to a free port."
        )


__all__ = [
    "StackMode",
    "busy_ports",
    "check_ports",
    "port_variable",
    "quote_of",
    "stack_mode",
]
