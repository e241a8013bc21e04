"""The stack on a real Docker engine: build, up, a killed service, the same fills, down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import psycopg
import pytest
from typer.testing import CliRunner

from claire_cli.main import app
from engine.run.stack_runs import run_progress, wait_for_run
from engine.runtime.files import free_port
from engine.stack.config import StackConfig
from engine.stack.containers import (
    LABEL_PROJECT,
    StackError,
    restart_service,
    service_logs,
    stack_rows,
)
from engine.stack.spec import ENGINE_SERVICES, VOLUMES, container_name, volume_name
from tests.conftest import FOUR_SYMBOLS, MARKET
from tests.paperrun.runs import claire_process, replay_args
from tests.stack.conftest import TEST_PROJECT

pytestmark = [pytest.mark.slow, pytest.mark.docker]

FILL_COLUMNS = "trade_id, ts, symbol, side, qty, price, fee"
BACKING = ["cdb_redis", "cdb_postgres", "cdb_init", "cdb_steward"]  # the run's steward
# Seconds `stack up` may take here: on the vfs storage driver each container's creation
# copies the whole image, while the other lanes of the suite hold both cores.
UP_TIMEOUT = "600"


@pytest.fixture
def stack_env(
    docker_host: str, stack_images: dict[str, float], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Host network, free ports, fresh secrets, and a project and run id of the test's own."""
    env = {
        "DOCKER_HOST": docker_host,
        "CLAIRE_STACK_NETWORK": "host",
        "CLAIRE_STACK_PROJECT": TEST_PROJECT,
        "POSTGRES_PASSWORD": uuid.uuid4().hex,
        "REDIS_PASSWORD": uuid.uuid4().hex,
        "CLAIRE_MARKET_DATA": str(MARKET),
        "CLAIRE_REPLAY_DAYS": "7",
        "CLAIRE_REPLAY_SPEED": "10000x",  # about a minute: time to crash a service mid-run
        "CLAIRE_HEALTH_INTERVAL": "1s",
        "CLAIRE_RUN_ID": "stack-" + uuid.uuid4().hex[:8],
        "REDIS_PORT": str(free_port()),
        "POSTGRES_PORT": str(free_port()),
    }
    for _, variable, _ in ENGINE_SERVICES.values():
        env[variable] = str(free_port())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def claire(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result


def stack_fills(env: dict[str, str]) -> list[tuple[Any, ...]]:
    url = f"postgresql://claire:{env['POSTGRES_PASSWORD']}@127.0.0.1:{env['POSTGRES_PORT']}/claire"
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT {FILL_COLUMNS} FROM trades WHERE run_id = %s ORDER BY ts, trade_id",
            (env["CLAIRE_RUN_ID"],),
        ).fetchall()
        status = conn.execute(
            "SELECT status FROM runs WHERE run_id = %s", (env["CLAIRE_RUN_ID"],)
        ).fetchone()
    assert status == ("completed",)
    return [tuple(r) for r in rows]


def in_process_fills(child: subprocess.Popen[str], claire_home: Path) -> list[tuple[Any, ...]]:
    from engine.config import load_settings
    from engine.home.database import open_store

    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    run_id = json.loads(out)["run_id"]
    with open_store(load_settings(), claire_home) as (store, _):
        rows = store.db.fetch_all(
            f"SELECT {FILL_COLUMNS} FROM trades WHERE run_id = %(r)s ORDER BY ts, trade_id",
            {"r": run_id},
        )
    return [tuple(r.values()) for r in rows]


def container(client: docker.DockerClient, service: str) -> Any:
    """The container of a service of the tests' stack."""
    return client.containers.get(container_name(service, TEST_PROJECT))


def ours(client: docker.DockerClient) -> list[Any]:
    """Every container of the tests' stack."""
    return client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={TEST_PROJECT}"})


