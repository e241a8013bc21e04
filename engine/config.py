"""Settings from the environment and an optional `.env`, validated once at start.

Trading limits keep the plain names of the design (`MAX_POSITION_PCT`, ...);
infrastructure settings carry the `CLAIRE_` prefix. Secrets are `SecretStr`, so
they never show in `repr`, logs or the run's stored config.

Every number has a range a real run fits in (and the database columns hold), so
an absurd value is one line naming the variable at start, never an overflow in
the middle of a run. The `.env` file is checked line by line first (envfile.py).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

import annotated_types
from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.envfile import check_env_file
from engine.errors import ConfigError
from engine.incident_kinds import IncidentType, parse_alert_mapping

ENV_FILE: Final = ".env"

FRACTION_FIELDS = (
    "max_position_pct",
    "max_total_exposure_pct",
    "max_daily_drawdown_pct",
    "circuit_breaker_threshold_pct",
    "position_size_pct",
    "participation_cap_pct",
    "max_margin_usage_pct",
    "min_liquidation_distance_pct",
    "alert_daily_drawdown_pct",
    "alert_exposure_pct",
    "alert_memory_pct",
)
RATE_FIELDS = (
    "maker_fee_rate",
    "taker_fee_rate",
    "futures_maker_fee_rate",
    "futures_taker_fee_rate",
)


_WHOLE: Final = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL: Final = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
_SPECIAL: Final = re.compile(r"[+-]?(nan|inf|infinity|snan)", re.IGNORECASE)  # refused later


def _number_kind(annotation: Any) -> type | None:
    """int for whole-number settings, Decimal for the other numbers, None for the rest."""
    kinds = {annotation, *getattr(annotation, "__args__", ())} - {type(None)}
    if kinds & {int} and not kinds & {bool}:
        return int
    if kinds & {Decimal, float}:
        return Decimal
    return None


class Settings(BaseSettings):
    """Every knob of a run. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_file_encoding="utf-8-sig",  # a byte-order mark is not part of the first name
        extra="ignore",
        frozen=True,
        case_sensitive=False,
    )

    # Account and risk limits (design section 3).
    initial_capital: Decimal = Field(
        default=Decimal("100000"), ge=Decimal("0.00000001"), le=Decimal("1000000000000")
    )
    max_position_pct: Decimal = Decimal("0.10")
    max_total_exposure_pct: Decimal = Decimal("0.30")
    max_daily_drawdown_pct: Decimal = Decimal("0.05")
    circuit_breaker_threshold_pct: Decimal = Decimal("0.10")
    max_open_positions: int = Field(default=3, ge=1, le=1000)
    stale_data_seconds: int = Field(default=30, ge=1, le=2_592_000)  # 30 days
    max_orders_per_minute: int = Field(default=30, ge=1, le=10_000)
    circuit_breaker_action: Literal["flatten", "freeze"] = "flatten"

    # Perpetual futures (design section 3 applies to notional; these add margin rules).
    leverage: Decimal = Field(default=Decimal(1), ge=1, le=200)
    leverage_by_symbol: str = ""  # "XRPUSDT:5,BTCUSDT:3"
    max_leverage: Decimal = Field(default=Decimal(10), ge=1, le=200)
    max_margin_usage_pct: Decimal = Decimal("0.50")
    min_liquidation_distance_pct: Decimal = Decimal("0.05")
    # A replayed perpetual's contract (live runs read these from the exchange).
    contract_size: Decimal = Field(default=Decimal(1), gt=0, le=Decimal("1e9"))
    futures_maker_fee_rate: Decimal = Decimal("0")
    futures_taker_fee_rate: Decimal = Decimal("0.0002")
    maintenance_margin_rate: Decimal = Field(default=Decimal("0.005"), gt=0, lt=1)
    initial_margin_rate: Decimal = Field(default=Decimal("0.01"), gt=0, lt=1)
    funding_default_rate: Decimal = Field(default=Decimal("0.0001"), ge=-1, le=1)
    funding_min_rate: Decimal = Field(default=Decimal("-0.003"), ge=-1, le=1)
    funding_max_rate: Decimal = Field(default=Decimal("0.003"), ge=-1, le=1)
    # A live run as services: the feed closes a market time at least this often, in
    # exchange time (a candle close is a market time of its own).
    feed_watermark_ms: int = Field(default=250, ge=10, le=60_000)

    # Sizing.
    sizing_mode: Literal["fixed", "volatility"] = "fixed"
    position_size_pct: Decimal = Decimal("0.05")
    target_volatility_pct: Decimal = Field(default=Decimal("0.02"), gt=0, lt=1)
    volatility_lookback_bars: int = Field(default=576, ge=2, le=10_000)

    # Paper fills (design section 4).
    order_latency_ms: int = Field(default=200, ge=0, le=3_600_000)  # an hour
    slippage_base_bps: Decimal = Field(default=Decimal("2"), ge=0, le=1000)
    slippage_impact_bps: Decimal = Field(default=Decimal("10"), ge=0, le=10000)
    participation_cap_pct: Decimal = Decimal("0.10")
    order_ttl_seconds: int = Field(default=900, ge=1, le=2_592_000)  # 30 days
    spread_bps: Decimal | None = Field(default=None, ge=0, le=10000)
    spread_window: int = Field(default=48, ge=1, le=100000)
    maker_fee_rate: Decimal = Decimal("0")
    taker_fee_rate: Decimal = Decimal("0.0005")
    lot_size: Decimal = Field(
        default=Decimal("0.00000001"), ge=Decimal("0.000000000001"), le=Decimal("1000000")
    )

    # Strategy.
    strategy: str = "engine.signal.momentum:MomentumStrategy"
    # A strategy call (on_candle, on_trade, its constructor) that runs longer fails the run.
    strategy_timeout_seconds: float = Field(default=5.0, ge=0.1, le=300)

    # Alert rules (the runbook's alarm table). Market rules run on event time.
    alert_daily_drawdown_pct: Decimal = Decimal("0.045")
    alert_exposure_pct: Decimal = Decimal("0.28")
    alert_open_positions: int = Field(default=2, ge=0, le=1000)
    alert_no_signal_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    alert_service_down_seconds: int = Field(default=30, ge=1, le=86400)
    alert_memory_pct: Decimal = Decimal("0.90")
    alert_for_seconds: int = Field(default=60, ge=0, le=86400)
    alert_clear_seconds: int = Field(default=300, ge=0, le=86400)
    # Hysteresis of the level rules: a firing alert clears only at or below this share of
    # its threshold, and a warning fires again only this long after its last episode resolved.
    alert_clear_ratio: Decimal = Field(default=Decimal("0.8"), ge=0, le=1)
    alert_quiet_seconds: int = Field(default=86400, ge=0, le=7 * 86400)
    # Alerts that open an incident when they fire: "RULE=TYPE,..." (empty: none).
    incident_on_alert: str = ""
    incident_bundle_rows: int = Field(default=200, ge=1, le=100_000)  # last rows per table

    # Infrastructure.
    # A run rides out a database outage this long (retrying), then stops, resumable.
    db_outage_tolerance_seconds: int = Field(default=60, ge=0, le=3600)
    claire_home: Path | None = None
    claire_notify_urls: SecretStr | None = None  # apprise URLs, comma separated
    claire_notify_queue: int = Field(default=1000, ge=1, le=100000)
    claire_notify_retries: int = Field(default=3, ge=0, le=10)
    claire_log_max_bytes: int = Field(default=10_000_000, ge=10_000, le=1_000_000_000)
    claire_log_backups: int = Field(default=5, ge=1, le=100)
    claire_log_level: Literal["debug", "info", "warning", "error"] = "info"
    claire_health_interval_s: Decimal = Field(default=Decimal(5), ge=Decimal("0.05"), le=3600)
    claire_auto_reports: bool = True
    # Where /health, /status and /metrics listen: loopback unless a container needs more.
    claire_http_host: str = "127.0.0.1"
    # Their port: a number from 1 to 65535, or `off` for no endpoints.
    claire_http_port: str = "8000"
    claire_postgres_url: SecretStr | None = None  # An existing PostgreSQL, not the embedded one.
    # The services' ports of a `--services` run, from here on in pipeline order.
    claire_service_port_base: int | None = Field(default=None, ge=1024, le=65000)
    claire_redis_url: SecretStr | None = None
    # The embedded Redis's append-only file: always loses nothing, everysec up to a second.
    claire_redis_appendfsync: Literal["always", "everysec", "no"] = "everysec"
    mexc_api_key: SecretStr | None = None
    mexc_api_secret: SecretStr | None = None

    # Operations: backups and the pre-flight checklist.
    backup_dir: Path | None = None  # default: the data folder's backups/
    backup_retention_days: int = Field(default=14, ge=1, le=3650)
    # During a run: `on` backs up before a live run starts and then each BACKUP_INTERVAL of
    # wall time (`daily` is the same as `on`); `off` takes none.
    backup_schedule: Literal["on", "daily", "off"] = "on"
    # Wall time between a run's backups, like 24h, 90m, 3600s or 7d (1 s to 365 d).
    backup_interval: str = "24h"
    backup_max_age_hours: float = Field(default=24.0, ge=1, le=8760)  # preflight warns beyond
    preflight_min_disk_gb: float = Field(default=10.0, ge=0, le=1_000_000)
    preflight_min_memory_gb: float = Field(default=4.0, ge=0, le=1_000_000)
    max_clock_skew_ms: int = Field(default=1000, ge=1, le=600_000)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """Numbers are ASCII digits: a full-width digit or `1_0` is a typo, not a number."""
        if not isinstance(value, str) or info.field_name is None:
            return value
        kind = _number_kind(cls.model_fields[info.field_name].annotation)
        text = value.strip()
        if kind is int and not _WHOLE.fullmatch(text):
            raise ValueError("must be a whole number written with the digits 0-9")
        if kind is Decimal and not (_DECIMAL.fullmatch(text) or _SPECIAL.fullmatch(text)):
            raise ValueError("must be a plain number written with the digits 0-9, like 0.10")
        return value

    @field_validator("claire_http_port")
    @classmethod
    def _port(cls, value: str) -> str:
        text = value.strip().lower()
        if text in ("off", "none"):
            return "off"
        if not _WHOLE.fullmatch(text) or text.startswith(("+", "-")) or not 1 <= int(text) <= 65535:
            raise ValueError("must be a port number from 1 to 65535, or off for no endpoints")
        return str(int(text))

    def http_port(self) -> int | None:
        """The port of /health, /status and /metrics; None when they are off."""
        return None if self.claire_http_port == "off" else int(self.claire_http_port)

    @field_validator("backup_interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        parse_duration(value)
        return value.strip().lower()

    def backup_interval_delta(self) -> timedelta:
        """BACKUP_INTERVAL as a time span."""
        return parse_duration(self.backup_interval)

    @field_validator("claire_home", "backup_dir", mode="before")
    @classmethod
    def _folder(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must name a folder (unset it for the default data folder)")
        if isinstance(value, str | Path) and Path(value).expanduser().is_file():
            raise ValueError("names a file; give a folder")
        return value

    @field_validator("claire_service_port_base", mode="before")
    @classmethod
    def _port_base(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not re.fullmatch(r"[0-9]+", text, re.ASCII):
            raise ValueError("must be a port number from 1024 to 65000 written with the digits 0-9")
        return text

    @field_validator("claire_postgres_url", mode="before")
    @classmethod
    def _postgres_url(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text:
            return None  # set but empty: the embedded server
        _check_postgres_url(text)
        return text

    @field_validator("claire_http_host")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            address = ipaddress.ip_address(value.strip())
        except ValueError:
            raise ValueError(
                "must be an IP address to listen on, like 127.0.0.1 or 0.0.0.0 in a container"
            ) from None
        if not (address.is_loopback or address.is_unspecified):
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            try:
                with socket.socket(family, socket.SOCK_STREAM) as probe:
                    probe.bind((str(address), 0))
            except OSError as exc:
                raise ValueError(
                    f"no address of this machine ({exc.strerror}); use 127.0.0.1, "
                    "0.0.0.0 or one of this machine's addresses"
                ) from None
        return str(address)

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

    @field_validator("leverage_by_symbol")
    @classmethod
    def _leverage_map(cls, value: str) -> str:
        _parse_leverage_map(value)
        return value

    def leverage_by_symbol_map(self) -> dict[str, Decimal]:
        return _parse_leverage_map(self.leverage_by_symbol)

    @field_validator("incident_on_alert")
    @classmethod
    def _incident_map(cls, value: str) -> str:
        parse_alert_mapping(value)
        return value

    def incident_on_alert_map(self) -> dict[str, IncidentType]:
        return parse_alert_mapping(self.incident_on_alert)

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


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)", re.ASCII)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`24h`, `90m`, `3600s`, `7d`: a span from one second to 365 days."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError("must be a duration with its unit, like 24h, 90m, 3600s or 7d")
    span = timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
    if not timedelta(seconds=1) <= span <= timedelta(days=365):
        raise ValueError("must be from 1s to 365d")
    return span


def _check_postgres_url(url: str) -> None:
    """`postgresql://user:password@host:port/database`: the scheme, and ports of 0-9 in range."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("postgresql", "postgres"):
        raise ValueError(
            "must be a PostgreSQL URL like postgresql://user:password@host:5432/claire"
        )
    hosts = rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
    for host in hosts.split(","):
        if host.startswith("["):  # an IPv6 address: [::1]:5432
            port = host.partition("]")[2].removeprefix(":")
        else:
            port = host.partition(":")[2]
        if port and not (re.fullmatch(r"[0-9]+", port, re.ASCII) and 1 <= int(port) <= 65535):
            raise ValueError(
                "has a port that is not a number from 1 to 65535 written with 0-9; fix the "
                "URL's port"
            )


def _parse_leverage_map(value: str) -> dict[str, Decimal]:
    """`SYMBOL:LEVERAGE` pairs separated by commas, each leverage from 1 to 200."""
    out: dict[str, Decimal] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        symbol, _, number = part.partition(":")
        try:
            leverage = Decimal(number.strip())
        except ArithmeticError:
            leverage = Decimal("NaN")
        if not symbol.strip().isalnum() or not leverage.is_finite() or not 1 <= leverage <= 200:
            raise ValueError(f"{part!r} is not SYMBOL:LEVERAGE with a leverage from 1 to 200")
        out[symbol.strip().upper()] = leverage
    return out


def _number(value: object) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def range_of(name: str) -> str | None:
    """The range a numeric setting's constraints allow, in words: "from 1 to 2592000"."""
    field = Settings.model_fields.get(name)
    if field is None:
        return None
    low = high = ""
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            low = f"at least {_number(bound.ge)}"
        elif isinstance(bound, annotated_types.Gt):
            low = f"above {_number(bound.gt)}"
        elif isinstance(bound, annotated_types.Le):
            high = f"at most {_number(bound.le)}"
        elif isinstance(bound, annotated_types.Lt):
            high = f"below {_number(bound.lt)}"
    if low.startswith("at least") and high.startswith("at most"):
        return f"from {low.removeprefix('at least ')} to {high.removeprefix('at most ')}"
    return " and ".join(part for part in (low, high) if part) or None


# Variables of ours read outside this model: the services' ports and runtime knobs,
# the live feed's endpoints, the container stack's own settings.
OTHER_VARIABLES: Final = frozenset(
    {
        "CANDLE_CLOSE_GRACE_MS",
        "CLAIRE_ALERTS_PORT",
        "CLAIRE_COMPOSE_DIR",
        "CLAIRE_EXCHANGE",
        "CLAIRE_EXECUTION_PORT",
        "CLAIRE_FEED_PORT",
        "CLAIRE_HEALTH_INTERVAL",
        "CLAIRE_HEALTH_PORT",
        "CLAIRE_LIVE_DAYS",
        "CLAIRE_MARKET",
        "CLAIRE_MARKET_DATA",
        "CLAIRE_MEXC_FUTURES_REST_URL",
        "CLAIRE_MEXC_FUTURES_WS_URL",
        "CLAIRE_MEXC_SPOT_REST_URL",
        "CLAIRE_MEXC_SPOT_WS_URL",
        "CLAIRE_PORTFOLIO_PORT",
        "CLAIRE_REPLAY_DAYS",
        "CLAIRE_REPLAY_FILES",
        "CLAIRE_REPLAY_SPEED",
        "CLAIRE_RISK_PORT",
        "CLAIRE_RUN_ID",
        "CLAIRE_SERVICE_RESTARTS",
        "CLAIRE_SHARED_DATA",
        "CLAIRE_SHARING_TRIALS",
        "CLAIRE_SIGNAL_PORT",
        "CLAIRE_STACK_NETWORK",
        "CLAIRE_STACK_PROJECT",
        "CLAIRE_SUPERVISOR_PID",
        "CLAIRE_SYMBOLS",
        "CLAIRE_WEB_PORT",
        "CLAIRE_WEB_TOKEN",
        "CLAIRE_WRITER_PORT",
    }
)


def known_variables() -> frozenset[str]:
    """Every variable name Claire reads, upper case."""
    return frozenset(name.upper() for name in Settings.model_fields) | OTHER_VARIABLES


def _distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count one), capped at limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
    return min(row[len(b)], limit + 1)


@cache
def _known_letters() -> tuple[tuple[str, Counter[str]], ...]:
    return tuple((known, Counter(known)) for known in sorted(known_variables()))


def closest_variable(name: str) -> str | None:
    """The known variable `name` is most likely a misspelling of, if any is close."""
    typed = name.strip().upper().replace("-", "_")
    letters = Counter(typed)
    best: tuple[int, str] | None = None
    for known, known_letters in _known_letters():
        limit = 2 if len(known) >= 8 else 1
        if abs(len(typed) - len(known)) > limit:
            continue
        # Each edit changes at most two letters' counts: a cheap bound before the distance.
        if (letters - known_letters).total() + (known_letters - letters).total() > 2 * limit:
            continue
        found = _distance(typed, known, limit)
        if found <= limit and (best is None or found < best[0]):
            best = (found, known)
    return best[1] if best else None


def check_variable_names(names: Iterable[str], where: str) -> None:
    """Refuse a variable that looks like ours but is not one: a misspelled setting is lost."""
    known = known_variables()
    for name in sorted(set(names)):
        if name.upper() in known:
            continue
        closest = closest_variable(name)
        if closest is not None:
            raise ConfigError(
                f"unknown setting {name} {where}; did you mean {closest}? Fix the name, or "
                "remove it."
            )
        if name.upper().replace("-", "_").startswith("CLAIRE_"):
            raise ConfigError(
                f"unknown setting {name} {where}; Claire has no such setting (the README's "
                "Configuration section lists them): fix the name, or remove it."
            )


def load_settings(option_names: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings; any failure becomes one ConfigError naming the variable (or option).

    `option_names` maps fields set from command-line options to those options'
    names (say, initial_capital to --capital), so the error names what was typed.
    """
    env_file = Path(ENV_FILE)
    check_env_file(env_file)
    check_variable_names(os.environ, "in the environment")
    if env_file.is_file():
        check_variable_names(dotenv_values(env_file), f"in {ENV_FILE}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else ""
        variable = field.upper() or "a setting"
        if option_names and field in option_names and field in overrides:
            variable = option_names[field]
        given = str(first.get("input"))
        given = given if len(given) <= 40 else given[:40] + "..."
        secret = any(word in field.upper() for word in ("SECRET", "URL", "KEY", "PASSWORD"))
        shown = "" if secret else (f" {given}" if variable.startswith("--") else f"={given}")
        message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
        bounded = range_of(field)
        if bounded and first.get("type") in _RANGE_ERRORS:
            problem = f"is out of range: it must be {bounded}"
        else:
            problem = f"is invalid: {message}"
        where = "on the command line" if variable.startswith("--") else "in the environment or .env"
        raise ConfigError(f"{variable}{shown} {problem}; fix it {where}.") from None


_RANGE_ERRORS: Final = frozenset(
    {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
)
