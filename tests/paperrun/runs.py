"""Helpers for tests that run `claire` in child processes beside the test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from engine.config import load_settings
from engine.events import Event, OrderResult
from engine.kernel.pipeline import run_replay
from engine.runtime.postgres import attach_url

REPO = Path(__file__).resolve().parents[2]
FILL_COLUMNS = "trade_id, order_id, ts, symbol, side, qty, price, fee, slippage_bps"

Fill = tuple[Any, ...]


def replay_args(files: list[Path], *extra: str, days: str = "7") -> list[str]:
    args = ["papertest", "start", "--days", days, "--capital", "10", *extra]
    for path in files:
        args += ["--replay", str(path)]
    return args


def claire_process(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`claire ARGS` in a child process, with this environment plus `env`."""
    return subprocess.Popen(
        [sys.executable, "-m", "claire_cli.main", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def query(home: Path, sql: str) -> list[dict[str, Any]]:
    """Run SQL on the folder's running server, from outside claire (no user of the server)."""
    url = attach_url(home)
    if url is None:
        return []
    try:
        with psycopg.connect(
            url, row_factory=dict_row, connect_timeout=2, application_name="claire-test"
        ) as conn:
            return conn.execute(sql.encode()).fetchall()
    except psycopg.Error:
        return []


def checkpointed_events(home: Path) -> int:
    rows = query(home, "SELECT max(market_events) AS n FROM run_checkpoints")
    return int(rows[0]["n"] or 0) if rows else 0


def wait_for_checkpoint(child: subprocess.Popen[str], home: Path, events: int) -> None:
    deadline = time.monotonic() + 60
    while checkpointed_events(home) < events:
        if child.poll() is not None:
            raise AssertionError(f"the run ended early: {child.communicate()[1]}")
        assert time.monotonic() < deadline, "the run never checkpointed"
        time.sleep(0.05)


def stored_fills(home: Path, run_id: str) -> list[Fill]:
    from engine.home.database import open_store

    with open_store(load_settings(), home) as (store, _):
        rows = store.db.fetch_all(
            f"SELECT {FILL_COLUMNS} FROM trades WHERE run_id = %(run_id)s ORDER BY ts, trade_id",
            {"run_id": run_id},
        )
    return [tuple(r.values()) for r in rows]


def unbroken_fills(files: list[Path], days: float) -> list[Fill]:
    """The fills of the same replay in memory, never interrupted."""
    seen: list[Event] = []
    run_replay(load_settings(initial_capital="10"), files, days=days, observers=[seen.append])
    fills = [e for e in seen if isinstance(e, OrderResult) and e.status.is_fill]
    rows = [
        (f.trade_id, f.order_id, f.ts, f.symbol, f.side.value, f.qty, f.price, f.fee,
         f.slippage_bps)
        for f in fills
    ]  # fmt: skip
    return sorted(rows, key=lambda r: (r[2], r[0]))
