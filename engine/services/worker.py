"""One pipeline service in its own process, over Redis Streams, deciding exactly as in one.

The single-process pipeline delivers each market time's events in a fixed order
(fills reach the portfolio and risk before the strategy's next signal, ...). Here
every service handles its inputs in that same order, one market time ("group") at a
time: it reads each input stream up to the next `Barrier` of the service that
produces it (on `market_data`, up to the feed's `Watermark`), handles what it read,
and marks its own outputs with a barrier. So each service sees exactly the inputs,
in exactly the order, that it sees in one process, and publishes the same events.

Exactly once: a step's outputs, the acknowledgement of its inputs and the service's
state after it are written in one Redis transaction (MULTI/EXEC). A service killed
mid-step left none of them; restarted, it restores its state, reads its own pending
messages again (they were delivered but not acknowledged) and redoes the step, with
the same deterministic event ids.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson
import redis
from redis.client import Pipeline as RedisPipeline

from engine.alerts.service import AlertService
from engine.bus.redis import RedisBus
from engine.clock import EventClock
from engine.config import Settings
from engine.errors import InvalidEventError
from engine.events import STREAMS, Barrier, Event, Watermark, from_json, to_json
from engine.execution.service import PaperExchange
from engine.kernel.checkpoint import capture, restore
from engine.kernel.pipeline import RunStats
from engine.markets import SymbolSpec
from engine.portfolio.service import Portfolio
from engine.risk.service import RiskService
from engine.signal.base import Strategy
from engine.signal.service import SignalService

log = logging.getLogger("claire.services")

FEED: Final = "feed"


@dataclass(frozen=True, slots=True)
class Step:
    """Inputs read in this order, each up to its producer's next barrier; then barriers out."""

    inputs: tuple[tuple[str, str], ...]  # (stream, producing service)
    barrier_on: tuple[str, ...] = ()


# The single-process route order (engine.kernel.pipeline.Pipeline), service by service.
STEPS: Final[dict[str, tuple[Step, ...]]] = {
    "execution": (
        Step((("market_data", FEED),), barrier_on=("order_results",)),
        Step((("orders", "risk"),)),
    ),
    "portfolio": (
        Step(
            (("order_results", "execution"), ("market_data", FEED)),
            barrier_on=("portfolio_snapshots",),
        ),
    ),
    "signal": (
        Step(
            (("portfolio_snapshots", "portfolio"), ("market_data", FEED)),
            barrier_on=("signals",),
        ),
    ),
    "risk": (
        Step(
            (
                ("order_results", "execution"),
                ("portfolio_snapshots", "portfolio"),
                ("market_data", FEED),
                ("signals", "signal"),
            ),
            barrier_on=("orders", "risk_events", "alerts"),
        ),
    ),
    # The alert rules read what the others did in a market time, as in one process,
    # where they come last; nothing reads their alerts back but the writer.
    "alerts": (
        Step(
            (
                ("portfolio_snapshots", "portfolio"),
                ("signals", "signal"),
                ("risk_events", "risk"),
                ("alerts", "risk"),
                ("market_data", FEED),
            ),
        ),
    ),
}
# Where a service's events go when it must not publish onto a stream it reads itself:
# the alerts service reads risk's `alerts` and publishes its own on `rule_alerts`.
OUTPUT_STREAMS: Final = {("alerts", "alerts"): "rule_alerts"}
# Every stream of a services run: the pipeline's, and those only services publish on.
SERVICE_STREAMS: Final = (*STREAMS, *sorted(set(OUTPUT_STREAMS.values())))
# Which part of `engine.kernel.checkpoint`'s state each service keeps.
OWN_STATE: Final = {
    "execution": "exchange",
    "portfolio": "portfolio",
    "signal": "signals",
    "risk": "risk",
    "alerts": "alerts",
}


@dataclass
class Components:
    """The pipeline's parts, as `engine.kernel.checkpoint` captures and restores them."""

    settings: Settings
    clock: EventClock
    strategy: Strategy
    exchange: PaperExchange
    portfolio: Portfolio
    risk: RiskService
    signals: SignalService
    alerts: AlertService
    stats: RunStats = field(default_factory=RunStats)


def build_components(
    settings: Settings,
    specs: dict[str, SymbolSpec],
    strategy: Strategy,
    publish: Callable[[Event], None],
) -> Components:
    clock = EventClock()
    exchange = PaperExchange(settings, specs, publish)
    portfolio = Portfolio(settings.initial_capital, publish, specs, exchange.perps.leverage)
    risk = RiskService(settings, specs, clock, publish)
    signals = SignalService(strategy, publish)
    alerts = AlertService(settings, publish)
    return Components(settings, clock, strategy, exchange, portfolio, risk, signals, alerts)


