"""Market events per second through Redis Streams with every service as a process,
and the latency from a market event's publication to its fill committed in PostgreSQL.

1. Throughput: the 7-day replay of the four shipped 5-minute symbols with
   `claire papertest start --services` at full speed, timed from start to the
   completed run (servers already warm).
2. Latency at a steady rate: the same replay paced so the feed publishes about
   `--rate` market events a second; the writer records, for each fill, the time from
   its market event's publication on Redis to the commit of the fill in PostgreSQL.

    python bench/services_throughput.py [--rate 1000] [--days 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import load_settings  # noqa: E402
from engine.home.database import open_store  # noqa: E402
from engine.runtime.redis import EmbeddedRedis  # noqa: E402
from engine.services.host import SERVICES, stream_prefix  # noqa: E402

DATA = Path(os.environ.get("CLAIRE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "market"
FILES = [DATA / f"{base}_BTC-5m.csv" for base in ("ETH", "LTC", "ADA", "DASH")]
CLAIRE = Path(sys.executable).with_name("claire")
GROUP_SECONDS = 300  # one 5-minute bar of the four symbols per market time


def run(home: Path, days: str, speed: str) -> tuple[dict[str, object], float]:
    args = [str(CLAIRE), "papertest", "start", "--services", "--days", days, "--capital", "10"]
    args += ["--speed", speed, "--json"]
    for path in FILES:
        args += ["--replay", str(path)]
    began = time.perf_counter()
    env = {**os.environ, "CLAIRE_HOME": str(home), "CLAIRE_AUTO_REPORTS": "false"}
    done = subprocess.run(args, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"the services run failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout), elapsed


def events_of(home: Path, run_id: str) -> int:
    with open_store(load_settings(), home) as (store, _):
        row = store.db.fetch_one(
            "SELECT count(*) AS n FROM candles WHERE run_id = %(r)s", {"r": run_id}
        )
    return int(row["n"]) if row else 0


def latency_of(home: Path, run_id: str) -> dict[str, float]:
    with EmbeddedRedis(home) as server:
        import redis

        raw = redis.Redis.from_url(server.url).get(f"{stream_prefix(run_id)}:writer:fill_latency")
    return json.loads(raw) if raw else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="market events a second")
    parser.add_argument("--days", default="7")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="claire-bench-services-"))
    os.chmod(home, 0o711)
    try:
        run(home, "0.2", "max")  # warm up: servers initialised, caches filled
        body, elapsed = run(home, args.days, "max")
        events = events_of(home, str(body["run_id"]))
        print(f"replay:            {args.days} days, 4 symbols, {events:,} market events")
        print(f"services:          {', '.join(SERVICES)} (processes)")
        print(f"wall time:         {elapsed:.2f} s (supervisor start to completed run)")
        print(f"throughput:        {events / elapsed:,.0f} market events/s end to end")
        full = latency_of(home, str(body["run_id"]))
        if full:
            print(f"fill latency, max speed: p50 {full['p50_ms']:.1f} ms, "
                  f"p99 {full['p99_ms']:.1f} ms over {full['fills']} fills")  # fmt: skip
        speed = f"{args.rate / 4 * GROUP_SECONDS:.0f}x"  # 4 events per 5-minute market time
        body, elapsed = run(home, "1", speed)
        events = events_of(home, str(body["run_id"]))
        paced = latency_of(home, str(body["run_id"]))
        print(f"paced:             {speed} = {args.rate:,.0f} events/s asked, "
              f"{events / elapsed:,.0f} events/s achieved over 1 day")  # fmt: skip
        if paced:
            print(f"fill latency:      p50 {paced['p50_ms']:.1f} ms, p99 {paced['p99_ms']:.1f} ms, "
                  f"max {paced['max_ms']:.1f} ms over {paced['fills']} fills")  # fmt: skip
        print(f"python:            {sys.version.split()[0]}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
