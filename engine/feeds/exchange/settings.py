"""Settings of the live exchange feed, read once from the environment.

Units are in the names (`_ms`, `_s`) because a bare "timeout = 30" is how
seconds and milliseconds get mixed up. Base URLs default to MEXC's public hosts;
tests point them at the local server through the `CLAIRE_MEXC_*_URL` variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from engine.errors import ConfigError
from engine.events import SYMBOL_PATTERN

MarketType = Literal["spot", "futures"]

ENV_SPOT_REST = "CLAIRE_MEXC_SPOT_REST_URL"
ENV_SPOT_WS = "CLAIRE_MEXC_SPOT_WS_URL"
ENV_FUTURES_REST = "CLAIRE_MEXC_FUTURES_REST_URL"
ENV_FUTURES_WS = "CLAIRE_MEXC_FUTURES_WS_URL"

MEXC_SPOT_REST = "https://api.mexc.com"
MEXC_SPOT_WS = "wss://wbs-api.mexc.com/ws"
MEXC_FUTURES_REST = "https://contract.mexc.com"
MEXC_FUTURES_WS = "wss://contract.mexc.com/edge"

# ccxt timeframe names and their length; MEXC has no 1h on spot REST, ccxt maps it.
TIMEFRAME_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400}


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """Everything the live feed needs; build with `FeedSettings.from_env(...)`."""

    symbols: tuple[str, ...]
    exchange: str = "mexc"
    market: MarketType = "spot"
    trades: bool = True
    candle_timeframe: str | None = "1m"  # None: no candle stream
    warmup_candles: int = 200
    spot_rest_url: str = MEXC_SPOT_REST
    spot_ws_url: str = MEXC_SPOT_WS
    futures_rest_url: str = MEXC_FUTURES_REST
    futures_ws_url: str = MEXC_FUTURES_WS
    silence_threshold_s: float = 60.0  # data-stop alert and forced reconnect after this
    watchdog_interval_s: float = 1.0
    reconnect_initial_ms: int = 500
    reconnect_max_ms: int = 30_000
    reconnect_jitter_ratio: float = 0.2  # +-20 % so many clients do not retry in step
    keepalive_ms: int = 15_000  # MEXC closes idle sockets after 60 s; ping well inside that
    rest_timeout_ms: int = 10_000
    rest_max_retries: int = 5
    rest_rate_limit_ms: int = 50  # ms per unit of request weight: MEXC's 20 requests/s
    rate_limit_default_wait_ms: int = 1_000  # when a 429/418 carries no Retry-After
    dedupe_window: int = 20_000  # recent trade keys kept per symbol
    trade_id_gap_detection: bool = True  # numeric, consecutive ids only

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ConfigError("feed symbols are empty; give at least one, like BTCUSDT")
        for symbol in self.symbols:
            if not SYMBOL_PATTERN.match(symbol):
                raise ConfigError(f"feed symbol {symbol!r} is not valid; use the form BTCUSDT")
        if self.market not in ("spot", "futures"):
            raise ConfigError(f"feed market {self.market!r} is unknown; use spot or futures")
        if self.candle_timeframe is not None and self.candle_timeframe not in TIMEFRAME_SECONDS:
            known = ", ".join(TIMEFRAME_SECONDS)
            raise ConfigError(f"candle timeframe {self.candle_timeframe!r} is unknown; use {known}")
        if not self.trades and self.candle_timeframe is None:
            raise ConfigError("the feed subscribes to nothing; enable trades or a candle timeframe")
        if self.silence_threshold_s <= 0 or self.reconnect_initial_ms <= 0:
            raise ConfigError("silence threshold and reconnect delay must be greater than zero")
        if self.reconnect_max_ms < self.reconnect_initial_ms:
            raise ConfigError("reconnect_max_ms must not be below reconnect_initial_ms")

    @property
    def candle_interval_s(self) -> int | None:
        return None if self.candle_timeframe is None else TIMEFRAME_SECONDS[self.candle_timeframe]

    @property
    def is_mexc(self) -> bool:
        return self.exchange == "mexc"

    @classmethod
    def from_env(
        cls,
        symbols: str | tuple[str, ...] | list[str],
        *,
        env: Mapping[str, str] | None = None,
        **overrides: object,
    ) -> FeedSettings:
        """Settings for `symbols` (a list or "BTCUSDT,ETHUSDT") with URLs from the environment."""
        source = os.environ if env is None else env
        if isinstance(symbols, str):
            symbols = [s for s in symbols.split(",") if s.strip()]
        names = tuple(s.strip().upper().replace("/", "").replace("_", "") for s in symbols)
        urls = {
            "spot_rest_url": source.get(ENV_SPOT_REST) or MEXC_SPOT_REST,
            "spot_ws_url": source.get(ENV_SPOT_WS) or MEXC_SPOT_WS,
            "futures_rest_url": source.get(ENV_FUTURES_REST) or MEXC_FUTURES_REST,
            "futures_ws_url": source.get(ENV_FUTURES_WS) or MEXC_FUTURES_WS,
        }
        return cls(symbols=names, **{**urls, **overrides})  # type: ignore[arg-type]

    def with_(self, **changes: object) -> FeedSettings:
        return replace(self, **changes)  # type: ignore[arg-type]