def handlers(name: str, parts: Components) -> dict[str, Callable[[Any], None]]:
    """What each input stream's messages go to, for the service `name`."""
    table: dict[str, dict[str, Callable[[Any], None]]] = {
        "execution": {
            "market_data": parts.exchange.on_market,
            "orders": parts.exchange.on_order,
        },
        "portfolio": {
            "order_results": parts.portfolio.on_result,
            "market_data": parts.portfolio.on_market,
        },
        "signal": {
            "portfolio_snapshots": parts.signals.on_snapshot,
            "market_data": parts.signals.on_market,
        },
        "risk": {
            "order_results": parts.risk.on_result,
            "portfolio_snapshots": parts.risk.on_snapshot,
            "market_data": parts.risk.on_market,
            "signals": parts.risk.on_signal,
        },
        "alerts": {
            "portfolio_snapshots": parts.alerts.on_snapshot,
            "signals": parts.alerts.on_signal,
            "risk_events": parts.alerts.on_risk_event,
            "alerts": parts.alerts.on_alert,
            "market_data": parts.alerts.on_market,
        },
    }
    return table[name]


class StepControl(Protocol):
    """What a service applies at the end of each step besides its inputs (the operator's
    commands, engine.services.control), kept in the step's transaction."""

    def restore(self, saved: dict[str, Any] | None) -> None: ...

    def state(self) -> dict[str, Any]: ...

    def apply(self) -> object: ...

    def commit(self, pipe: RedisPipeline) -> None: ...


@dataclass(slots=True)
class _Read:
    msg_id: str
    event: Event