def wait_restarted(client: docker.DockerClient, name: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        container = client.containers.get(container_name(name, TEST_PROJECT))
        if container.attrs["RestartCount"] >= 1 and container.status == "running":
            return
        time.sleep(0.3)
    raise AssertionError(f"{name} was not restarted: {container.attrs['State']}")


def test_the_stack_runs_a_7_day_replay_through_a_killed_service_to_the_same_fills(
    stack_env: dict[str, str], docker_host: str, claire_home: Path, tmp_path: Path
) -> None:
    client = docker.DockerClient(base_url=docker_host)
    compose_dir = str(tmp_path)  # no .env of the developer's in the way
    try:
        up = claire("stack", "up", "--no-monitoring", "--compose-dir", compose_dir,
                    "--timeout", UP_TIMEOUT, "--json")  # fmt: skip
        assert up.exit_code == 0, up.output
        ps = claire("stack", "ps", "--json")
        rows = {r["service"]: r for r in json.loads(ps.output)}
        assert set(rows) == {*BACKING, *ENGINE_SERVICES}
        for name, row in rows.items():
            if name == "cdb_init":
                assert (row["state"], row["exit_code"]) == ("exited", 0)
            else:
                assert (row["state"], row["health"], row["restarts"]) == (
                    "running", "healthy", 0,
                ), name  # fmt: skip
                assert row["ports"].startswith("host "), row
        names = {c.name for c in ours(client)}  # the tests' own names, beside any stack
        assert names == {container_name(n, TEST_PROJECT) for n in rows}
        assert all(n.startswith(f"{TEST_PROJECT}_cdb_") for n in names)
        table = claire("stack", "ps")
        assert "cdb_execution" in table.output and "healthy" in table.output

        # A crash mid-run: SIGKILL of the execution service's process (from outside, as the
        # kernel's OOM killer would; Docker's own kill counts as a stop it must respect).
        config = StackConfig.load(Path(compose_dir))
        before = run_progress(config)
        assert before["run_id"] == stack_env["CLAIRE_RUN_ID"] and not before["complete"]
        os.kill(container(client, "cdb_execution").attrs["State"]["Pid"], signal.SIGKILL)
        wait_restarted(client, "cdb_execution")
        reference = claire_process(replay_args(FOUR_SYMBOLS, "--json"))  # the same, in-process
        wait_for_run(config, timeout_s=400)
        assert next(r for r in stack_rows() if r["service"] == "cdb_execution")["restarts"] >= 1

        fills = stack_fills(stack_env)
        assert len(fills) > 100
        assert fills == in_process_fills(reference, claire_home)

        # The functions other modules use: logs and a restart of one service.
        assert any("service started" in line for line in service_logs("cdb_risk", tail=500))
        restart_service("cdb_portfolio", timeout_s=10)
        assert container(client, "cdb_portfolio").status == "running"
        with pytest.raises(StackError, match="no service 'cdb_nope'"):
            service_logs("cdb_nope")

        # An incident against the stack: its service-crash action restarts the container,
        # and the bundle holds every container's state and logs.
        stack_url = (
            f"postgresql://claire:{stack_env['POSTGRES_PASSWORD']}@127.0.0.1:"
            f"{stack_env['POSTGRES_PORT']}/claire"
        )
        restarts = container(client, "cdb_risk").attrs["RestartCount"]
        started = container(client, "cdb_risk").attrs["State"]["StartedAt"]
        os.environ["CLAIRE_POSTGRES_URL"] = stack_url
        try:
            opened = claire("incident", "open", "service-crash", "--service", "risk",
                            "--run", stack_env["CLAIRE_RUN_ID"], "--json")  # fmt: skip
        finally:
            del os.environ["CLAIRE_POSTGRES_URL"]
        assert opened.exit_code == 0, opened.output
        incident = json.loads(opened.output)
        assert "cdb_risk" in json.dumps(incident) and "restarted through Docker" in json.dumps(
            incident
        )
        assert container(client, "cdb_risk").attrs["State"]["StartedAt"] != started
        assert container(client, "cdb_risk").attrs["RestartCount"] >= restarts
        with tarfile.open(incident["bundle_path"]) as tar:
            names = set(tar.getnames())
            rows = json.loads(tar.extractfile("containers/containers.json").read())  # type: ignore[union-attr]
        assert {"containers/cdb_risk.log", "containers/cdb_ws.log"} <= names
        assert {r["service"] for r in rows} >= set(ENGINE_SERVICES)

        down = claire("stack", "down")
        assert down.exit_code == 0 and "volumes kept" in down.output
        assert not ours(client)
        kept = {v.name for v in client.volumes.list()}
        assert {volume_name(v, TEST_PROJECT) for v in ("postgres_data", "redis_data")} <= kept
    finally:
        remove_stack(client)


def remove_stack(client: docker.DockerClient) -> None:
    """Whatever the tests' stack left: its containers and volumes."""
    for left in ours(client):
        left.remove(force=True)
    for volume in VOLUMES:
        for found in client.volumes.list(filters={"name": volume_name(volume, TEST_PROJECT)}):
            found.remove(force=True)
