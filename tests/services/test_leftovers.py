"""Nothing outlives the claire process that started it: the services of a supervisor
killed with SIGKILL, and the server `claire db psql` started, on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from engine.runtime.postgres import attach_url
from engine.runtime.redis import redis_service
from engine.services.host import SERVICES
from engine.services.supervisor import service_environment
from tests.cli.support import ETH
from tests.paperrun.runs import REPO, claire_process
from tests.services.test_services_run import _service_pid, replay_args, wait_for_service

pytestmark = pytest.mark.integration


def test_services_get_only_the_secrets_they_use() -> None:
    environ = {"MEXC_API_KEY": "k", "MEXC_API_SECRET": "s", "CLAIRE_NOTIFY_URLS": "u", "PATH": "/b"}
    assert service_environment("risk", environ) == {"PATH": "/b"}
    assert service_environment("alerts", environ) == {"CLAIRE_NOTIFY_URLS": "u", "PATH": "/b"}


@pytest.mark.services
def test_the_services_of_a_supervisor_killed_with_sigkill_end_within_10_s(
    four_symbols: list[Path], claire_home: Path
) -> None:
    env = {"MEXC_API_KEY": "not-for-services", "MEXC_API_SECRET": "nor-this"}
    child = claire_process(replay_args(four_symbols, "7", "--services", "--json"), env)
    run_id = wait_for_service(child, claire_home, "alerts")
    pids = {name: _service_pid(run_id, name) for name in SERVICES}
    risk = pids["risk"]
    assert risk is not None
    environ = Path(f"/proc/{risk}/environ").read_bytes().split(b"\0")
    leaked = [v for v in environ if v.startswith((b"MEXC_API_KEY=", b"MEXC_API_SECRET="))]
    child.kill()
    child.communicate()
    deadline = time.monotonic() + 10
    left = [pid for pid in pids.values() if pid is not None]
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [p for p in left if psutil.pid_exists(p) and _alive(p)]
    for pid in left:  # leave nothing behind, whatever the result
        os.kill(pid, signal.SIGKILL)
    subprocess.run(  # the next claire command clears the servers the supervisor left
        [sys.executable, "-m", "claire_cli.main", "status", "--data-dir", str(claire_home)],
        capture_output=True, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    redis = redis_service(claire_home)
    redis.start()  # alone: the orphaned server is cleared and one started, then stopped
    redis.stop()
    assert not left, f"services still running 10 s after their supervisor died: {left}"
    assert not leaked, "a service had the exchange keys in its environment"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigterm_to_db_psql_stops_the_server_it_started(claire_home: Path) -> None:
    made = claire_process(["papertest", "start", "--replay", str(ETH), "--days", "1"])
    assert made.wait(timeout=180) == 0, made.communicate()
    assert attach_url(claire_home) is None  # the run stopped its server
    psql = subprocess.Popen(
        [sys.executable, "-m", "claire_cli.main", "db", "psql", "--data-dir", str(claire_home)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=REPO, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while attach_url(claire_home) is None:
        assert psql.poll() is None, psql.communicate()
        assert time.monotonic() < deadline, "the server never started"
        time.sleep(0.1)
    time.sleep(1.0)  # psql is connected
    os.killpg(psql.pid, signal.SIGTERM)
    try:
        psql.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(psql.pid, signal.SIGKILL)
        raise
    assert psql.returncode == 128 + signal.SIGTERM
    assert attach_url(claire_home) is None, "the server started for psql is still running"


PARENT = """
import sys, time
from engine.report import autowrite
try:  # a report of nowhere: it fails, and the worker stays up, warm
    url = "postgresql://nobody@/none?host=/nonexistent"
    autowrite._submit(url, "/nonexistent", "r", None).result()
except Exception:
    pass
print("ready", flush=True)
time.sleep(600)
"""


def test_the_report_worker_ends_with_a_run_killed_with_sigkill(tmp_path: Path) -> None:
    said = tmp_path / "said"
    with said.open("w") as out:  # not a pipe: the worker would hold it open
        parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=out, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while "ready" not in said.read_text():
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        children = psutil.Process(parent.pid).children(recursive=True)
        assert children  # the worker, and multiprocessing's resource tracker
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 5
    left = children
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [c for c in left if _alive(c.pid)]
    for child in left:
        child.kill()
    assert not left, f"still running after their parent was killed: {[c.pid for c in left]}"
