"""Market events per second through the whole in-process pipeline (no database).

Signal, risk, execution and portfolio on the in-process bus, over at least one
million market events: the four shipped 5-minute symbols, looped with shifted
times. Events are built before timing starts; the figure is the pipeline alone.

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
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import load_settings  # noqa: E402
from engine.events import Candle  # noqa: E402
from engine.feeds.replay import plan_replay  # noqa: E402
from engine.kernel import build_replay_pipeline  # noqa: E402

DATA = Path(os.environ.get("CLAIRE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "market"
FILES = [DATA / f"{base}_BTC-5m.csv" for base in ("ETH", "LTC", "ADA", "DASH")]


def looped(events: list[Candle], total: int) -> list[Candle]:
    """Repeat the recorded days back to back, each copy shifted past the previous one."""
    span = events[-1].ts - events[0].open_time
    shift_step = timedelta(days=span.days + 1)
    out: list[Candle] = []
    loop = 0
    while len(out) < total:
        shift = shift_step * loop
        for e in events:
            if len(out) >= total:
                break
            out.append(
                Candle(
                    event_id=f"{e.event_id}-l{loop}",
                    ts=e.ts + shift,
                    cause_id=None,
                    symbol=e.symbol,
                    open_time=e.open_time + shift,
                    interval_s=e.interval_s,
                    open=e.open,
                    high=e.high,
                    low=e.low,
                    close=e.close,
                    volume=e.volume,
                )
            )
        loop += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="print the 25 hottest functions")
    args = parser.parse_args()

    settings = load_settings(initial_capital="10")
    plan = plan_replay(FILES)
    base = list(plan.events())
    t0 = time.perf_counter()
    events = looped(base, args.events)  # type: ignore[arg-type]
    built = time.perf_counter() - t0
    pipeline = build_replay_pipeline(settings, plan)
    process = pipeline.process

    gc.collect()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    start = time.perf_counter()
    for event in events:
        process(event)
    elapsed = time.perf_counter() - start
    if profiler:
        profiler.disable()

    p = pipeline.portfolio
    stats = pipeline.stats
    rate = len(events) / elapsed
    print(f"events:            {len(events):,} ({len(base):,} recorded candles, looped)")
    print(f"build events:      {built:.2f} s (not counted)")
    print(f"pipeline time:     {elapsed:.2f} s")
    print(f"throughput:        {rate:,.0f} market events/s")
    print(f"per event:         {elapsed / len(events) * 1e6:.2f} us")
    print(
        f"signals->orders:   {sum(stats.results_by_status.values()):,} order results, "
        f"{stats.fills:,} fills, {sum(stats.refusals_by_reason.values()):,} refusals"
    )
    print(f"final equity:      {p.equity()} {plan.quote}")
    print(f"python:            {sys.version.split()[0]}")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
