"""Prometheus scrapes every service of the stack at its container and port."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from engine.services.host import PORTS, SERVICES
from tests.monitoring.support import ALERT_RULES, PROMETHEUS_CONFIG, load_yaml

# The containers of compose/docker-compose.yml, by service.
CONTAINERS = {
    "feed": "cdb_ws",
    "signal": "cdb_core",
    "risk": "cdb_risk",
    "execution": "cdb_execution",
    "portfolio": "cdb_portfolio",
    "writer": "cdb_db_writer",
    "alerts": "cdb_alerts",
}


def test_every_service_container_is_scraped_at_its_port_with_its_name() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    [job] = config["scrape_configs"]
    assert job["job_name"] == "claire" and job.get("metrics_path", "/metrics") == "/metrics"
    scraped = {
        target: group["labels"]["service"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    expected = {f"{CONTAINERS[name]}:{PORTS[name]}": name for name in SERVICES}
    assert scraped == expected


def test_the_rules_are_loaded_from_where_the_stack_mounts_them() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    # Scraped and evaluated often enough for the 30 s service-down rule.
    for key in ("scrape_interval", "evaluation_interval"):
        assert config["global"][key] in {"5s", "10s", "15s"}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_configuration(tmp_path: Path) -> None:
    shutil.copy(ALERT_RULES, tmp_path / "alerts.yml")
    text = PROMETHEUS_CONFIG.read_text().replace("/etc/prometheus/alerts.yml", "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(text)
    checked = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
