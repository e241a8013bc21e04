"""The Prometheus alert rules are the engine's alarm table: same rules, thresholds,
hold times and severities, over metrics the services really export."""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from typing import Any

import pytest

from engine.alerts.rules import rules
from engine.config import load_settings
from engine.services.host import SERVICES
from tests.monitoring.support import (
    ALERT_RULES,
    ALERT_RULES_TEST,
    SCRAPE_SERIES,
    exported,
    load_yaml,
    promql_metrics,
)

RUNBOOK = {
    "daily_drawdown_high",
    "exposure_high",
    "open_positions_high",
    "no_signals",
    "service_down",
    "memory_high",
}
_DURATION = re.compile(r"^(\d+)([smh])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600}
_COMPARISON = re.compile(r"(>|==)\s*([0-9.]+)\s*$")


def _rules() -> dict[str, dict[str, Any]]:
    body = load_yaml(ALERT_RULES)
    found = {}
    for group in body["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] not in found, f"{rule['alert']} twice"
            found[rule["alert"]] = rule
    return found


def _seconds(text: str) -> int:
    match = _DURATION.match(text)
    assert match, f"unreadable duration {text!r}"
    return int(match.group(1)) * _SECONDS[match.group(2)]


def test_every_runbook_alarm_is_a_rule_with_the_engines_threshold_hold_and_severity() -> None:
    engine = rules(load_settings())
    ours = _rules()
    assert set(ours) == RUNBOOK
    for name, rule in ours.items():
        match = _COMPARISON.search(rule["expr"])
        assert match, f"{name}: no threshold in {rule['expr']!r}"
        operator, value = match.groups()
        if name == "service_down":  # a scrape that fails, held for the engine's 30 s
            assert (operator, value) == ("==", "0")
            assert rule["expr"].startswith("up{")
        else:
            assert operator == ">" and Decimal(value) == engine[name].threshold, name
        assert _seconds(rule["for"]) == engine[name].for_s, name
        assert rule["labels"]["severity"] == engine[name].severity.value, name


def test_the_thresholds_are_the_runbooks_numbers() -> None:
    exprs = {name: rule["expr"] for name, rule in _rules().items()}
    assert exprs["daily_drawdown_high"].endswith("> 0.045")
    assert exprs["exposure_high"].endswith("> 0.28")
    assert exprs["open_positions_high"].endswith("> 2")
    assert exprs["no_signals"].endswith("> 3600")
    assert exprs["memory_high"].endswith("> 0.90")
    assert _rules()["service_down"]["for"] == "30s"


def test_every_rule_has_a_hold_time_a_severity_and_a_summary() -> None:
    for name, rule in _rules().items():
        assert set(rule) >= {"alert", "expr", "for", "labels", "annotations"}, name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"].strip(), name


def test_every_expression_reads_metrics_one_service_exports_together() -> None:
    services = exported()
    for name, rule in _rules().items():
        wanted = promql_metrics(rule["expr"])
        assert wanted, name
        if wanted <= SCRAPE_SERIES:
            assert 'job="claire"' in rule["expr"], name  # only the engine's targets
            continue
        # A binary operation matches series of one target: one service has them all.
        assert [s for s, names in services.items() if wanted <= names], (name, sorted(wanted))


def test_the_rules_read_the_metrics_of_the_right_services() -> None:
    services = exported()

    def exporters(metric: str) -> set[str]:
        return {s for s, names in services.items() if metric in names} - {"papertest"}

    assert exporters("claire_daily_drawdown_frac") == {"portfolio"}
    assert exporters("claire_exposure_frac") == {"portfolio"}
    assert exporters("claire_open_positions") == {"portfolio"}
    assert exporters("claire_last_signal_timestamp_seconds") == {"signal"}
    every = set(SERVICES)
    assert exporters("process_resident_memory_bytes") == every
    assert exporters("claire_memory_limit_bytes") == every


def test_the_metric_name_reader_sees_metrics_not_functions_or_labels() -> None:
    expr = 'sum by (service) (rate(claire_fills_total{symbol="ETHBTC"}[5m])) / on(job) up > 1'
    assert promql_metrics(expr) == {"claire_fills_total", "up"}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    checked = subprocess.run(
        ["promtool", "check", "rules", str(ALERT_RULES)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    tested = subprocess.run(
        ["promtool", "test", "rules", str(ALERT_RULES_TEST)], capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
