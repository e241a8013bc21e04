"""When the run's HTTP port is taken, the run serves on another one and says which: in
its summary and in `claire status` while it runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from engine.runtime.files import free_port
from tests.cli.support import ETH, invoke

pytestmark = pytest.mark.integration


@pytest.fixture
def taken_port() -> Iterator[int]:
    port = free_port()
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", port))
        held.listen()
        yield port


def start(*extra: str, port: int) -> dict:
    args = ["papertest", "start", "--replay", str(ETH), "--days", "1", "--capital", "10"]
    result = invoke(*args, *extra, "--json", env={"CLAIRE_HTTP_PORT": str(port)})
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_the_summary_gives_the_port_actually_used(taken_port: int, claire_home: Path) -> None:
    body = start("--speed", "max", port=taken_port)
    assert body["http_port"] and body["http_port"] != taken_port
    shown = invoke("papertest", "start", "--resume", env={"CLAIRE_HTTP_PORT": "off"})
    assert "no interrupted run" in shown.stderr  # it completed


def test_status_gives_the_port_a_running_run_serves_on(taken_port: int, claire_home: Path) -> None:
    started = start("--speed", "600x", "--detach", port=taken_port)
    try:
        deadline = time.monotonic() + 30
        while True:
            status = json.loads(invoke("status", "--json").stdout)
            text = json.dumps(status)
            if "http://127.0.0.1:" in text:
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.2)
        assert f"http://127.0.0.1:{taken_port}/" not in text
    finally:
        os.kill(started["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 30
        while psutil.pid_exists(started["pid"]) and time.monotonic() < deadline:
            time.sleep(0.2)
