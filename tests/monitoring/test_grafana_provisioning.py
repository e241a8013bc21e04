"""Grafana's provisioning: the data sources, the dashboard provider and the dashboard
with the runbook's nine panels, every query on a provisioned data source."""

from __future__ import annotations

import shutil
import subprocess
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.support import (
    DASHBOARD_PROVIDERS,
    DATASOURCES,
    SCRAPE_SERIES,
    dashboard,
    exported,
    load_yaml,
    panels,
    promql_metrics,
)

RUNBOOK_PANELS = {
    "Equity curve": "timeseries",
    "Daily drawdown": "gauge",
    "Exposure": "gauge",
    "Open positions": "stat",
    "Total PnL": "stat",
    "Trades per day": "timeseries",
    "Win rate": "gauge",
    "Recent trades": "table",
    "Daily PnL": "barchart",
}


def _datasources() -> dict[str, dict[str, Any]]:
    body = load_yaml(DATASOURCES)
    assert body["apiVersion"] == 1
    return {ds["uid"]: ds for ds in body["datasources"]}


def _by_title() -> dict[str, dict[str, Any]]:
    return {p["title"]: p for p in panels(dashboard())}


def _steps(panel: dict[str, Any]) -> list[float | None]:
    return [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


def test_postgres_and_prometheus_are_provisioned_with_fixed_uids() -> None:
    sources = _datasources()
    assert set(sources) == {"claire-postgres", "claire-prometheus"}
    pg = sources["claire-postgres"]
    assert pg["type"] == "grafana-postgresql-datasource"
    assert pg["url"] == "cdb_postgres:5432" and pg["user"] == "claire"
    assert pg["jsonData"]["database"] == "claire"
    # The password comes from the container's environment, never from the file.
    assert pg["secureJsonData"] == {"password": "$POSTGRES_PASSWORD"}
    prom = sources["claire-prometheus"]
    assert prom["type"] == "prometheus" and prom["url"] == "http://cdb_prometheus:9090"
    assert sum(bool(ds.get("isDefault")) for ds in sources.values()) == 1


def test_the_dashboard_provider_reads_the_mounted_folder() -> None:
    body = load_yaml(DASHBOARD_PROVIDERS)
    assert body["apiVersion"] == 1
    [provider] = body["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_dashboard_has_the_runbooks_nine_panels() -> None:
    body = dashboard()
    assert body["title"] == "Claire Paper-Trading" and body["uid"]
    assert 36 <= body["schemaVersion"] <= 41
    shown = {p["title"]: p["type"] for p in panels(body)}
    assert {t: shown.get(t) for t in RUNBOOK_PANELS} == RUNBOOK_PANELS


def test_every_panel_and_query_uses_a_provisioned_data_source() -> None:
    sources = _datasources()
    body = dashboard()
    refs = [(p["title"], p["datasource"]) for p in panels(body)]
    refs += [(p["title"], t["datasource"]) for p in panels(body) for t in p["targets"]]
    refs += [(v["name"], v["datasource"]) for v in body["templating"]["list"]]
    for where, ref in refs:
        assert ref["uid"] in sources, where
        assert ref["type"] == sources[ref["uid"]]["type"], where


def test_every_panel_is_complete_and_none_overlaps() -> None:
    shown = panels(dashboard())
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in shown:
        assert panel["targets"] and "defaults" in panel["fieldConfig"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
    for a, b in combinations(dashboard()["panels"], 2):
        ga, gb = a["gridPos"], b["gridPos"]
        apart = (
            ga["x"] + ga["w"] <= gb["x"]
            or gb["x"] + gb["w"] <= ga["x"]
            or ga["y"] + ga["h"] <= gb["y"]
            or gb["y"] + gb["h"] <= ga["y"]
        )
        assert apart, (a["title"], b["title"])


def test_gauges_carry_the_runbooks_thresholds() -> None:
    by_title = _by_title()
    assert _steps(by_title["Daily drawdown"]) == [None, 0.03, 0.045]
    assert _steps(by_title["Exposure"]) == [None, 0.2, 0.28]
    assert _steps(by_title["Win rate"]) == [None, 0.45, 0.55]
    for title in ("Daily drawdown", "Exposure", "Win rate"):
        assert by_title[title]["fieldConfig"]["defaults"]["unit"] == "percentunit"
    # Colour-coded PnL: red below zero, green from zero.
    for title in ("Total PnL", "Daily PnL"):
        steps = by_title[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [(s["color"], s["value"]) for s in steps] == [("red", None), ("green", 0)]


def test_the_run_is_a_variable_every_sql_query_filters_on() -> None:
    [variable] = dashboard()["templating"]["list"]
    assert variable["name"] == "run" and "FROM runs" in variable["query"]
    for panel in panels(dashboard()):
        for target in panel["targets"]:
            if "rawSql" in target:
                assert "run_id = '$run'" in target["rawSql"], panel["title"]


def test_every_promql_panel_reads_metrics_the_services_export() -> None:
    services = exported()
    queries = [
        (p["title"], t["expr"]) for p in panels(dashboard()) for t in p["targets"] if "expr" in t
    ]
    assert queries
    for title, expr in queries:
        wanted = promql_metrics(expr) - SCRAPE_SERIES
        if not wanted:
            assert 'job="claire"' in expr, title
            continue
        assert [s for s, names in services.items() if wanted <= names], (title, sorted(wanted))


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_parses_every_promql_panel(tmp_path: Path) -> None:
    exprs = [t["expr"] for p in panels(dashboard()) for t in p["targets"] if "expr" in t]
    recording = [{"record": f"claire:panel_{n}", "expr": e} for n, e in enumerate(exprs)]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": recording}]}))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in checked.stdout
