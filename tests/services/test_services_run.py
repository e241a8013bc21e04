"""A replay as one process per service: the same fills as one process, through crashes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.config import load_settings
from engine.paperrun import open_store
from engine.runtime.files import free_port
from engine.services.host import SERVICES
from tests.paperrun.runs import claire_process

pytestmark = pytest.mark.integration

FILL_COLUMNS = "trade_id, ts, symbol, side, qty, price, fee"


def replay_args(files: list[Path], days: str, *extra: str) -> list[str]:
    args = ["papertest", "start", "--days", days, "--capital", "10", *extra]
    for path in files:
        args += ["--replay", str(path)]
    return args


def runs_and_fills(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    with open_store(load_settings(), home) as (store, _):
        out = {}
        for run in store.list_runs():
            rows = store.db.fetch_all(
                f"SELECT {FILL_COLUMNS} FROM trades WHERE run_id = %(r)s ORDER BY ts, trade_id",
                {"r": run.run_id},
            )
            out[run.run_id] = [tuple(r.values()) for r in rows]
        return out


def service_events(home: Path, run_id: str) -> list[dict[str, Any]]:
    with open_store(load_settings(), home) as (store, _):
        return store.service_events(run_id)


def finish(child: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str, str]:
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGTERM)  # the supervisor stops its services on the way out
        out, err = child.communicate(timeout=60)
        raise AssertionError(f"the run did not finish in {timeout:.0f} s: {err[-2000:]}") from None
    return child.returncode, out, err


def in_process_fills(files: list[Path], days: str, home: Path) -> list[tuple[Any, ...]]:
    child = claire_process(replay_args(files, days, "--json"))
    code, out, err = finish(child)
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    return runs_and_fills(home)[run_id]


def test_a_7_day_replay_of_the_four_symbols_as_services_fills_as_one_process(
    four_symbols: list[Path], claire_home: Path
) -> None:
    child = claire_process(replay_args(four_symbols, "7", "--services", "--json"))
    code, out, err = finish(child)
    assert code == 0, err
    body = json.loads(out)
    assert body["status"] == "completed"
    services_fills = runs_and_fills(claire_home)[body["run_id"]]
    assert len(services_fills) > 100
    assert services_fills == in_process_fills(four_symbols, "7", claire_home)
    kinds = [(e["service"], e["kind"]) for e in service_events(claire_home, body["run_id"])]
    assert {s for s, k in kinds if k == "start"} == set(SERVICES)
    assert not [k for _, k in kinds if k == "restart"]


def _service_pid(run_id: str, name: str) -> int | None:
    pattern = f"claire engine run {name} --run {run_id}"
    for proc in psutil.process_iter(["cmdline"]):
        if pattern in " ".join(proc.info["cmdline"] or []):
            return int(proc.pid)
    return None


def wait_for_service(child: subprocess.Popen[str], home: Path, name: str) -> str:
    """The run id, once the run's service `name` is up."""
    deadline = time.monotonic() + 60
    run_id = None
    while run_id is None or _service_pid(run_id, name) is None:
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, f"service {name} never started"
        run_id = run_id or _newest_run(home)
        time.sleep(0.05)
    return run_id


def _newest_run(home: Path) -> str | None:
    try:
        with open_store(load_settings(), home) as (store, _):
            runs = store.list_runs()
    except Exception:
        return None
    return runs[0].run_id if runs else None


@pytest.mark.slow
@pytest.mark.parametrize("service", [s for s in SERVICES if s != "feed"] + ["feed"])
@pytest.mark.parametrize("trial", range(5))
def test_a_service_killed_at_a_random_moment_is_restarted_and_nothing_is_lost(
    service: str, trial: int, four_symbols: list[Path], claire_home: Path
) -> None:
    rng = random.Random(f"{service}-{trial}")
    files = four_symbols[:2]
    child = claire_process(replay_args(files, "1", "--services", "--json"))
    deadline = time.monotonic() + 60
    run_id = None
    pid = None
    while pid is None:
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the services never started"
        run_id = run_id or _newest_run(claire_home)
        if run_id is not None:
            pid = _service_pid(run_id, service)
        time.sleep(0.05)
    time.sleep(rng.uniform(0.2, 2.5))
    if psutil.pid_exists(pid):
        os.kill(pid, signal.SIGKILL)
    code, out, err = finish(child)
    assert code == 0, err
    body = json.loads(out)
    assert body["status"] == "completed"
    fills = runs_and_fills(claire_home)[body["run_id"]]
    expected = in_process_fills(files, "1", claire_home)
    assert fills == expected  # nothing lost, nothing doubled
    events = service_events(claire_home, body["run_id"])
    killed = [e for e in events if e["service"] == service and e["kind"] == "exit"]
    if killed and killed[0]["exit_code"] == -signal.SIGKILL:
        assert [e for e in events if e["service"] == service and e["kind"] == "restart"]


