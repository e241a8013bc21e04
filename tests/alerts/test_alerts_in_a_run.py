"""Alert rules in a persisted run: tight limits fire and resolve, webhooks hear them, a
channel that always fails changes nothing, and daily summaries go out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from engine.config import load_settings
from engine.home.database import open_store
from tests.alerts.receiver import closed_port, receiver
from tests.cli.support import ok

pytestmark = pytest.mark.integration

TIGHT = {
    "ALERT_DAILY_DRAWDOWN_PCT": "0.004",
    "ALERT_EXPOSURE_PCT": "0.08",
    "ALERT_FOR_SECONDS": "0",
    "ALERT_CLEAR_SECONDS": "600",
    "CLAIRE_NOTIFY_RETRIES": "1",
}


def _start(files: list[Path]) -> dict[str, Any]:
    args = ["papertest", "start", "--days", "2", "--capital", "10", "--json", "--reports"]
    for path in files:
        args += ["--replay", str(path)]
    return json.loads(ok(*args).stdout)


def _rows(kind: str, run_id: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(ok("export", kind, "--run", run_id).stdout)))


def test_tight_limits_fire_and_resolve_notify_and_leave_the_fills_alone(
    four_symbols: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in TIGHT.items():
        monkeypatch.setenv(name, value)
    baseline = _start(four_symbols)

    with receiver() as hook:
        failing = f"json://127.0.0.1:{closed_port()}/down"
        urls = [hook.url("alerts", "min_severity=warning"), hook.url("all"), failing]
        monkeypatch.setenv("CLAIRE_NOTIFY_URLS", ",".join(urls))
        noisy = _start(four_symbols)
        posts = hook.wait_for(1)
        paths = list(hook.paths)

    # A channel that always fails does not change a single fill.
    assert _rows("trades", noisy["run_id"]) == _rows("trades", baseline["run_id"])
    assert noisy["equity"] == baseline["equity"] and noisy["fills"] == baseline["fills"] > 0

    alerts = _rows("alerts", noisy["run_id"])
    for rule in ("daily_drawdown_high", "exposure_high"):
        fired = [a for a in alerts if a["rule"] == rule and a["status"] == "firing"]
        resolved = [a for a in alerts if a["rule"] == rule and a["status"] == "resolved"]
        assert fired and resolved, rule
        # Each resolution closes an episode that fired before it, once.
        by_id = {a["episode_id"]: a for a in fired}
        assert len(by_id) == len(fired)
        for r in resolved:
            assert by_id[r["episode_id"]]["ts"] < r["ts"]
        assert len({r["episode_id"] for r in resolved}) == len(resolved)
    first = next(a for a in alerts if a["rule"] == "daily_drawdown_high")
    assert first["severity"] == "critical" and "daily drawdown" in first["message"]

    # The webhook heard the alerts with their text; the failing channel was only skipped.
    by_path: dict[str, list[dict[str, Any]]] = {}
    for path, post in zip(paths, posts, strict=True):
        by_path.setdefault(path, []).append(post)
    critical = [
        p for p in by_path["/alerts"] if p["title"] == "claire CRITICAL: daily_drawdown_high"
    ]
    assert critical and critical[0]["message"].startswith(first["message"])
    assert any(p["title"] == "claire WARNING: exposure_high" for p in by_path["/alerts"])
    assert any(p["title"].startswith("claire resolved: exposure_high") for p in by_path["/alerts"])
    # Market time passed 00:00 UTC twice (the window runs from 04:55 to 04:55 two days on).
    summaries = [p for p in by_path["/all"] if p["title"].startswith("claire daily summary")]
    assert [p["title"] for p in summaries] == [
        "claire daily summary: day 1 (2018-01-10)",
        "claire daily summary: day 2 (2018-01-11)",
    ]
    assert "PnL" in summaries[0]["message"] and noisy["run_id"] in summaries[0]["message"]
    assert not any(p["title"].startswith("claire daily summary") for p in by_path["/alerts"])

    # Alerts are counted once each, resolutions apart, in the summary and the report.
    report = json.loads(ok("report", "--json", "--run", noisy["run_id"]).stdout)
    assert (
        report["alerts"] == noisy["alerts"] == len([a for a in alerts if a["status"] == "firing"])
    )
    episodes = [e for e in report["alert_episodes"] if e["rule"] == "exposure_high"]
    assert episodes and all(e["fired_at"] for e in episodes)
    assert any(e["resolved_at"] for e in episodes)

    # What is still firing at the end, for status views and incidents.
    with open_store(load_settings(), None) as (store, _):
        firing = store.db.fetch_all(store.queries["firing_alerts"], {"run_id": noisy["run_id"]})
    opened = {a["episode_id"] or a["event_id"] for a in alerts if a["status"] == "firing"}
    closed = {a["episode_id"] for a in alerts if a["status"] == "resolved"}
    assert {f["episode_id"] for f in firing} == opened - closed


def test_the_run_log_holds_the_alerts_as_json_lines(four_symbols: list[Path]) -> None:
    run = _start(four_symbols[:1])
    text = ok("logs", "--run", run["run_id"], "--json").stdout
    records = [json.loads(line) for line in text.splitlines()]
    assert records and all(r["run_id"] == run["run_id"] for r in records)
    events = {r.get("event") for r in records}
    assert {"session_start", "session_end", "report_written"} <= events
    human = ok("logs", "--run", run["run_id"], "--level", "warning").stdout
    assert all(" INFO " not in line for line in human.splitlines())
