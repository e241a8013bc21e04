"""Peak memory and wall time of a 7-day replay window of a 200 MB candle file.

Generates, in a temporary folder, a 1-minute candle file of about 200 MB from the
shipped ETH/BTC candles (their prices looped over five years of minutes, ending
before the shipped data begins) and a small file holding only its first eight
days. Each run is `claire papertest start --days 7` in its own process; peak RSS
is that process's own (the database server is a separate process).

    python bench/replay_large.py [--size-mb 200] [--days 7]
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
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CLAIRE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "market"
SOURCE = DATA / "ETH_BTC-5m.csv"
HEADER = "open_time,open,high,low,close,volume\n"
MINUTE_MS = 60_000


def generate(target: Path, size_mb: float, end_ms: int) -> int:
    """Write looped candle rows until the file reaches `size_mb`; return the row count."""
    rows = [line.split(",", 1)[1] for line in SOURCE.read_text().splitlines()[1:]]
    per_row = sum(len(r) + 15 for r in rows[:1000]) / 1000
    count = int(size_mb * 1024 * 1024 / per_row)
    start = end_ms - count * MINUTE_MS
    with target.open("w") as out:
        out.write(HEADER)
        for i in range(count):
            out.write(f"{start + i * MINUTE_MS},{rows[i % len(rows)]}\n")
    return count


def head(source: Path, target: Path, rows: int) -> None:
    with source.open() as src, target.open("w") as out:
        for _ in range(rows + 1):
            out.write(src.readline())


def run_claire(args: list[str], env: dict[str, str]) -> tuple[float, float, dict[str, object]]:
    """Wall seconds, peak RSS in MB and the JSON output of one claire process.

    A small wrapper process starts claire and reaps it with wait4, which gives that
    one child's peak RSS (RUSAGE_CHILDREN would mix several).
    """
    code = (
        "import json, os, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
        "out = p.stdout.read(); err = p.stderr.read()\n"
        "_, status, usage = os.wait4(p.pid, 0)\n"
        "print(json.dumps({'wall': time.perf_counter() - t, 'rss_kb': usage.ru_maxrss,\n"
        "                  'status': status, 'out': out.decode(), 'err': err.decode()}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, sys.executable, "-m", "claire_cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    body = json.loads(result.stdout)
    if body["status"] != 0:
        sys.exit(f"claire failed: {body['err']}")
    return body["wall"], body["rss_kb"] / 1024, json.loads(body["out"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=200)
    parser.add_argument("--days", type=float, default=7)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="claire-bench-large-"))
    os.chmod(folder, 0o711)
    try:
        end_ms = int(datetime(2018, 1, 1, tzinfo=UTC).timestamp() * 1000)
        large = folder / "large" / "ETH_BTC-1m.csv"
        small = folder / "small" / "ETH_BTC-1m.csv"
        large.parent.mkdir()
        small.parent.mkdir()
        t0 = time.perf_counter()
        rows = generate(large, args.size_mb, end_ms)
        head(large, small, int((args.days + 1) * 1440))
        made = time.perf_counter() - t0
        size = large.stat().st_size / 1024 / 1024
        home = folder / "home"
        env = {**os.environ, "CLAIRE_HOME": str(home)}
        common = ["papertest", "start", "--days", f"{args.days:g}", "--capital", "10", "--json"]
        run_claire(["papertest", "status", "--json"], env)  # initdb, not timed

        cases = [
            ("small file, in memory", [*common, "--no-persist", "--replay", str(small)]),
            ("large file, in memory", [*common, "--no-persist", "--replay", str(large)]),
            ("small file, persisted", [*common, "--replay", str(small)]),
            ("large file, persisted", [*common, "--replay", str(large)]),
        ]
        print(f"large file:  {size:.1f} MB, {rows:,} one-minute candles (made in {made:.1f} s)")
        print(f"small file:  its first {args.days + 1:g} days")
        print(f"window:      {args.days:g} days from the first candle")
        print(f"{'case':<24}{'wall s':>9}{'peak RSS MB':>14}{'market events':>16}")
        for name, case in cases:
            wall, rss, summary = run_claire(case, env)
            print(f"{name:<24}{wall:>9.2f}{rss:>14.1f}{summary['market_events']:>16,}")
        print(f"python:      {sys.version.split()[0]}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
