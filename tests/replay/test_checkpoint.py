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


def test_round_trips_are_captured_whole_at_every_capture_and_a_capture_stays_as_taken(
    four_symbols: list[Path],
) -> None:
    # A capture encodes only the round trips closed since the last one; what it returns
    # must still be the whole list, every time, and must not grow with later trips.
    settings = load_settings(initial_capital="10", position_size_pct="0.1")
    plan = plan_replay(four_symbols, days=3)
    pipeline = build_replay_pipeline(settings, plan)
    captures = []
    for n, event in enumerate(plan.events()):
        pipeline.process(event)
        if n % 500 == 0:
            captures.append((len(pipeline.portfolio.round_trips), capture(pipeline)))
    assert captures[-1][0] > captures[1][0] > 0  # trips closed between the captures
    for count, taken in captures:
        rows = taken["portfolio"]["round_trips"]
        assert len(rows) == count
        trips = pipeline.portfolio.round_trips[:count]
        assert [r[0] for r in rows] == [t.symbol for t in trips]
        assert [r[3] for r in rows] == [str(t.realized_pnl) for t in trips]
    # a restored portfolio holds a new list: its rows are made from it, not the old ones
    other = build_replay_pipeline(settings, plan)
    restore(other, json.loads(json.dumps(captures[1][1])))
    assert capture(other)["portfolio"]["round_trips"] == captures[1][1]["portfolio"]["round_trips"]
    assert len(capture(other)["portfolio"]["round_trips"]) == captures[1][0]