def test_every_service_answers_health_status_and_metrics(
    four_symbols: list[Path], claire_home: Path
) -> None:
    ports = {name: 18100 + n for n, name in enumerate(SERVICES)}
    env = {"CLAIRE_SERVICE_PORT_BASE": "18100"}
    child = claire_process(replay_args(four_symbols, "7", "--services", "--json"), env)
    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 90
    try:
        while len(seen) < len(ports):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, f"only {sorted(seen)} answered"
            for name, port in ports.items():
                if name in seen:
                    continue
                try:
                    health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                    status = httpx.get(f"http://127.0.0.1:{port}/status", timeout=1)
                    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
                except httpx.HTTPError:
                    continue
                seen[name] = {
                    "health": (health.status_code, health.json()),
                    "status": status.json(),
                    "metrics": metrics.text,
                }
            time.sleep(0.1)
    finally:
        child.send_signal(signal.SIGTERM)
        finish(child)
    for name, got in seen.items():
        code, body = got["health"]
        assert code in (200, 503) and body["service"] == name and body["version"]
        assert body["status"] == ("ok" if code == 200 else "unhealthy")
        assert got["status"]["service"] == name
        families = {f.name for f in text_string_to_metric_families(got["metrics"])}
        assert {"claire_events_published", "claire_service_restarts"} <= families
        # What the Prometheus alert rules divide memory by, on every service.
        assert {"process_resident_memory_bytes", "claire_memory_limit_bytes"} <= families
        got["families"] = families
    # Each run figure comes from the one service that publishes it.
    assert {"claire_daily_drawdown_frac", "claire_exposure_frac", "claire_open_positions"} <= (
        seen["portfolio"]["families"]
    )
    assert {"claire_market_time_seconds", "claire_last_signal_timestamp_seconds"} <= (
        seen["signal"]["families"]
    )
    assert "claire_equity" not in seen["signal"]["families"]
    assert "claire_fills" in seen["execution"]["families"]


def test_sigterm_stops_a_services_run_cleanly_as_stopped(
    four_symbols: list[Path], claire_home: Path
) -> None:
    child = claire_process(replay_args(four_symbols, "7", "--services", "--json"))
    run_id = wait_for_service(child, claire_home, "risk")
    time.sleep(1)
    child.send_signal(signal.SIGTERM)
    code, out, err = finish(child, timeout=60)
    assert code == 143, err  # 128 + SIGTERM
    assert json.loads(out)["status"] == "stopped"
    assert all(_service_pid(run_id, name) is None for name in SERVICES)
    kinds = [e["kind"] for e in service_events(claire_home, run_id)]
    assert "stop" in kinds and "restart" not in kinds


def test_redis_killed_mid_run_comes_back_from_its_log_and_nothing_is_lost(
    four_symbols: list[Path], claire_home: Path
) -> None:
    files = four_symbols[:2]
    child = claire_process(replay_args(files, "1", "--services", "--json"))
    wait_for_service(child, claire_home, "risk")
    time.sleep(1.5)
    [redis_pid] = [
        p.pid
        for p in psutil.process_iter(["name", "cwd"])
        if p.info["name"] == "redis-server" and p.info["cwd"] == str(claire_home / "redis")
    ]
    os.kill(redis_pid, signal.SIGKILL)
    code, out, err = finish(child)
    assert code == 0, err
    body = json.loads(out)
    assert body["status"] == "completed"
    assert runs_and_fills(claire_home)[body["run_id"]] == in_process_fills(files, "1", claire_home)
    kinds = [(e["service"], e["kind"]) for e in service_events(claire_home, body["run_id"])]
    assert ("redis", "restart") in kinds


def test_a_single_process_run_serves_health_status_and_metrics_on_one_port(
    four_symbols: list[Path], claire_home: Path
) -> None:
    port = free_port()
    env = {"CLAIRE_HTTP_PORT": str(port)}
    child = claire_process(replay_args(four_symbols, "7", "--speed", "20000x", "--json"), env)
    deadline = time.monotonic() + 60
    got: dict[str, Any] = {}
    try:
        while "metrics" not in got or "claire_fills_total" not in got["metrics"]:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, got
            try:
                got["health"] = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                got["status"] = httpx.get(f"http://127.0.0.1:{port}/status", timeout=1).json()
                got["metrics"] = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    finally:
        child.send_signal(signal.SIGTERM)
        finish(child)
    assert got["health"].status_code == 200 and got["health"].json()["service"] == "papertest"
    assert got["status"]["run_id"].startswith("run-")
    families = {f.name for f in text_string_to_metric_families(got["metrics"])}
    assert {"claire_equity", "claire_fills", "claire_market_events", "claire_trading_state"} <= (
        families
    )
