"""The runbook's alarm table as pure functions: figures in, readings out.

Each rule has a name, a severity, a threshold and how long its condition must
hold before it fires (`for_s`). A `Reading` says whether the condition holds now
and the measured value, with the sentence an operator reads in a notification.

| rule                 | condition                                          | severity |
|----------------------|----------------------------------------------------|----------|
| daily_drawdown_high  | equity below the UTC day's start > 4.5 %           | critical |
| exposure_high        | open notional over equity > 28 %                   | warning  |
| open_positions_high  | open positions > 2                                 | warning  |
| no_signals           | no signal from the strategy for 1 h (event time)   | warning  |
| data_stop            | a symbol silent longer than its bar + stale limit  | critical |
| service_down         | a service down or unhealthy for 30 s (wall time)   | critical |
| memory_high          | the machine's memory in use > 90 % (wall time)     | warning  |

Thresholds come from the settings (`ALERT_*`, `STALE_DATA_SECONDS`).

The level rules (drawdown, exposure, open positions, memory) have hysteresis: an
episode that fired clears only once the figure is at or below its clear level,
`ALERT_CLEAR_RATIO` times the threshold (open positions: 2 x 0.8 = 1.6, so at
most one position), and a warning fires again only `ALERT_QUIET_SECONDS` after its
last episode resolved (a critical alert has no quiet period). Both count in the
caller's clock: event time for market rules, so a replay gives the same alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from engine.config import Settings
from engine.events import PortfolioSnapshot, Severity

DAILY_DRAWDOWN: Final = "daily_drawdown_high"
EXPOSURE: Final = "exposure_high"
OPEN_POSITIONS: Final = "open_positions_high"
NO_SIGNALS: Final = "no_signals"
DATA_STOP: Final = "data_stop"
SERVICE_DOWN: Final = "service_down"
MEMORY: Final = "memory_high"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    severity: Severity
    threshold: Decimal
    for_s: int  # how long the condition must hold before the alert fires
    clear_level: Decimal | None = None  # level rules: an episode clears at or below this
    quiet_s: int = 0  # after an episode resolves, no new one fires for this long


@dataclass(frozen=True, slots=True)
class Reading:
    """One rule's condition now, for one key (a symbol or a service; empty for the account)."""

    rule: str
    key: str
    active: bool
    value: Decimal
    threshold: Decimal
    message: str
    clear: bool | None = None  # level rules: at or below the clear level (None: not active)


def rules(settings: Settings) -> dict[str, Rule]:
    """Every rule with its threshold from the settings."""
    hold = settings.alert_for_seconds
    ratio, quiet = settings.alert_clear_ratio, settings.alert_quiet_seconds

    def level(name: str, severity: Severity, threshold: Decimal) -> Rule:
        # A critical alert is never held back by a quiet period: only warnings are.
        wait = quiet if severity is Severity.WARNING else 0
        return Rule(name, severity, threshold, hold, threshold * ratio, wait)

    table = (
        level(DAILY_DRAWDOWN, Severity.CRITICAL, settings.alert_daily_drawdown_pct),
        level(EXPOSURE, Severity.WARNING, settings.alert_exposure_pct),
        level(OPEN_POSITIONS, Severity.WARNING, Decimal(settings.alert_open_positions)),
        # Silence and health rules measure a duration themselves: they fire at once.
        Rule(NO_SIGNALS, Severity.WARNING, Decimal(settings.alert_no_signal_seconds), 0),
        Rule(DATA_STOP, Severity.CRITICAL, Decimal(settings.stale_data_seconds), 0),
        Rule(
            SERVICE_DOWN,
            Severity.CRITICAL,
            Decimal(settings.alert_service_down_seconds),
            settings.alert_service_down_seconds,
        ),
        level(MEMORY, Severity.WARNING, settings.alert_memory_pct),
    )
    return {rule.name: rule for rule in table}


def _cleared(rule: Rule, value: Decimal) -> bool | None:
    return None if rule.clear_level is None else value <= rule.clear_level


def _pct(value: Decimal) -> str:
    return f"{value * 100:.2f} %"


