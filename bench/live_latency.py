"""Latency of a live run as services, at the exchange's real pace, with many symbols.

The local MEXC server (tests/mexc_server) plays `--symbols` synthetic spot symbols,
all quoted in ETH, at clock speed 1x: their trades, the book tickers they leave and
1-minute candles. A live `claire papertest start --services` run listens to it for
`--minutes` in a temporary data folder, with a strategy that buys and sells a unit
every few trades of each symbol. A market event waits for the close of its market
time (`--watermark-ms`, FEED_WATERMARK_MS) before it is published. Then it prints:

- arrival -> decision: from the feed service receiving a market event from the
  websocket to the signal service committing the step that handled it (its signals
  published); p50/p99/max over every market event, and per minute of the run;
- arrival -> fill committed: to the fill's commit in PostgreSQL by the writer;
- the lag over time: consumer-group lag of `market_data` (signal and writer groups)
  sampled every few seconds, first minute against last;
- CPU seconds and max RSS of each service process.

    python bench/live_latency.py [--symbols 200] [--minutes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import redis  # noqa: E402

from engine.bus.redis import RedisBus  # noqa: E402
from engine.config import load_settings  # noqa: E402
from engine.home.database import open_store  # noqa: E402
from engine.runtime.redis import EmbeddedRedis  # noqa: E402
from engine.services.host import SERVICES, stream_lag, stream_prefix  # noqa: E402
from tests.mexc_server.synthetic import PacedMexcServer  # noqa: E402

CLAIRE = Path(sys.executable).with_name("claire")
SAMPLE_S = 5.0
STRATEGY = '''
from decimal import Decimal
from engine.events import Side
from engine.signal.base import Intent, Strategy


class EveryFewTrades(Strategy):
    """Per symbol: buys a unit on its 5th trade of every 20, sells it on the 15th."""

    name = "bench-every-few-trades"

    def __init__(self) -> None:
        self.seen = {}

    def on_trade(self, trade, context):
        n = self.seen[trade.symbol] = self.seen.get(trade.symbol, 0) + 1
        if n % 20 == 5:
            return (Intent(trade.symbol, Side.BUY, Decimal(1), "bench buy"),)
        if n % 20 == 15:
            return (Intent(trade.symbol, Side.SELL, Decimal(1), "bench sell"),)
        return ()

    def export_state(self):
        return {"seen": self.seen}

    def import_state(self, state):
        self.seen = dict(state["seen"])
'''


class ServerThread:
    """The paced server on its own event loop, beside the synchronous benchmark."""

    def __init__(self, symbols: int, minutes: float) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self.call(PacedMexcServer(symbols, minutes).start())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def close(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def service_pids(run_id: str) -> dict[str, int]:
    out = {}
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        for name in SERVICES:
            if f"claire engine run {name} --run {run_id}" in line:
                out[name] = proc.pid
    return out


def newest_run(home: Path) -> str | None:
    try:
        with open_store(load_settings(), home) as (store, _):
            runs = store.list_runs()
    except Exception:
        return None
    return runs[0].run_id if runs else None


class Usage:
    """CPU seconds and peak RSS per service process, sampled while it runs."""

    def __init__(self) -> None:
        self.cpu: dict[str, dict[int, float]] = {}
        self.rss: dict[str, int] = {}

    def sample(self, pids: dict[str, int]) -> None:
        for name, pid in pids.items():
            try:
                proc = psutil.Process(pid)
                times = proc.cpu_times()
                self.cpu.setdefault(name, {})[pid] = times.user + times.system
                self.rss[name] = max(self.rss.get(name, 0), peak_rss(pid, proc))
            except psutil.Error:
                continue

    def lines(self, seconds: float) -> list[str]:
        out = []
        for name in SERVICES:
            cpu = sum(self.cpu.get(name, {}).values())
            out.append(f"  {name:<10} cpu {cpu:7.1f} s ({100 * cpu / seconds:5.1f}% of a core)"
                       f"  max rss {self.rss.get(name, 0) / 2**20:6.1f} MB")  # fmt: skip
        return out


def peak_rss(pid: int, proc: psutil.Process) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(proc.memory_info().rss)


def start_run(home: Path, names: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    (home / "bench_strategy.py").write_text(STRATEGY, encoding="utf-8")
    args = [str(CLAIRE), "papertest", "start", "--services", "--exchange", "mexc",
            "--market", "spot", "--symbols", ",".join(names), "--timeframe", "1m",
            "--capital", "10", "--strategy", f"{home / 'bench_strategy.py'}:EveryFewTrades",
            "--json"]  # fmt: skip
    log = (home / "run.log").open("w")
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=log, text=True)


def failed(home: Path, why: str) -> None:
    logs = sorted((home / "logs").glob("*.log")) if (home / "logs").exists() else []
    tails = [f"{p.name}: {p.read_text(errors='replace')[-1500:]}" for p in logs]
    sys.exit("\n".join([why, (home / "run.log").read_text()[-1500:], *tails]))


def watch(
    child: subprocess.Popen[str], home: Path, bus_url: str, minutes: float, usage: Usage
) -> tuple[str, list[tuple[float, int, int]], float]:
    """Until `minutes` after the services are up: lag samples (s, signal, writer)."""
    deadline = time.monotonic() + 120
    run_id, pids = None, {}
    while len(pids) < len(SERVICES):
        if child.poll() is not None or time.monotonic() > deadline:
            failed(home, "the run did not start")
        run_id = run_id or newest_run(home)
        pids = service_pids(run_id) if run_id else {}
        time.sleep(0.5)
    assert run_id is not None
    bus = RedisBus(bus_url, prefix=stream_prefix(run_id))
    lags: list[tuple[float, int, int]] = []
    began = time.monotonic()
    while time.monotonic() - began < minutes * 60:
        if child.poll() is not None:
            failed(home, "the run ended early")
        time.sleep(SAMPLE_S)
        usage.sample(service_pids(run_id))
        lags.append((time.monotonic() - began, stream_lag(bus, "market_data", "signal"),
                     stream_lag(bus, "market_data", "writer")))  # fmt: skip
    bus.close()
    return run_id, lags, time.monotonic() - began


def summary_of(url: str, run_id: str, name: str) -> dict[str, Any]:
    raw = redis.Redis.from_url(url).get(f"{stream_prefix(run_id)}:{name}")
    return json.loads(raw) if raw else {}


def figures(label: str, s: dict[str, Any], unit: str) -> str:
    if not s:
        return f"{label:<26} none measured"
    return (f"{label:<26} p50 {s['p50_ms']:7.1f} ms  p99 {s['p99_ms']:7.1f} ms  "
            f"max {s['max_ms']:7.1f} ms  over {s['n']:,} {unit}")  # fmt: skip


def lag_lines(decision: dict[str, Any], lags: list[tuple[float, int, int]]) -> list[str]:
    out = []
    minutes = decision.get("minutes") or []
    if minutes:
        first, last = minutes[0], minutes[-1]
        each = ", ".join(f"{m['p99_ms']:.0f}" for m in minutes)
        out.append(f"decision p99 by minute:    first (min {first['minute']}) "
                   f"{first['p99_ms']:.1f} ms, last (min {last['minute']}) {last['p99_ms']:.1f} ms"
                   f"  [{each}]")  # fmt: skip
    if lags:
        head = [x for x in lags if x[0] <= 60] or lags[:1]
        tail = [x for x in lags if x[0] >= lags[-1][0] - 60]
        out.append(f"market_data lag (msgs):    first minute max signal {max(x[1] for x in head)}"
                   f" / writer {max(x[2] for x in head)}; last minute max signal "
                   f"{max(x[1] for x in tail)} / writer {max(x[2] for x in tail)}")  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=5.0)
    why = "FEED_WATERMARK_MS: a market event waits for its market time's close"
    parser.add_argument(
        "--watermark-ms", type=int, default=load_settings().feed_watermark_ms, help=why
    )
    parser.add_argument("--keep", action="store_true", help="keep the data folder and its logs")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="claire-bench-live-"))
    os.chmod(home, 0o711)
    exchange = ServerThread(args.symbols, args.minutes)
    redis_server = EmbeddedRedis(home)  # the run's Redis, read here while it runs
    url = redis_server.start()
    usage = Usage()
    try:
        env = {**os.environ, **exchange.server.env(), "CLAIRE_HOME": str(home),
               "CLAIRE_AUTO_REPORTS": "false", "STALE_DATA_SECONDS": "3600",
               "PARTICIPATION_CAP_PCT": "0.5",
               "FEED_WATERMARK_MS": str(args.watermark_ms)}  # fmt: skip
        child = start_run(home, exchange.server.names, env)
        try:
            run_id, lags, seconds = watch(child, home, url, args.minutes, usage)
        finally:
            child.send_signal(signal.SIGTERM)
            child.communicate(timeout=180)
        decision = summary_of(url, run_id, "signal:decision_latency")
        fill = summary_of(url, run_id, "writer:fill_arrival_latency")
        published = summary_of(url, run_id, "writer:fill_latency")
        cores = os.cpu_count()
        print(f"live run:                  {args.symbols} symbols at real pace (clock 1x), "
              f"{seconds / 60:.1f} minutes, FEED_WATERMARK_MS {args.watermark_ms}, "
              f"{cores} cores shared with other work")  # fmt: skip
        print(f"market events handled:     {decision.get('n', 0):,} "
              f"({decision.get('n', 0) / seconds:.1f}/s)")  # fmt: skip
        print(figures("arrival -> decision:", decision, "market events"))
        print(figures("arrival -> fill committed:", fill, "fills"))
        if published:
            published["n"] = published["fills"]
        print(figures("published -> fill commit:", published, "fills"))
        for line in lag_lines(decision, lags):
            print(line)
        print("per service process:")
        for line in usage.lines(seconds):
            print(line)
        print(f"python:                    {sys.version.split()[0]}")
    finally:
        redis_server.stop()
        exchange.close()
        if args.keep:
            print(f"data folder:               {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
