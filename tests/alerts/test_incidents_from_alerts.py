"""INCIDENT_ON_ALERT: an alert opens an incident once per episode, off the pipeline's
path, without halting trading or changing a single fill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.alerts.test_alerts_in_a_run import TIGHT, _rows, _start
from tests.cli.support import ok, ok_json

pytestmark = pytest.mark.integration


def test_a_mapped_alert_opens_one_incident_per_episode_and_leaves_the_fills_alone(
    four_symbols: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = four_symbols[:2]
    for name, value in TIGHT.items():
        monkeypatch.setenv(name, value)
    baseline = _start(files)
    monkeypatch.setenv("INCIDENT_ON_ALERT", "daily_drawdown_high=risk-limit")
    noisy = _start(files)

    assert _rows("trades", noisy["run_id"]) == _rows("trades", baseline["run_id"])
    assert noisy["equity"] == baseline["equity"] and noisy["fills"] == baseline["fills"] > 0
    assert noisy["trading_state"] == baseline["trading_state"]

    episodes = {
        a["episode_id"]: a
        for a in _rows("alerts", noisy["run_id"])
        if a["rule"] == "daily_drawdown_high" and a["status"] == "firing"
    }
    assert episodes
    incidents = [i for i in ok_json("incident", "list") if i["run_id"] == noisy["run_id"]]
    assert {i["detail"]["alert"]["episode_id"] for i in incidents} == set(episodes)
    assert len(incidents) == len(episodes)  # once per episode
    for incident in incidents:
        assert incident["type"] == "risk-limit" and incident["detail"]["opened_by"] == "alert"
        assert incident["stored"] is True
        assert "alert daily_drawdown_high fired" in incident["summary"]
        action = incident["detail"]["first_action"]
        assert action["taken"] is False and "does not stop trading" in action["result"]
        assert Path(incident["bundle_path"]).is_file()
        # The incident is about the market time its alert fired at.
        fired = episodes[incident["detail"]["alert"]["episode_id"]]
        assert incident["detail"]["market_ts"].replace("+00:00", "Z") == fired["ts"].replace(
            "+00:00", "Z"
        )
    # Nobody halted trading: no operator's state change in the run.
    changes = _rows("risk_events", noisy["run_id"])
    assert not [c for c in changes if c.get("reason") == "operator_halt"]

    # The daily report of the day the alert fired lists its incident.
    first = min(incidents, key=lambda i: i["detail"]["market_ts"])
    days = [
        json.loads(ok("report", "--day", str(d), "--run", noisy["run_id"], "--json").stdout)
        for d in (1, 2)
    ]
    listed = [i["incident_id"] for d in days for i in d["incidents"]]
    assert sorted(listed) == sorted(i["incident_id"] for i in incidents)
    assert first["incident_id"] in listed
