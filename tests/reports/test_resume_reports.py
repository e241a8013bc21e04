"""A stopped and resumed run raises the alerts of an unbroken one and still writes every report."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from engine.config import load_settings
from engine.home.database import open_store
from engine.kernel.progress import ProgressView
from engine.report.content import build_report
from engine.run.runner import PaperRunner
from engine.store import RunStatus

pytestmark = pytest.mark.integration

ALERT_COLUMNS = "rule, status, ts, episode_id, severity, value, message"


def _alerts(home: Path, run_id: str) -> list[dict[str, Any]]:
    with open_store(load_settings(), home) as (store, _):
        return store.db.fetch_all(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE run_id = %(r)s ORDER BY ts, event_id",
            {"r": run_id},
        )


def test_resume_keeps_alert_episodes_and_writes_every_report(
    four_symbols: list[Path], claire_home: Path
) -> None:
    settings = load_settings(initial_capital="10", alert_exposure_pct="0.08", alert_for_seconds=0)
    unbroken = PaperRunner(settings, claire_home).start(four_symbols, 2, "max")

    calls: list[ProgressView] = []

    def interrupt(view: ProgressView) -> None:
        calls.append(view)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    stopped = PaperRunner(settings, claire_home).start(four_symbols, 2, "max", progress=interrupt)
    assert stopped.status is RunStatus.STOPPED
    resumed = PaperRunner(settings, claire_home, reports=True).resume(stopped.run_id)
    assert resumed.status is RunStatus.COMPLETED
    assert resumed.summary.fills == unbroken.summary.fills

    before, after = _alerts(claire_home, unbroken.run_id), _alerts(claire_home, stopped.run_id)
    assert before and after == before  # same episodes, same times, ids and values
    assert any(a["status"] == "resolved" for a in after)

    folder = claire_home / "reports" / stopped.run_id
    assert sorted(p.name for p in folder.glob("*.md")) == ["day-01.md", "day-02.md", "final.md"]
    with open_store(load_settings(), claire_home) as (store, _):
        system = build_report(store, stopped.run_id).body["system"]
    assert system["sessions"] == 2 and system["restarts"] == 1
