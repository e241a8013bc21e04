"""What the services of a live run share besides the streams: the symbols' rules, as
the exchange stated them when the run was recorded, and the warm-up candles.

A live run's record keeps its symbols' specs (ticks, lots, fees, contract terms), so
every service trades by the same rules without asking the exchange itself. The feed
service keeps the candles it warmed up with in Redis (`feed:warmup`, written once,
before its first market time); the signal and risk services show them to the strategy
and to risk's volatility before their first step, as one process does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from decimal import Decimal
from typing import Any

from engine.bus.redis import RedisBus
from engine.config import Settings
from engine.contracts import ContractTerms
from engine.events import Candle, from_json, to_json
from engine.kernel.recorded import settings_from_snapshot
from engine.markets import SymbolSpec
from engine.services.worker import Components
from engine.signal.loader import StrategyChoice
from engine.store import RunRecord

WARMUP_KEY = "feed:warmup"


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def specs_to_config(specs: dict[str, SymbolSpec]) -> dict[str, dict[str, Any]]:
    """The specs as JSON-ready text (Decimals as strings: exact)."""
    out: dict[str, dict[str, Any]] = {}
    for symbol, spec in sorted(specs.items()):
        body = {f.name: _plain(getattr(spec, f.name)) for f in fields(spec) if f.name != "contract"}
        if spec.contract is not None:
            body["contract"] = {
                f.name: _plain(getattr(spec.contract, f.name)) for f in fields(spec.contract)
            }
        out[symbol] = body
    return out


def _typed(cls: type, body: dict[str, Any]) -> dict[str, Any]:
    kinds = {f.name: f.type for f in fields(cls)}
    out: dict[str, Any] = {}
    for name, value in body.items():
        kind = str(kinds.get(name, ""))
        if "Decimal" in kind and value is not None:
            out[name] = Decimal(str(value))
        elif kind in ("int", "<class 'int'>") and value is not None:
            out[name] = int(value)
        else:
            out[name] = value
    return out


def specs_from_config(config: dict[str, dict[str, Any]]) -> dict[str, SymbolSpec]:
    specs: dict[str, SymbolSpec] = {}
    for symbol, body in config.items():
        contract = body.get("contract")
        terms = ContractTerms(**_typed(ContractTerms, contract)) if contract else None
        plain = {k: v for k, v in body.items() if k != "contract"}
        specs[symbol] = SymbolSpec(**_typed(SymbolSpec, plain), contract=terms)
    return specs


def is_live(run: RunRecord) -> bool:
    return bool(run.config.get("live"))


def live_specs_of(run: RunRecord) -> dict[str, SymbolSpec]:
    return specs_from_config((run.config.get("live") or {}).get("specs") or {})


def live_parts(run: RunRecord) -> tuple[StrategyChoice, Settings]:
    """A recorded live run's strategy and settings, as it was started."""
    settings = settings_from_snapshot(run.config.get("settings", {}))
    return StrategyChoice.from_config(run.config, settings.strategy), settings


def warm_up(name: str, bus: RedisBus, parts: Components, stop: Callable[[], bool]) -> int:
    """Show the feed's warm-up candles to the strategy (signal) or to risk's volatility
    (risk), as one process does before the first live event; how many."""
    if name not in ("signal", "risk"):
        return 0
    candles = load_warmup(bus, stop) or []
    for candle in candles:
        if name == "signal":
            parts.signals.warm_up(candle)
        else:
            parts.risk.warm_up(candle)
    return len(candles)


def save_warmup(bus: RedisBus, candles: Sequence[Candle]) -> bool:
    """Keep the warm-up candles unless an earlier start of the feed kept its own."""
    body = json.dumps([to_json(c) for c in candles])
    return bool(bus.redis.set(bus.key(WARMUP_KEY), body, nx=True))


def load_warmup(
    bus: RedisBus, stop: Callable[[], bool], poll_s: float = 0.1
) -> list[Candle] | None:
    """The feed's warm-up candles, once it has kept them; None if stopped before."""
    while not stop():
        raw = bus.redis.get(bus.key(WARMUP_KEY))
        if raw is not None:
            candles = [from_json(text) for text in json.loads(raw)]
            return [c for c in candles if isinstance(c, Candle)]
        time.sleep(poll_s)
    return None


__all__ = [
    "WARMUP_KEY",
    "is_live",
    "live_parts",
    "live_specs_of",
    "load_warmup",
    "save_warmup",
    "specs_from_config",
    "specs_to_config",
    "warm_up",
]