def _always(rule: str, key: str) -> bool:
    return True


# Which idle readings to return besides the active ones: a book steps an idle reading
# only when it follows an episode of that rule and key (to resolve it, or to remember
# its quiet period); any other idle reading would change nothing, so it is not made.
Wanted = Callable[[str, str], bool]


def snapshot_readings(
    snapshot: PortfolioSnapshot, table: Mapping[str, Rule], wanted: Wanted = _always
) -> list[Reading]:
    """Daily drawdown, exposure and open positions of one portfolio snapshot."""
    dd, ex, op = table[DAILY_DRAWDOWN], table[EXPOSURE], table[OPEN_POSITIONS]
    out = []
    daily = snapshot.daily_drawdown_pct
    active = daily > dd.threshold
    if active or wanted(dd.name, ""):
        message = f"daily drawdown {_pct(daily)} (alert above {_pct(dd.threshold)})"
        out.append(Reading(dd.name, "", active, daily, dd.threshold, message, _cleared(dd, daily)))
    exposure = snapshot.exposure_pct
    active = exposure > ex.threshold
    if active or wanted(ex.name, ""):
        message = f"exposure {_pct(exposure)} of equity (alert above {_pct(ex.threshold)})"
        out.append(
            Reading(ex.name, "", active, exposure, ex.threshold, message, _cleared(ex, exposure))
        )
    positions = Decimal(sum(1 for p in snapshot.positions if p.qty != 0))
    active = positions > op.threshold
    if active or wanted(op.name, ""):
        message = f"{positions} open positions (alert above {op.threshold})"
        out.append(
            Reading(op.name, "", active, positions, op.threshold, message, _cleared(op, positions))
        )
    return out


def silence_readings(
    now: datetime,
    started_at: datetime,
    last_signal_at: datetime | None,
    last_seen: Mapping[str, datetime],
    cadence_s: Mapping[str, int],
    table: Mapping[str, Rule],
    wanted: Wanted = _always,
) -> list[Reading]:
    """No signal for too long, and each symbol's silence beyond its bar interval.

    A symbol with 5-minute candles is silent only when the next candle is overdue by
    more than the stale limit; one with trades when nothing came for the limit.
    """
    quiet, stop = table[NO_SIGNALS], table[DATA_STOP]
    since = last_signal_at if last_signal_at is not None else started_at
    out = []
    waited = int((now - since).total_seconds())
    active = waited > quiet.threshold
    if active or wanted(quiet.name, ""):
        message = f"no signal for {waited} s of market time (alert after {quiet.threshold} s)"
        out.append(Reading(quiet.name, "", active, Decimal(waited), quiet.threshold, message))
    for symbol in sorted(last_seen):
        allowed = stop.threshold + cadence_s.get(symbol, 0)
        silent = int((now - last_seen[symbol]).total_seconds())
        active = silent > allowed
        if active or wanted(stop.name, symbol):
            message = f"no market data for {symbol} for {silent} s (alert after {allowed} s)"
            out.append(Reading(stop.name, symbol, active, Decimal(silent), allowed, message))
    return out


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    name: str
    healthy: bool
    reason: str = ""


def health_readings(
    memory_frac: Decimal | None, services: Iterable[ServiceHealth], table: Mapping[str, Rule]
) -> list[Reading]:
    """Memory in use and each service's health; the rule's `for_s` makes `down > 30 s`."""
    down, mem = table[SERVICE_DOWN], table[MEMORY]
    out = []
    if memory_frac is not None:
        out.append(
            Reading(
                mem.name,
                "",
                memory_frac > mem.threshold,
                memory_frac,
                mem.threshold,
                f"memory in use {_pct(memory_frac)} (alert above {_pct(mem.threshold)})",
                _cleared(mem, memory_frac),
            )
        )
    for service in services:
        state = "healthy" if service.healthy else f"down or unhealthy: {service.reason}"
        out.append(
            Reading(
                down.name,
                service.name,
                not service.healthy,
                Decimal(0 if service.healthy else 1),
                down.threshold,
                f"service {service.name} {state} (alert after {down.threshold} s)",
            )
        )
    return out
