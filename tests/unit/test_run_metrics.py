"""The run figures on /metrics: the silence the no-signals rule measures, the figures
each service keeps, and the memory limit the memory rule divides by."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psutil
from prometheus_client import CollectorRegistry

from engine.clock import EventClock
from engine.services.run_metrics import RunMetrics, memory_limit_bytes
from tests.store.factories import T0, candle, signal


def _value(metrics: RunMetrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name)


def test_silence_counts_from_the_first_market_time_then_from_each_signal() -> None:
    m = RunMetrics("run-x")
    assert _value(m, "claire_market_time_seconds") == 0
    m.observe(candle(0))
    first = candle(0).ts.timestamp()
    assert _value(m, "claire_last_signal_timestamp_seconds") == first
    m.observe(candle(20))
    assert _value(m, "claire_market_time_seconds") == candle(20).ts.timestamp()
    assert _value(m, "claire_last_signal_timestamp_seconds") == first  # still silent
    m.observe(signal(ts=T0 + timedelta(hours=2)))
    assert (
        _value(m, "claire_last_signal_timestamp_seconds") == (T0 + timedelta(hours=2)).timestamp()
    )
    assert _value(m, "claire_signals_total") == 1


def test_an_event_clock_before_its_first_event_is_no_market_time() -> None:
    m = RunMetrics("run-x")
    m.observe_time(EventClock().now())
    assert _value(m, "claire_market_time_seconds") == 0
    m.observe_time(T0)
    assert _value(m, "claire_last_signal_timestamp_seconds") == T0.timestamp()


def test_a_service_exports_only_the_figures_of_what_it_publishes() -> None:
    registry = CollectorRegistry()
    m = RunMetrics("run-x", registry, ("portfolio_snapshots",))
    m.observe(signal())  # counted, but a portfolio service does not publish signals
    names = {metric.name for metric in registry.collect()}
    assert {"claire_equity", "claire_open_positions", "claire_market_time_seconds"} <= names
    assert not names & {"claire_signals", "claire_last_signal_timestamp_seconds", "claire_fills"}
    writer = RunMetrics("run-x", CollectorRegistry(), ())
    names = {metric.name for metric in writer.registry.collect()}
    assert "claire_market_time_seconds" not in names  # a writer has no market time
    assert {"process_resident_memory_bytes", "claire_memory_limit_bytes"} <= names


def test_the_memory_limit_is_the_cgroups_and_never_more_than_the_machine(tmp_path: Path) -> None:
    total = psutil.virtual_memory().total
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    assert memory_limit_bytes([v2, v1]) == total  # no cgroup files: the machine's memory
    v2.write_text("max\n")
    assert memory_limit_bytes([v2, v1]) == total
    v1.write_text("536870912\n")
    assert memory_limit_bytes([v2, v1]) == 536870912
    v2.write_text(str(total * 4))  # a limit above the machine's memory means none
    assert memory_limit_bytes([v2, v1]) == total
    assert RunMetrics("run-x").registry.get_sample_value("claire_memory_limit_bytes") > 0