class ServiceWorker:
    """Runs one service's steps, group after group, until told to stop."""

    def __init__(
        self,
        name: str,
        bus: RedisBus,
        parts: Components,
        outputs: list[Event],
        *,
        block_ms: int = 200,
        committed: Callable[[list[Event], list[Event]], None] | None = None,
        control: StepControl | None = None,
    ) -> None:
        if name not in STEPS:
            raise ValueError(f"service {name!r} is not one of {', '.join(STEPS)}")
        self.name = name
        self.bus = bus
        self.parts = parts
        self.steps = STEPS[name]
        self._outputs = outputs  # filled by the components' publish
        self._handlers = handlers(name, parts)
        self._parts = (OWN_STATE[name],)
        self._ahead: dict[str, deque[_Read]] = {}
        self._inputs = tuple(dict.fromkeys(s for step in self.steps for s, _ in step.inputs))
        self._step = 0
        self._groups = 0
        self.block_ms = block_ms
        self._committed = committed  # (inputs, outputs) of each step, once it is committed
        self._control = control
        self.processed = 0
        self.published = 0
        self.last_event_ts: str | None = None
        self.started_at = time.time()

    @property
    def state_key(self) -> str:
        return self.bus.key(f"state:{self.name}")

    @property
    def groups_done(self) -> int:
        return self._groups

    def prepare(self) -> None:
        """Create the groups, restore the state, and queue this service's own pending work."""
        for step in self.steps:
            for stream, _ in step.inputs:
                self.bus.create_group(stream, self.name)
        raw = self.bus.redis.get(self.state_key)
        if raw is not None:
            saved = json.loads(raw)
            restore(self.parts, saved["state"])  # type: ignore[arg-type]
            self._step, self._groups = saved["step"], saved["groups"]
            if self._control is not None:
                self._control.restore(saved.get("control"))
            log.info("restored", extra={"event": "service_restored", "groups": self._groups})
        for step in self.steps:
            for stream, _ in step.inputs:
                self._ahead.setdefault(stream, deque()).extend(self._pending_of(stream))

    def _pending_of(self, stream: str) -> list[_Read]:
        """Messages delivered to this service before a crash and never acknowledged."""
        out: list[_Read] = []
        start = "0"
        while True:
            reply = self.bus.read_raw(self.name, self.name, {stream: start}, count=1000)
            entries = reply[0][1] if reply else []
            if not entries:
                return out
            out += self._decode(stream, entries)
            start = entries[-1][0]

    def run_step(self, stop: Callable[[], bool]) -> bool:
        """Read, handle and commit the next step; False if `stop` said so before it was whole."""
        step = self.steps[self._step]
        taken: dict[str, list[str]] = {}
        batch: list[tuple[str, Event]] = []
        for stream, producer in step.inputs:
            while True:
                read = self._next(stream, stop)
                if read is None:
                    return False
                taken.setdefault(stream, []).append(read.msg_id)
                if _ends_group(read.event, producer):
                    if isinstance(read.event, Watermark):
                        batch.append((stream, read.event))
                    break
                batch.append((stream, read.event))
        self._outputs.clear()
        for stream, event in batch:
            if stream == "market_data":
                self.parts.clock.advance(event.ts)
            self._handlers[stream](event)
        if self._control is not None:
            self._control.apply()  # what it publishes goes before the step's barriers
        last_ts = batch[-1][1].ts if batch else self.parts.clock.now()
        for out_stream in step.barrier_on:
            self._outputs.append(
                Barrier(f"bar-{self.name}-{self._groups}-{out_stream}", last_ts, None, self.name)
            )
        streams_of = [s for s in step.barrier_on]
        self._commit(step, taken, streams_of)
        if self._committed is not None:
            self._committed([event for _, event in batch], list(self._outputs))
        self.processed += len(batch)
        self.last_event_ts = last_ts.isoformat()
        return True

    def _commit(self, step: Step, taken: dict[str, list[str]], barrier_streams: list[str]) -> None:
        next_step = (self._step + 1) % len(self.steps)
        groups = self._groups + (1 if next_step == 0 else 0)
        saved: dict[str, Any] = {
            "step": next_step,
            "groups": groups,
            "state": capture(self.parts, self._parts),  # type: ignore[arg-type]
        }
        if self._control is not None:
            saved["control"] = self._control.state()
        state = _encoded(self.name, saved)
        outputs = list(self._outputs)
        barriers = iter(barrier_streams)
        pipe = self.bus.redis.pipeline(transaction=True)
        for event in outputs:
            if isinstance(event, Barrier):
                stream = next(barriers)
            else:
                stream = OUTPUT_STREAMS.get((self.name, event.STREAM), event.STREAM)
            pipe.xadd(self.bus.key(stream), {b"e": to_json(event).encode()})
        for stream, ids in taken.items():
            if ids:
                pipe.xack(self.bus.key(stream), self.name, *ids)
        pipe.set(self.state_key, state)
        if self._control is not None:
            self._control.commit(pipe)
        pipe.execute()
        self.published += len(outputs)
        self._step, self._groups = next_step, groups

    def _next(self, stream: str, stop: Callable[[], bool]) -> _Read | None:
        ahead = self._ahead.setdefault(stream, deque())
        while not ahead:
            if stop():
                return None
            # One read for every input stream whose buffer is empty: what the next inputs
            # of the step need is often there already, saving a round trip each.
            wanted = {s: ">" for s in self._inputs if not self._ahead.get(s)}
            try:
                reply = self.bus.read_raw(
                    self.name, self.name, wanted, count=500, block_ms=self.block_ms
                )
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    for name in wanted:
                        self.bus.create_group(name, self.name)
                    continue
                raise
            for name, entries in reply:
                self._ahead.setdefault(name, deque()).extend(self._decode(name, entries))
        return ahead.popleft()

    def _decode(self, stream: str, entries: list[tuple[str, str | None]]) -> list[_Read]:
        out = []
        for msg_id, payload in entries:
            if payload is None:  # trimmed away while pending: nothing to redo
                self.bus.redis.xack(self.bus.key(stream), self.name, msg_id)
                continue
            try:
                event = from_json(payload)
            except InvalidEventError as exc:
                self.bus._dead_letter(stream, msg_id, payload, f"{exc.reason}: {exc}")
                self.bus.redis.xack(self.bus.key(stream), self.name, msg_id)
                continue
            out.append(_Read(msg_id, event))
        return out


def _encoded(name: str, saved: dict[str, Any]) -> bytes | str:
    """A service's saved state as JSON, at every step: orjson for the engine's own state,
    about ten times faster than the standard encoder on its float windows (risk's closes,
    the exchange's spread samples). The signal service's holds the strategy's own state,
    where JSON may carry what orjson writes otherwise or refuses (a float as a key, an
    integer beyond 64 bits), so it keeps the standard encoder."""
    if name == "signal":
        return json.dumps(saved, separators=(",", ":"))
    return orjson.dumps(saved, option=orjson.OPT_NON_STR_KEYS)


def _ends_group(event: Event, producer: str) -> bool:
    if producer == FEED:
        return isinstance(event, Watermark)
    return isinstance(event, Barrier) and event.producer == producer
