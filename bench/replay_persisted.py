"""Wall time of the 7-day, 4-symbol replay with every event written to PostgreSQL.

Runs the same path as `claire papertest start` on the embedded server, in a
fresh data folder (the server's first start, initdb included, is timed apart).

    python bench/replay_persisted.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import load_settings  # noqa: E402
from engine.home.database import open_store  # noqa: E402
from engine.run.runner import PaperRunner  # noqa: E402

DATA = Path(os.environ.get("CLAIRE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "market"
FILES = [DATA / f"{base}_BTC-5m.csv" for base in ("ETH", "LTC", "ADA", "DASH")]
TABLES = ("candles", "signals", "orders", "trades", "order_results", "portfolio_snapshots",
          "positions", "risk_events", "alerts")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="claire-bench-"))
    os.chmod(home, 0o711)
    settings = load_settings(initial_capital="10")
    try:
        t0 = time.perf_counter()
        with open_store(settings, home):
            pass
        first_start = time.perf_counter() - t0

        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            outcome = PaperRunner(settings, home).start(FILES, 7, "max")
            times.append(time.perf_counter() - t0)
        with open_store(settings, home) as (store, _):
            counts = store.db.fetch_one(
                "SELECT "
                + ", ".join(
                    f"(SELECT count(*) FROM {t} WHERE run_id = %(r)s) AS {t}" for t in TABLES
                ),
                {"r": outcome.run_id},
            )
        rows = sum(int(v) for v in (counts or {}).values())
        best = min(times)
        events = outcome.summary.market_events
        print(f"replay:            7 days, 4 symbols, {events:,} market events")
        print(f"first server start: {first_start:.2f} s (initdb, not counted)")
        print(
            f"runs:              {', '.join(f'{t:.2f} s' for t in times)} "
            "(server start, run, final flush and stop)"
        )
        print(f"best wall time:    {best:.2f} s")
        print(f"market events/s:   {events / best:,.0f}")
        per_table = ", ".join(f"{k} {v}" for k, v in (counts or {}).items())
        print(f"rows written:      {rows:,} ({per_table})")
        print(f"rows/s:            {rows / best:,.0f}")
        print(f"final equity:      {outcome.summary.equity} {outcome.summary.quote_currency}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
