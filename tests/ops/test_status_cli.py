"""`claire status`: exit 0 healthy, 1 degraded, 2 no run; and --watch until Ctrl-C."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.config import load_settings
from engine.home.database import open_store
from tests.cli.support import ETH, invoke, ok, replay
from tests.paperrun.runs import claire_process

pytestmark = pytest.mark.integration


def test_no_data_and_no_run_both_exit_two(claire_home: Path, tmp_path: Path) -> None:
    missing = invoke("status", "--json", "--data-dir", tmp_path / "typo")
    assert missing.exit_code == 2 and json.loads(missing.stdout)["health"] == "no_run"
    with open_store(load_settings(), claire_home):
        pass  # a database, without runs
    empty = invoke("status", "--json")
    assert empty.exit_code == 2
    assert json.loads(empty.stdout)["reasons"] == ["no run in this data folder yet"]
    assert invoke("status").exit_code == 2


def test_a_finished_run_is_healthy_and_an_interrupted_one_degraded(claire_home: Path) -> None:
    ok(*replay(ETH, days="0.5"), "--json")
    healthy = invoke("status", "--json")
    assert healthy.exit_code == 0
    body = json.loads(healthy.stdout)
    assert body["status"] == "completed" and body["rows"]["candles"] == 144
    assert body["backup"]["count"] == 0  # a replay over in seconds takes no backup, and is fine
    assert body["processes"][0]["name"] == "postgres"
    text = invoke("status")
    assert text.exit_code == 0 and "HEALTHY" in text.stdout and "Processes" in text.stdout

    with open_store(load_settings(), claire_home) as (store, _):
        store.create_run(
            "run-orphan", config={}, data_source="replay: x", started_at=datetime.now(UTC)
        )
    degraded = invoke("status", "--json")
    assert degraded.exit_code == 1
    found = json.loads(degraded.stdout)
    assert found["run_id"] == "run-orphan" and found["status"] == "interrupted"
    assert "claire papertest start --resume --run run-orphan" in found["reasons"][0]


def test_watch_refreshes_until_ctrl_c(claire_home: Path) -> None:
    ok(*replay(ETH, days="0.5"), "--json")
    child = claire_process(["status", "--watch", "--json", "--interval", "0.2"])
    assert child.stdout is not None
    lines = [json.loads(child.stdout.readline()) for _ in range(3)]
    child.send_signal(signal.SIGINT)
    child.communicate(timeout=30)
    assert child.returncode == 0
    assert all(line["health"] == "healthy" for line in lines)
    assert lines[0]["checked_at"] < lines[2]["checked_at"]
