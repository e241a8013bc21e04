"""Operator commands inside a services run: relayed by the supervisor, applied by risk.

The supervisor takes `halt`, `resume` and planned `stop` commands from the run's
control channel (engine.ops.control) and appends them to the run's `control` stream
in Redis. The risk service reads that stream at the end of each of its steps, after
the market time's inputs and before its barriers: it applies every command not
applied yet at that market time, exactly as one process applies a command between
two market events (`halt` and `resume` with the note, a planned stop as
`Pipeline.close_out`: no new entries, every position closed at market). What a
command changed, the outcome (with the market time it applied at), how far it has
read the stream and, while a planned stop closes out, what is still held are written
in the same transaction as the step: a risk service restarted mid-step applies the
command again, once. Without commands nothing changes: the fills stay those of one
process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from redis.client import Pipeline as RedisPipeline

from engine.bus.redis import RedisBus
from engine.clock import Clock
from engine.risk.service import RiskService

CONTROL: Final = "control"  # the stream the supervisor relays commands on
OUTCOMES: Final = "control:outcomes"  # command id -> what came of it (JSON)
CLOSING: Final = "control:closing"  # a planned stop's progress (JSON)
STOPPING: Final = "the run is stopping (planned)"
RELAYED: Final = ("halt", "resume", "stop")


def relay(bus: RedisBus, command_id: int, kind: str, note: str) -> None:
    """Hand a command to the risk service (the supervisor's side)."""
    if kind not in RELAYED:
        raise ValueError(f"command {kind!r} is not one risk applies")
    fields = {b"id": str(command_id).encode(), b"kind": kind.encode(), b"note": note.encode()}
    bus.redis.xadd(bus.key(CONTROL), fields)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Applied:
    """What came of one command in the risk service."""

    command_id: int
    kind: str
    done: bool  # False: refused, with the reason in `result`
    market_ts: datetime
    result: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "command_id": self.command_id,
                "kind": self.kind,
                "done": self.done,
                "market_ts": self.market_ts.isoformat(),
                "result": dict(self.result),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Applied:
        body = json.loads(raw)
        return cls(
            int(body["command_id"]),
            str(body["kind"]),
            bool(body["done"]),
            datetime.fromisoformat(body["market_ts"]),
            dict(body.get("result") or {}),
        )


@dataclass(frozen=True, slots=True)
class Closing:
    """A planned stop's progress, as risk sees it after a market time."""

    market_ts: datetime
    held: Decimal  # the sum of the absolute quantities still held
    open_positions: tuple[str, ...]
    flat: bool  # nothing held and no order working

    def to_json(self) -> str:
        return json.dumps(
            {
                "market_ts": self.market_ts.isoformat(),
                "held": str(self.held),
                "open_positions": list(self.open_positions),
                "flat": self.flat,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Closing:
        body = json.loads(raw)
        return cls(
            datetime.fromisoformat(body["market_ts"]),
            Decimal(body["held"]),
            tuple(body["open_positions"]),
            bool(body["flat"]),
        )


def apply_command(
    risk: RiskService, kind: str, note: str, now: datetime
) -> tuple[bool, dict[str, Any]]:
    """Apply one command to risk at market time `now`: (done, result), as one process does."""
    if kind == "halt":
        if not risk.halt(now, note):
            return False, {"reason": "trading is halted already"}
        return True, {"trading_state": risk.state.value}
    if kind == "resume":
        state = risk.state.value
        if not risk.resume(now, note):
            return False, {"reason": f"trading is {state}, not halted: there is nothing to resume"}
        return True, {"trading_state": risk.state.value}
    if kind == "stop":
        close_out(risk)
        risk.halt(now, f"planned stop: {note}")
        return True, {"trading_state": risk.state.value, "closing": True}
    return False, {"reason": f"{kind} is not a command the risk service applies"}


def close_out(risk: RiskService) -> None:
    """From now on a halt flattens, whatever CIRCUIT_BREAKER_ACTION says (`Pipeline.close_out`)."""
    if risk.settings.circuit_breaker_action != "flatten":
        risk.settings = risk.settings.model_copy(update={"circuit_breaker_action": "flatten"})


def closing_of(risk: RiskService, now: datetime) -> Closing:
    held = sum((abs(q) for q in risk.positions.values()), Decimal(0))
    open_positions = tuple(sorted(s for s, q in risk.positions.items() if q))
    return Closing(now, held, open_positions, not open_positions and not risk.in_flight)


class RiskControl:
    """The risk service's side: the commands relayed since its last step, applied."""

    def __init__(self, bus: RedisBus, risk: RiskService, clock: Clock) -> None:
        self.bus = bus
        self.risk = risk
        self.clock = clock
        self.cursor = "0-0"
        self.closing = False
        self._applied: list[Applied] = []

    def restore(self, saved: Mapping[str, Any] | None) -> None:
        if not saved:
            return
        self.cursor = str(saved.get("cursor") or "0-0")
        self.closing = bool(saved.get("closing"))
        if self.closing:
            close_out(self.risk)  # the settings are not part of risk's saved state

    def state(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "closing": self.closing}

    def apply(self) -> list[Applied]:
        """Every command relayed since the last step, applied now (before the step's barriers)."""
        now = self.clock.now()
        entries: list[Any] = (
            self.bus.redis.xrange(self.bus.key(CONTROL), min=f"({self.cursor}", max="+") or []
        )
        self._applied = []
        for msg_id, fields in entries:
            self.cursor = _text(msg_id)
            command_id = int(_text(fields[b"id"]))
            kind, note = _text(fields[b"kind"]), _text(fields[b"note"])
            done, result = apply_command(self.risk, kind, note, now)
            if kind == "stop" and done:
                self.closing = True
            self._applied.append(Applied(command_id, kind, done, now, result))
        return list(self._applied)

    def commit(self, pipe: RedisPipeline) -> None:
        """The outcomes and the stop's progress, in the step's transaction."""
        for applied in self._applied:
            pipe.hset(self.bus.key(OUTCOMES), str(applied.command_id), applied.to_json())
        if self.closing:
            pipe.set(self.bus.key(CLOSING), closing_of(self.risk, self.clock.now()).to_json())


def read_outcomes(bus: RedisBus, command_ids: list[int]) -> dict[int, Applied]:
    """The outcomes of the commands named that risk has applied (the supervisor's side)."""
    if not command_ids:
        return {}
    raws = bus.redis.hmget(bus.key(OUTCOMES), [str(c) for c in command_ids])
    return {c: Applied.from_json(raw) for c, raw in zip(command_ids, raws, strict=True) if raw}


def read_closing(bus: RedisBus) -> Closing | None:
    raw = bus.redis.get(bus.key(CLOSING))
    return Closing.from_json(raw) if raw else None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


__all__ = [
    "Applied",
    "Closing",
    "RiskControl",
    "apply_command",
    "closing_of",
    "read_closing",
    "read_outcomes",
    "relay",
]
