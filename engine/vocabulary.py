"""The names and units every summary, status and report uses for the same figures.

- Money is in the run's quote currency (`quote_currency`), as exact decimal text.
- Every share is a fraction and its name ends in `_frac`: 0.05 is 5 %. Tables
  show them as percent.
- `max_drawdown_frac` is the deepest fall below the equity peak over the run;
  `drawdown_frac` is the fall below the peak now (at `market_end`), and
  `daily_drawdown_frac` the fall below the UTC day's starting equity now.
  `max_exposure_frac` and `exposure_frac` likewise.
- `market_start` / `market_end` are the market (event) time the run covered;
  `started_at` / `ended_at` the wall-clock time it ran.
- `orders_by_status` counts each order once, by its final status (`open` while
  nothing has happened to it yet, `partially_filled` while the rest still works).
- `underwater` is the period of the deepest drawdown: from its peak (`peak_at`)
  through its low (`low_at`) to the time equity was back at the peak
  (`recovered_at`, empty if never), `duration_s` long.
- Reports (`claire report`) add, over their window of market time: `spread_paid`
  and `slippage_paid` (money), `expectancy` (mean net PnL per round trip) and
  `expectancy_ratio`, `sharpe` and `sortino` (daily returns, 365 a year),
  `avg_exposure_frac` (time-weighted), `risk_compliance`, `alert_episodes`,
  `incidents` and `system` (uptime, restarts, errors, rejected input); the final
  report adds `fill_realism` (the figures of `claire audit fills`; bps are signed
  costs, positive when the trader paid).
- `risk_settings` are the risk settings in force, under their environment names
  (their `_PCT` values are fractions too, as in the environment).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from engine.plain import plain_decimal

# The settings that decide what risk allows, in the order a trader reads them.
RISK_SETTINGS: Final = (
    "max_position_pct",
    "max_total_exposure_pct",
    "max_daily_drawdown_pct",
    "circuit_breaker_threshold_pct",
    "max_open_positions",
    "stale_data_seconds",
    "max_orders_per_minute",
    "sizing_mode",
    "position_size_pct",
    "target_volatility_pct",
    "volatility_lookback_bars",
)
_VOLATILITY_ONLY: Final = ("target_volatility_pct", "volatility_lookback_bars")


def risk_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The risk settings in force from a run's stored settings (`Settings.redacted()`)."""
    out: dict[str, Any] = {}
    for name in RISK_SETTINGS:
        if name in _VOLATILITY_ONLY and settings.get("sizing_mode") != "volatility":
            continue
        if name not in settings:
            continue
        value = settings[name]
        if isinstance(value, str) and name.endswith("_pct"):
            with suppress(InvalidOperation):
                value = plain_decimal(Decimal(value))
        out[name.upper()] = value
    return out


def fraction(numerator: Decimal, denominator: Decimal) -> Decimal:
    return numerator / denominator if denominator else Decimal(0)
