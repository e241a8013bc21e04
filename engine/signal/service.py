"""The signal service: market events in, signals out, positions from snapshots.

The strategy is the user's code. Whatever it raises (`sys.exit` included), or
returns instead of intents, stops the run with a `StrategyError` that names the
strategy, the exception, and the file and line where it happened; the original
exception is its cause, for `--debug`. Each call is marked on `watch`, where the
run's watchdog sees a call that hangs (engine.run.watchdog).
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from engine.errors import InvalidEventError, StrategyError
from engine.events import (
    Candle,
    Event,
    MarketEvent,
    PortfolioSnapshot,
    PositionView,
    Signal,
    Trade,
    derive_id,
)
from engine.signal.base import Intent, Strategy
from engine.signal.watch import CallbackWatch, StrategyTimeout


class SignalService:
    def __init__(self, strategy: Strategy, publish: Callable[[Signal], object]) -> None:
        self.strategy = strategy
        self._publish = publish
        self._positions: dict[str, PositionView] = {}
        self.watch = CallbackWatch()  # what a watchdog sees of the strategy's calls

    def position(self, symbol: str) -> PositionView | None:
        return self._positions.get(symbol)

    def on_snapshot(self, snapshot: PortfolioSnapshot) -> None:
        self._positions = {p.symbol: p for p in snapshot.positions}

    def warm_up(self, candle: Candle) -> None:
        """Show the strategy a past candle; what it returns is not traded."""
        name = type(self.strategy).__name__
        try:
            with self.watch.running(name, "on_candle", candle.symbol, candle.ts):
                _intents(self.strategy.on_candle(candle, self))
        except StrategyTimeout:
            raise StrategyError(self.watch.timeout_message) from None
        except SystemExit as exc:
            raise StrategyError(_exited(self.strategy, "on_candle", candle, exc)) from None
        except Exception as exc:
            raise StrategyError(_describe(self.strategy, "on_candle", candle, exc)) from exc

    def on_market(self, event: Event) -> None:
        if not isinstance(event, Candle | Trade):
            return  # quotes, heartbeats, marks and watermarks are not for the strategy
        callback = "on_candle" if isinstance(event, Candle) else "on_trade"
        name = type(self.strategy).__name__
        try:
            with self.watch.running(name, callback, event.symbol, event.ts):
                if isinstance(event, Candle):
                    returned = self.strategy.on_candle(event, self)
                else:
                    returned = self.strategy.on_trade(event, self)
                # A generator runs only when iterated: its errors belong to the strategy too.
                intents = _intents(returned)
        except StrategyError:
            raise
        except StrategyTimeout:
            raise StrategyError(self.watch.timeout_message) from None
        except SystemExit as exc:
            raise StrategyError(_exited(self.strategy, callback, event, exc)) from None
        except Exception as exc:
            raise StrategyError(_describe(self.strategy, callback, event, exc)) from exc
        for n, intent in enumerate(intents):
            if not isinstance(intent, Intent):
                raise StrategyError(
                    f"strategy {type(self.strategy).__name__}.{callback} returned "
                    f"{type(intent).__name__} {intent!r:.80} where an Intent was expected, "
                    f"for {event.symbol} at {event.ts:%Y-%m-%d %H:%M} UTC; return a list of "
                    "Intent(symbol, side, confidence, reason)"
                )
            try:
                signal = Signal(
                    event_id=derive_id("sig", event.event_id, n),
                    ts=event.ts,
                    cause_id=event.event_id,
                    symbol=intent.symbol,
                    side=intent.side,  # type: ignore[arg-type]  # Intent parsed it
                    confidence=intent.confidence,  # type: ignore[arg-type]
                    reason=intent.reason[:500],
                    strategy=self.strategy.name,
                    order_type=intent.order_type,
                    limit_price=intent.limit_price,  # type: ignore[arg-type]
                    time_in_force=intent.time_in_force,  # type: ignore[arg-type]
                    post_only=intent.post_only,
                    ttl_s=intent.ttl_seconds,
                )
            except (InvalidEventError, TypeError, ValueError, AttributeError) as exc:
                raise StrategyError(
                    f"strategy {type(self.strategy).__name__}.{callback} returned an invalid "
                    f"intent {intent!r:.120} for {event.symbol} at {event.ts:%Y-%m-%d %H:%M} "
                    f"UTC: {exc}"
                ) from exc
            self._publish(signal)


def _intents(returned: Any) -> list[Any]:
    """What a callback returned, as a list: nothing for None, one for a single intent."""
    if type(returned) is list:
        return returned
    if type(returned) is tuple:
        return list(returned)
    if returned is None:
        return []
    if isinstance(returned, Intent):
        return [returned]
    if not isinstance(returned, Iterable) or isinstance(returned, str | bytes):
        raise TypeError(f"returned {type(returned).__name__}, not a list of Intent")
    return list(returned)


def _describe(strategy: Strategy, callback: str, event: MarketEvent, exc: Exception) -> str:
    where = _where(strategy, exc)
    return (
        f"strategy {type(strategy).__name__} raised {type(exc).__name__}: {exc}"
        + (f" at {where}" if where else "")
        + f" (in {callback} for {event.symbol} at {event.ts:%Y-%m-%d %H:%M} UTC); fix the "
        "strategy and start a new run (--debug shows the traceback)"
    )


def _exited(strategy: Strategy, callback: str, event: MarketEvent, exc: SystemExit) -> str:
    return (
        f"strategy {type(strategy).__name__} called sys.exit({exc.code!r}) in {callback} for "
        f"{event.symbol} at {event.ts:%Y-%m-%d %H:%M} UTC; a strategy returns intents and "
        "never ends the process: fix the strategy and start a new run"
    )


def _where(strategy: Strategy, exc: BaseException) -> str:
    """`file:line` of the deepest frame in the strategy's own file, else of the raise."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    try:
        source = str(Path(inspect.getfile(type(strategy))).resolve())
    except (TypeError, OSError):
        source = ""
    ours = [f for f in frames if source and str(Path(f.filename).resolve()) == source]
    frame = (ours or frames)[-1]
    return f"{frame.filename}:{frame.lineno}"
