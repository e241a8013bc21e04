"""Settings of the live exchange feed, read once from the environment.

Units are in the names (`_ms`, `_s`) because a bare "timeout = 30" is how
seconds and milliseconds get mixed up. Base URLs default to MEXC's public hosts;
tests point them at the local server through the `CLAIRE_MEXC_*_URL` variables.
`CANDLE_CLOSE_GRACE_MS` sets how long after its end, on the exchange's clock, a
live candle waits for late updates before it is closed and emitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.errors import ConfigError
from engine.events import SYMBOL_PATTERN

MarketType = Literal["spot", "futures"]

ENV_SPOT_REST = "CLAIRE_MEXC_SPOT_REST_URL"
ENV_SPOT_WS = "CLAIRE_MEXC_SPOT_WS_URL"
ENV_FUTURES_REST = "CLAIRE_MEXC_FUTURES_REST_URL"
ENV_FUTURES_WS = "CLAIRE_MEXC_FUTURES_WS_URL"
ENV_CANDLE_GRACE = "CANDLE_CLOSE_GRACE_MS"

CANDLE_GRACE_MAX_MS = 30_000  # half the shortest candle: a window closes before the next ends

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
    book_ticker: bool = True  # best bid and ask: Quote events, the spread paper fills pay
    candle_close_grace_ms: int = 2_000  # a candle closes this long after its end, exchange time
    heartbeat_interval_ms: int = 1_000  # at most one heartbeat per symbol this often
    quote_min_interval_ms: int = 100  # at most one quote per symbol this often (the latest wins)
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
        if not self.trades and self.candle_timeframe is None and not self.book_ticker:
            raise ConfigError(
                "the feed subscribes to nothing; "
                "enable trades, the book ticker or a candle timeframe"
            )
        if not 0 <= self.candle_close_grace_ms <= CANDLE_GRACE_MAX_MS:
            raise ConfigError(
                f"{ENV_CANDLE_GRACE}={self.candle_close_grace_ms} is invalid: it must be "
                f"whole milliseconds from 0 to {CANDLE_GRACE_MAX_MS}, like 2000; "
                "fix it in the environment or .env."
            )
        if self.heartbeat_interval_ms <= 0 or self.quote_min_interval_ms < 0:
            raise ConfigError("heartbeat interval must be positive and quote interval not negative")
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
        """Settings for `symbols` (a list or "BTCUSDT,ETHUSDT") from the environment.

        Without `env`, the variables come from the process environment and a `.env`
        file in the working folder, like every other setting.
        """
        source = _environment() if env is None else env
        if isinstance(symbols, str):
            symbols = [s for s in symbols.split(",") if s.strip()]
        names = tuple(s.strip().upper().replace("/", "").replace("_", "") for s in symbols)
        values: dict[str, object] = {
            "spot_rest_url": source.get(ENV_SPOT_REST) or MEXC_SPOT_REST,
            "spot_ws_url": source.get(ENV_SPOT_WS) or MEXC_SPOT_WS,
            "futures_rest_url": source.get(ENV_FUTURES_REST) or MEXC_FUTURES_REST,
            "futures_ws_url": source.get(ENV_FUTURES_WS) or MEXC_FUTURES_WS,
        }
        grace = source.get(ENV_CANDLE_GRACE)
        if grace is not None and grace.strip():
            values["candle_close_grace_ms"] = _whole_ms(grace, ENV_CANDLE_GRACE)
        return cls(symbols=names, **{**values, **overrides})  # type: ignore[arg-type]

    def with_(self, **changes: object) -> FeedSettings:
        return replace(self, **changes)  # type: ignore[arg-type]


class _FeedEnvironment(BaseSettings):
    """The feed's variables, read like engine.config.Settings: environment, then `.env`."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    claire_mexc_spot_rest_url: str | None = None
    claire_mexc_spot_ws_url: str | None = None
    claire_mexc_futures_rest_url: str | None = None
    claire_mexc_futures_ws_url: str | None = None
    candle_close_grace_ms: str | None = None


def _environment() -> dict[str, str]:
    return {
        name.upper(): value
        for name, value in _FeedEnvironment().model_dump().items()
        if value is not None
    }


def _whole_ms(text: str, variable: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ConfigError(
            f"{variable}={text.strip()} is invalid: it must be whole milliseconds, like 2000; "
            "fix it in the environment or .env."
        ) from None


def live_feed_settings(
    exchange: str, market: str, symbols: str | None, timeframe: str | None
) -> FeedSettings:
    """A live run's feed from the command line's words: `--exchange`, `--market`,
    `--symbols` and `--timeframe` (an interval, or none for trades only)."""
    if not symbols:
        raise ConfigError("a live run needs --symbols, like --symbols BTCUSDT,ETHUSDT.")
    if market not in ("spot", "futures"):
        raise ConfigError(f"--market {market!r} is not spot or futures.")
    candles = None if timeframe is None or timeframe.lower() == "none" else timeframe
    return FeedSettings.from_env(
        symbols, exchange=exchange.lower(), market=market, candle_timeframe=candles
    )
