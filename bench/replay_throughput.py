"""Market events per second through the whole in-process pipeline while it trades (no database).

Signal, risk, execution and portfolio on the in-process bus, over at least one
million market events: the four shipped 5-minute symbols replayed again and again,
each pass with a fresh account and fresh services, so that the circuit breaker of
one pass cannot stop the trading of the next. Events are built before timing
starts; the figure is the pipeline alone. Time spent while trading was halted is
measured apart, so the rate while trading is what a running strategy gets.

    python bench/replay_throughput.py [--events 1000000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import load_settings  # noqa: E402
from engine.events import TradingState  # noqa: E402
from engine.feeds.replay import plan_replay  # noqa: E402
from engine.kernel.pipeline import build_replay_pipeline  # noqa: E402

DATA = Path(os.environ.get("CLAIRE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "market"
FILES = [DATA / f"{base}_BTC-5m.csv" for base in ("ETH", "LTC", "ADA", "DASH")]


def grouped(events: list) -> list[list]:
    """Market events that share one time, in order."""
    groups: list[list] = []
    for event in events:
        if groups and groups[-1][0].ts == event.ts:
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="print the 25 hottest functions")
    args = parser.parse_args()

    settings = load_settings(initial_capital="10")
    plan = plan_replay(FILES)
    t0 = time.perf_counter()
    base = list(plan.events())
    groups = grouped(base)
    built = time.perf_counter() - t0

    gc.collect()
    profiler = cProfile.Profile() if args.profile else None
    clock = time.perf_counter
    events = passes = fills = results = refusals = 0
    trading_s = halted_s = 0.0
    trading_events = 0
    if profiler:
        profiler.enable()
    start = clock()
    while events < args.events:
        pipeline = build_replay_pipeline(settings, plan)
        risk = pipeline.risk
        process = getattr(pipeline, "process_group", None)
        for group in groups:
            halted = risk.state is TradingState.HALTED
            began = clock()
            if process is not None:
                process(group)
            else:  # an engine without timestamp groups
                for event in group:
                    pipeline.process(event)
            spent = clock() - began
            if halted:
                halted_s += spent
            else:
                trading_s += spent
                trading_events += len(group)
        events += len(base)
        passes += 1
        stats = pipeline.stats
        fills += stats.fills
        results += sum(stats.results_by_status.values())
        refusals += sum(stats.refusals_by_reason.values())
    elapsed = clock() - start
    if profiler:
        profiler.disable()

    print(f"events:            {events:,} ({len(base):,} recorded candles x {passes} passes)")
    print(f"build events:      {built:.2f} s (not counted)")
    print(f"pipeline time:     {elapsed:.2f} s")
    print(f"throughput:        {events / elapsed:,.0f} market events/s")
    print(
        f"while trading:     {trading_events / trading_s:,.0f} market events/s "
        f"({trading_events / events:.1%} of the events)"
    )
    if events > trading_events:
        print(f"while halted:      {(events - trading_events) / halted_s:,.0f} market events/s")
    print(f"per event:         {elapsed / events * 1e6:.2f} us")
    print(f"orders:            {results:,} order results, {fills:,} fills, {refusals:,} refusals")
    print(f"python:            {sys.version.split()[0]}")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
