"""A pipeline captured between two market events and restored elsewhere decides the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import load_settings
from engine.events import Event, OrderResult
from engine.feeds.replay import plan_replay
from engine.kernel.checkpoint import capture, restore
from engine.kernel.pipeline import build_replay_pipeline, summarize


@pytest.mark.parametrize("stop_after", [1, 977, 4000])
def test_resuming_from_a_checkpoint_gives_the_fills_of_an_unbroken_run(
    four_symbols: list[Path], stop_after: int
) -> None:
    settings = load_settings(
        initial_capital="10", max_daily_drawdown_pct="0.005", position_size_pct="0.1"
    )
    plan = plan_replay(four_symbols, days=3)
    events = list(plan.events())

    unbroken: list[Event] = []
    whole = build_replay_pipeline(settings, plan, observers=[unbroken.append])
    for e in events:
        whole.process(e)

    resumed: list[Event] = []
    first = build_replay_pipeline(settings, plan, observers=[resumed.append])
    for e in events[:stop_after]:
        first.process(e)
    saved = json.loads(json.dumps(capture(first)))  # it must survive JSON storage
    second = build_replay_pipeline(settings, plan, observers=[resumed.append])
    restore(second, saved)
    for e in events[stop_after:]:
        second.process(e)

    def fills(seen: list[Event]) -> list[OrderResult]:
        return [e for e in seen if isinstance(e, OrderResult)]

    assert fills(resumed) == fills(unbroken)
    assert [e.event_id for e in resumed] == [e.event_id for e in unbroken]
    assert summarize(second, plan, "BTC") == summarize(whole, plan, "BTC")
