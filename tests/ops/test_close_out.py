"""A planned stop's engine step: no new entries, everything closed at market, then flat."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import load_settings
from engine.events import TradingState
from engine.feeds.replay import plan_replay
from engine.kernel.pipeline import build_replay_pipeline, by_time


@pytest.mark.parametrize("action", ["flatten", "freeze"])
def test_close_out_flattens_whatever_the_breaker_action_says(
    four_symbols: list[Path], action: str
) -> None:
    settings = load_settings(initial_capital="10", circuit_breaker_action=action)
    plan = plan_replay(four_symbols, 3)
    pipeline = build_replay_pipeline(settings, plan)
    groups = by_time(plan.events())
    for group in groups:
        pipeline.process_group(group)
        if any(p.qty for p in pipeline.portfolio.positions.values()):
            break
    assert not pipeline.is_flat()
    assert pipeline.close_out("planned stop: end of the test")
    assert pipeline.risk.state is TradingState.HALTED
    for _, group in zip(range(20), groups, strict=False):
        pipeline.process_group(group)
        if pipeline.is_flat():
            break
    assert pipeline.is_flat()
    fills = pipeline.stats.fills
    for _, group in zip(range(300), groups, strict=False):  # a day: nothing opens again
        pipeline.process_group(group)
    assert pipeline.is_flat() and pipeline.stats.fills == fills
    halt = pipeline.stats.state_changes[-1]
    assert halt.reason == "operator_halt" and halt.detail["note"] == "planned stop: end of the test"
    assert halt.detail["action"] == "flatten"


def test_close_out_when_halted_with_freeze_starts_closing_at_the_next_market_time(
    four_symbols: list[Path],
) -> None:
    settings = load_settings(initial_capital="10", circuit_breaker_action="freeze")
    plan = plan_replay(four_symbols, 3)
    pipeline = build_replay_pipeline(settings, plan)
    groups = by_time(plan.events())
    for group in groups:
        pipeline.process_group(group)
        if any(p.qty for p in pipeline.portfolio.positions.values()):
            break
    assert pipeline.halt_trading("frozen by hand")
    pipeline.process_group(next(groups))
    assert not pipeline.is_flat()  # freeze keeps the positions
    assert not pipeline.close_out("planned stop")  # halted already
    for _, group in zip(range(20), groups, strict=False):
        pipeline.process_group(group)
        if pipeline.is_flat():
            break
    assert pipeline.is_flat()
