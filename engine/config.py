"""Settings from the environment and an optional `.env`, validated once at start.

Trading limits keep the plain names of the design (`MAX_POSITION_PCT`, ...);
infrastructure settings carry the `CLAIRE_` prefix. Secrets are `SecretStr`, so
they never show in `repr`, logs or the run's stored config.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.errors import ConfigError

FRACTION_FIELDS = (
    "max_position_pct",
    "max_total_exposure_pct",
    "max_daily_drawdown_pct",
    "circuit_breaker_threshold_pct",
    "position_size_pct",
    "participation_cap_pct",
)
RATE_FIELDS = ("maker_fee_rate", "taker_fee_rate")


class Settings(BaseSettings):
    """Every knob of a run. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        case_sensitive=False,
    )

    # Account and risk limits (design section 3).
    initial_capital: Decimal = Field(default=Decimal("100000"), gt=0)
    max_position_pct: Decimal = Decimal("0.10")
    max_total_exposure_pct: Decimal = Decimal("0.30")
    max_daily_drawdown_pct: Decimal = Decimal("0.05")
    circuit_breaker_threshold_pct: Decimal = Decimal("0.10")
    max_open_positions: int = Field(default=3, ge=1, le=1000)
    stale_data_seconds: int = Field(default=30, ge=1)
    max_orders_per_minute: int = Field(default=30, ge=1)

    # Sizing.
    sizing_mode: Literal["fixed", "volatility"] = "fixed"
    position_size_pct: Decimal = Decimal("0.05")
    target_volatility_pct: Decimal = Field(default=Decimal("0.02"), gt=0, lt=1)
    volatility_lookback_bars: int = Field(default=48, ge=2)

    # Paper fills (design section 4).
    order_latency_ms: int = Field(default=200, ge=0)
    slippage_base_bps: Decimal = Field(default=Decimal("2"), ge=0, le=1000)
    slippage_impact_bps: Decimal = Field(default=Decimal("10"), ge=0, le=10000)
    participation_cap_pct: Decimal = Decimal("0.10")
    order_ttl_seconds: int = Field(default=900, ge=1)
    maker_fee_rate: Decimal = Decimal("0")
    taker_fee_rate: Decimal = Decimal("0.0005")
    lot_size: Decimal = Field(default=Decimal("0.00000001"), gt=0)

    # Strategy.
    strategy: str = "engine.signal.momentum:MomentumStrategy"

    # Infrastructure.
    # A run rides out a database outage this long (retrying), then stops, resumable.
    db_outage_tolerance_seconds: int = Field(default=60, ge=0, le=3600)
    claire_home: Path | None = None
    claire_postgres_url: SecretStr | None = None
    claire_redis_url: SecretStr | None = None
    mexc_api_key: SecretStr | None = None
    mexc_api_secret: SecretStr | None = None

    @field_validator(*FRACTION_FIELDS)
    @classmethod
    def _fraction(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or not Decimal(0) < value < Decimal(1):
            raise ValueError("must be a fraction between 0 and 1 (exclusive), like 0.10")
        return value

    @field_validator(*RATE_FIELDS)
    @classmethod
    def _rate(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or not Decimal(0) <= value < Decimal("0.1"):
            raise ValueError("must be a fee rate from 0 up to 0.1, like 0.0005 for 0.05 %")
        return value

    def redacted(self) -> dict[str, Any]:
        """The settings as plain JSON values with every secret replaced by a marker."""
        out: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                out[name] = "**********" if value.get_secret_value() else ""
            elif isinstance(value, Decimal | Path):
                out[name] = str(value)
            else:
                out[name] = value
        return out


def load_settings(**overrides: Any) -> Settings:
    """Read settings; any validation failure becomes one ConfigError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        variable = str(first["loc"][0]).upper() if first.get("loc") else "a setting"
        given = first.get("input")
        shown = "" if "SECRET" in variable or "URL" in variable else f"={given}"
        message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
        raise ConfigError(
            f"{variable}{shown} is invalid: {message}; fix it in the environment or .env."
        ) from None
