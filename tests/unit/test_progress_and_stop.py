"""The foreground run's progress views, the stop between events, and their rendering."""

from __future__ import annotations

import re
import signal
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console

from claire_cli.render import (
    _ProgressLines,
    eta_seconds,
    progress_fields,
    resume_command,
    signed,
)
from engine.config import load_settings
from engine.feeds.replay import plan_replay
from engine.kernel.pipeline import build_replay_pipeline, run_replay
from engine.kernel.progress import ProgressFeed, ProgressView, window_fraction
from engine.stopping import StopRequested, StopSignals

T0 = datetime(2018, 1, 1, tzinfo=UTC)


def test_window_fraction_is_clamped_and_open_ended_is_unknown() -> None:
    end = T0 + timedelta(days=2)
    assert window_fraction(T0, end, T0 + timedelta(days=1)) == 0.5
    assert window_fraction(T0, end, T0 - timedelta(days=1)) == 0.0
    assert window_fraction(T0, end, end + timedelta(days=1)) == 1.0
    assert window_fraction(T0, None, T0) is None


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_feed_shows_a_few_views_a_second_and_the_last_one(four_symbols: list[Path]) -> None:
    settings = load_settings(initial_capital="10")
    plan = plan_replay(four_symbols[:1], days=1)
    pipeline = build_replay_pipeline(settings, plan)
    views: list[ProgressView] = []
    clock = FakeTime()
    feed = ProgressFeed(
        pipeline,
        views.append,
        start=plan.start,
        end=plan.end,
        quote="BTC",
        every_s=0.25,
        monotonic=clock,
    )
    events = list(plan.events())
    for event in events:
        pipeline.process(event)
        clock.now += 0.0625  # 16 events a second of wall time: a view every fourth
        feed(event.ts)
    feed.finish()
    assert len(views) == len(events) // 4 + 1
    last = views[-1]
    assert last.market_time == events[-1].ts and last.done_frac == pytest.approx(1.0, abs=0.01)
    assert last.equity == pipeline.portfolio.equity()
    assert last.total_pnl == last.equity - Decimal(10)
    assert last.fills == pipeline.stats.fills and last.trading_state == "active"
    assert [v.done_frac for v in views] == sorted(v.done_frac for v in views)  # type: ignore[type-var]


def test_a_stop_request_ends_a_pacing_wait_early() -> None:
    waits = FakeTime()
    stop = StopSignals(monotonic=waits)
    stop.request(signal.SIGTERM)
    stop.sleep(3600)  # returns at once: nobody waits an hour for Ctrl-C
    assert stop.requested
    with pytest.raises(StopRequested) as caught:
        stop.check()
    assert caught.value.signum == signal.SIGTERM and isinstance(caught.value, KeyboardInterrupt)


def test_signals_only_set_the_flag_while_installed_and_a_second_one_interrupts() -> None:
    before = signal.getsignal(signal.SIGINT)
    with StopSignals() as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.signum == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_pnl_is_green_when_positive_and_red_when_negative() -> None:
    assert signed(Decimal("1.5"), "BTC") == "[green]+1.50000000 BTC[/green]"
    assert signed(Decimal("-0.25")) == "[red]-0.25000000[/red]"
    assert signed(Decimal(0)) == "+0.00000000"
    console = Console(force_terminal=True, color_system="standard", no_color=False, width=80)
    with console.capture() as captured:
        console.print(signed(Decimal(-1)))
    assert re.search(r"\x1b\[[0-9;]*31m-1\.0", captured.get())  # red in a terminal


def test_progress_fields_read_like_a_status_line() -> None:
    view = ProgressView(T0, 0.25, Decimal("10.1234567"), Decimal("0.1234567"), 12, "active", "BTC")
    fields = progress_fields(view)
    assert fields == {
        "at": "2018-01-01 00:00 UTC",
        "equity": "10.123457 BTC",
        "pnl": "[green]+0.12345700 BTC[/green]",
        "fills": "12",
        "state": "active",
    }


def test_the_resume_command_quotes_what_needs_quoting() -> None:
    assert resume_command("run-1", Path("/data/my runs")) == (
        "claire papertest start --resume --run run-1 --data-dir '/data/my runs'"
    )


def test_eta_is_the_pace_so_far_applied_to_what_is_left() -> None:
    assert eta_seconds(10.0, 0.0, 0.25) == 30.0
    assert eta_seconds(10.0, 0.5, 0.75) == 10.0  # a resumed run counts from where it resumed
    assert eta_seconds(10.0, 0.5, 0.5) is None
    assert eta_seconds(10.0, 0.0, 1.0) == 0.0


def test_the_live_view_renders_two_lines_with_percent_market_time_and_eta() -> None:
    clock = FakeTime()
    lines = _ProgressLines(clock)
    lines.update(ProgressView(T0, 0.2, Decimal(10), Decimal("-0.5"), 3, "active", "BTC"))
    clock.now += 8
    lines.update(ProgressView(T0, 0.6, Decimal(10), Decimal("-0.5"), 7, "reducing", "BTC"))
    console = Console(width=80, no_color=True)
    with console.capture() as captured:
        console.print(lines)
    top, bottom = captured.get().splitlines()
    assert " 60 % market 2018-01-01 00:00 UTC eta 0:00:08" in top
    assert bottom == "equity 10.000000 BTC  PnL -0.50000000 BTC  fills 7  state reducing"


def test_an_in_memory_replay_stops_when_asked_and_summarises_what_ran(
    four_symbols: list[Path],
) -> None:
    settings = load_settings(initial_capital="10")
    views: list[ProgressView] = []
    stop = StopSignals()

    def stop_at_the_first(view: ProgressView) -> None:
        views.append(view)
        stop.request()

    summary, _ = run_replay(
        settings, four_symbols[:1], days=1, progress=stop_at_the_first, stop=stop
    )
    assert summary.market_events == 1 and views[-1].market_time == summary.market_end
