"""A replay as one process per service: the same fills as one process, through crashes."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.config import load_settings
from engine.home.database import open_store
from engine.runtime import EmbeddedPostgres
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


def in_process_run(files: list[Path], days: str, env: dict[str, str] | None = None) -> str:
    child = claire_process(replay_args(files, days, "--json"), env)
    code, out, err = finish(child)
    assert code == 0, err
    return str(json.loads(out)["run_id"])


_UNBROKEN: dict[tuple[tuple[Path, ...], str], list[tuple[Any, ...]]] = {}


def in_process_fills(files: list[Path], days: str, home: Path) -> list[tuple[Any, ...]]:
    """The fills of one uninterrupted process on the same data (made once per test file)."""
    key = (tuple(files), days)
    if key not in _UNBROKEN:
        run_id = in_process_run(files, days)
        _UNBROKEN[key] = runs_and_fills(home)[run_id]
    return _UNBROKEN[key]


# Alerts of market time: memory and service health run on the wall clock.
def event_time_alerts(home: Path, run_id: str) -> list[tuple[Any, ...]]:
    with open_store(load_settings(), home) as (store, _):
        rows = store.db.fetch_all(
            "SELECT event_id, ts, severity, rule, message, detail FROM alerts"
            " WHERE run_id = %(r)s AND rule <> ALL(%(wall)s) ORDER BY ts, event_id",
            {"r": run_id, "wall": ["memory_high", "service_down"]},
        )
    return [tuple(r.values()) for r in rows]


@pytest.mark.services
def test_a_7_day_replay_of_the_four_symbols_as_services_fills_as_one_process(
    four_symbols: list[Path], claire_home: Path
) -> None:
    tight = {"ALERT_EXPOSURE_PCT": "0.05", "ALERT_OPEN_POSITIONS": "0", "ALERT_FOR_SECONDS": "0"}
    args = replay_args(four_symbols, "7", "--services", "--reports", "--json")
    child = claire_process(args, tight)
    code, out, err = finish(child)
    assert code == 0, err
    body = json.loads(out)
    assert body["status"] == "completed"
    services_fills = runs_and_fills(claire_home)[body["run_id"]]
    assert len(services_fills) > 100
    alone = in_process_run(four_symbols, "7", tight)
    assert services_fills == runs_and_fills(claire_home)[alone]
    # The alerts service raises the alerts one process raises, at the same market times.
    alerts = event_time_alerts(claire_home, body["run_id"])
    assert {a[3] for a in alerts} >= {"exposure_high", "open_positions_high"}
    assert alerts == event_time_alerts(claire_home, alone)
    kinds = [(e["service"], e["kind"]) for e in service_events(claire_home, body["run_id"])]
    assert {s for s, k in kinds if k == "start"} == set(SERVICES)
    assert not [k for _, k in kinds if k == "restart"]
    # The reports asked for are written: each UTC day's and the final one.
    reports = sorted(p.name for p in (claire_home / "reports" / body["run_id"]).iterdir())
    stems = [f"day-{d:02d}" for d in range(1, 8)] + ["final"]
    assert reports == sorted(f"{s}.{fmt}" for s in stems for fmt in ("html", "json", "md"))


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


@pytest.mark.services
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


@pytest.mark.services
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


@pytest.mark.services
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


@pytest.mark.services
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


@pytest.mark.services
@pytest.mark.slow
def test_a_30_second_database_outage_mid_run_is_ridden_out_and_nothing_is_lost(
    four_symbols: list[Path], claire_home: Path
) -> None:
    # The services' PostgreSQL is a server of its own (as in a stack), stopped for 30 s.
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="claire-pg-")))
    os.chmod(server.data_dir, 0o711)
    url = server.start()
    base = free_port()
    files = four_symbols[:2]
    env = {"CLAIRE_POSTGRES_URL": url, "CLAIRE_SERVICE_PORT_BASE": str(base)}
    writer_port = base + SERVICES.index("writer")
    try:
        paced = replay_args(files, "1", "--services", "--json", "--speed", "2500x")
        child = claire_process(paced, env)
        deadline = time.monotonic() + 60
        while _health(writer_port)[0] != 200:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the writer never answered"
            time.sleep(0.1)
        time.sleep(2)
        server.shutdown()
        outage_began = time.monotonic()
        down_reasons: dict[str, Any] = {}
        while not down_reasons:
            assert time.monotonic() - outage_began < 25, "the writer's health stayed ok"
            code, body = _health(writer_port)
            if code == 503:
                down_reasons = body["reasons"]
            time.sleep(0.2)
        # A service that crashes during the outage waits for the database when restarted.
        run_id = next(iter(_runs_in(child, "signal")))
        os.kill(_service_pid(run_id, "signal") or 0, signal.SIGKILL)
        time.sleep(max(0.0, 30 - (time.monotonic() - outage_began)))
        assert child.poll() is None, "the run gave up during the outage"
        server.start()
        code, out, err = finish(child)
        assert code == 0, err
        body = json.loads(out)
        assert body["status"] == "completed"
        assert "database" in down_reasons
        with psycopg.connect(url) as conn:
            fills = conn.execute(
                f"SELECT {FILL_COLUMNS} FROM trades WHERE run_id = %s ORDER BY ts, trade_id",
                (body["run_id"],),
            ).fetchall()
            events = conn.execute(
                "SELECT service, kind FROM service_events WHERE run_id = %s ORDER BY ts, id",
                (body["run_id"],),
            ).fetchall()
    finally:
        server.shutdown()
        shutil.rmtree(server.data_dir, ignore_errors=True)
    assert [tuple(f) for f in fills] == in_process_fills(files, "1", claire_home)
    # The crash and restart during the outage were kept and recorded once it was back.
    assert ("signal", "exit") in events and ("signal", "restart") in events


def _health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        got = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    except httpx.HTTPError:
        return 0, {}
    return got.status_code, got.json()


def _runs_in(child: subprocess.Popen[str], service: str) -> list[str]:
    """Run ids of the `service` processes the supervisor `child` started."""
    ids = []
    for proc in psutil.process_iter(["cmdline", "ppid"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["ppid"] == child.pid and f"engine run {service} --run" in " ".join(cmd):
            ids.append(cmd[cmd.index("--run") + 1])
    assert ids, f"no {service} service of this run"
    return ids
