"""The web view under 50 open pages: the server's CPU and how fast updates arrive.

Starts, in a temporary data folder, a paced replay of the four shipped symbols
(`--speed 3600x --detach`: about one snapshot a second) and `claire web` beside it,
then opens N pages' event streams (`GET /api/stream`, as many browsers would) and
for a while measures:

- the CPU time of the `claire web` process (its own, not the database's), as a
  share of one core, first with no page open, then with N;
- for every update each page receives, the time from its snapshot becoming
  visible in the database (a watcher polls the newest snapshot every 20 ms) to
  its arrival at the page.

    python bench/web_pages.py [--pages 50] [--seconds 30] [--speed 3600x]

Goals: under 5 % of one core with 50 pages; every update within 1 s of its snapshot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CLAIRE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "market"
FILES = [DATA / f"{s}_BTC-5m.csv" for s in ("ETH", "LTC", "ADA", "DASH")]
NEWEST = (
    "SELECT event_id FROM portfolio_snapshots WHERE run_id = %s "
    "ORDER BY ts DESC, (cause_id = 'run-end') DESC, event_id DESC LIMIT 1"
)


def claire(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claire_cli.main", *args],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Watcher(threading.Thread):
    """When each snapshot first became visible in the database (wall clock)."""

    def __init__(self, url: str, run_id: str) -> None:
        super().__init__(daemon=True)
        self.url, self.run_id = url, run_id
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                row = conn.execute(NEWEST, (self.run_id,)).fetchone()
                if row is not None and row[0] not in self.seen:
                    self.seen[row[0]] = time.time()
                time.sleep(0.02)


async def page(port: int, arrivals: list[tuple[str, float]], stop: asyncio.Event) -> None:
    """One open page: reads the event stream, notes each update's snapshot and time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    )
    await writer.drain()
    try:
        while not stop.is_set():
            try:
                line = await asyncio.wait_for(reader.readline(), 0.5)
            except TimeoutError:
                continue
            if not line:
                break
            # Chunked framing: the data lines are whole lines inside the chunks.
            if line.startswith(b"data: "):
                now = time.time()
                body = json.loads(line[6:])
                if body.get("snapshot_id"):
                    arrivals.append((body["snapshot_id"], now))
    finally:
        writer.close()


async def measure(port: int, pages: int, seconds: float, pid: int) -> dict[str, Any]:
    stop = asyncio.Event()
    arrivals: list[list[tuple[str, float]]] = [[] for _ in range(pages)]
    tasks = [asyncio.create_task(page(port, arrivals[i], stop)) for i in range(pages)]
    await asyncio.sleep(2)  # every page has its first view
    process = psutil.Process(pid)
    before, start = process.cpu_times(), time.monotonic()
    started_at = time.time()
    await asyncio.sleep(seconds)
    after, wall = process.cpu_times(), time.monotonic() - start
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    cpu = (after.user + after.system - before.user - before.system) / wall
    return {"cpu": cpu, "arrivals": arrivals, "from": started_at, "wall": wall}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--speed", default="3600x")
    options = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="claire-bench-web-"))
    os.chmod(home, 0o711)
    env = {**os.environ, "CLAIRE_HOME": str(home), "CLAIRE_HTTP_PORT": "off"}
    web = None
    try:
        args = ["papertest", "start", "--days", "7", "--capital", "10", "--speed", options.speed]
        for path in FILES:
            args += ["--replay", str(path)]
        run = json.loads(claire(*args, "--detach", "--json", env=env).stdout)
        url = claire("db", "url", env=env).stdout.strip()
        port = free_port()
        web = subprocess.Popen(
            [sys.executable, "-m", "claire_cli.main", "web", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                assert web.poll() is None and time.monotonic() < deadline, "claire web failed"
                time.sleep(0.1)
        watcher = Watcher(url, run["run_id"])
        watcher.start()

        idle = asyncio.run(measure(port, 0, min(10.0, options.seconds), web.pid))
        busy = asyncio.run(measure(port, options.pages, options.seconds, web.pid))
        watcher.stop.set()
        delays = []
        missing = 0
        for got in busy["arrivals"]:
            first: dict[str, float] = {}
            for snapshot, at in got:
                first.setdefault(snapshot, at)  # a rebuild with no new snapshot is no update
            for snapshot, at in first.items():
                seen = watcher.seen.get(snapshot)
                if seen is None:
                    missing += 1
                elif seen >= busy["from"]:
                    delays.append(max(0.0, at - seen))
        snapshots = [s for s, t in watcher.seen.items() if t >= busy["from"]]
        per_page = [len({s for s, _ in a}) for a in busy["arrivals"]]
        delays.sort()
        print(f"replay {options.speed}, {busy['wall']:.0f} s measured, {len(snapshots)} snapshots")
        print(f"server CPU, no page open: {idle['cpu'] * 100:.2f} % of one core")
        print(f"server CPU, {options.pages} pages open: {busy['cpu'] * 100:.2f} % of one core")
        print(f"snapshots each page received: min {min(per_page)}, max {max(per_page)}")
        if delays:
            p50 = statistics.median(delays)
            p95 = delays[int(0.95 * (len(delays) - 1))]
            print(
                f"snapshot to page: {len(delays)} updates, median {p50 * 1000:.0f} ms, "
                f"p95 {p95 * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms"
            )
        print(f"updates whose snapshot the watcher never saw: {missing}")
        ok = busy["cpu"] < 0.05 and bool(delays) and delays[-1] <= 1.0
        print("goals (under 5 % of one core, every update within 1 s):", "met" if ok else "NOT met")
        return 0 if ok else 1
    finally:
        if web is not None:
            web.terminate()
            web.wait(20)
        subprocess.run(
            [sys.executable, "-m", "claire_cli.main", "papertest", "stop", "--reason", "bench"],
            env=env, capture_output=True, check=False,
        )  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
