"""The monitoring files (Prometheus and Grafana) as data, and the metrics the services export."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from engine.services.host import SERVICES, service_metrics
from engine.services.http import HealthServer
from engine.services.run_metrics import RunMetrics

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose"
PROMETHEUS_CONFIG = COMPOSE / "prometheus" / "prometheus.yml"
ALERT_RULES = COMPOSE / "prometheus" / "alerts.yml"
ALERT_RULES_TEST = Path(__file__).with_name("alerts_test.yml")
DATASOURCES = COMPOSE / "grafana" / "provisioning" / "datasources" / "datasources.yml"
DASHBOARD_PROVIDERS = COMPOSE / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
DASHBOARD = COMPOSE / "grafana" / "dashboards" / "claire-paper-trading.json"

# What Prometheus itself adds to every target.
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

# The name of each sample series Prometheus stores for a metric family of a type.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "untyped": ("",),
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def dashboard() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return body


def panels(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that shows data (rows only group them)."""
    found: list[dict[str, Any]] = []
    for panel in body["panels"]:
        if panel["type"] == "row":
            found += panel.get("panels", [])
        else:
            found.append(panel)
    return found


def _series(text: str) -> frozenset[str]:
    """The series names Prometheus stores from one scrape's text."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in _SUFFIXES[family.type]}
        names |= {sample.name for sample in family.samples}
    return frozenset(names)


@cache
def exported() -> dict[str, frozenset[str]]:
    """Series names per service of a multi-process run, and of a single-process run,
    scraped over HTTP from the registries the services build."""
    registries: dict[str, CollectorRegistry] = {
        name: service_metrics(name, "run-x").registry for name in SERVICES
    }
    registries["papertest"] = RunMetrics("run-x").registry
    server = HealthServer("scrape", 0, CollectorRegistry(), {}, lambda: {})
    server.start()
    out = {}
    try:
        for name, registry in registries.items():
            server.registry = registry  # what the next /metrics serves
            text = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5).text
            out[name] = _series(text)
    finally:
        server.stop()
    return out


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGES = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                       "group_left", "group_right", "inf", "nan"})  # fmt: skip


def promql_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not its functions or labels)."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _GROUPING.sub("", text)
    text = _RANGES.sub("", text)
    return {m for m in _IDENTIFIER.findall(text) if m.lower() not in _KEYWORDS}
