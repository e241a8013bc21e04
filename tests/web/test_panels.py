"""The web view's panels and the Grafana dashboard's are the same SQL."""

from __future__ import annotations

import re

from engine.web.panels import PANELS, expand, grafana_sql, panel_queries, panel_titles
from tests.monitoring.support import dashboard, panels


def _words(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip().rstrip(";").strip()


def test_every_sql_panel_of_the_dashboard_is_in_panels_sql_word_for_word() -> None:
    on_dashboard = {
        p["title"]: p["targets"][0]["rawSql"]
        for p in panels(dashboard())
        if p.get("targets") and "rawSql" in p["targets"][0]
    }
    titles = panel_titles()
    assert sorted(titles) == sorted(PANELS) == sorted(grafana_sql())
    assert sorted(titles.values()) == sorted(on_dashboard)
    for name, title in titles.items():
        assert _words(grafana_sql()[name]) == _words(on_dashboard[title]), title


def test_grafanas_dialect_becomes_bound_parameters() -> None:
    for name, sql in panel_queries().items():
        assert "$" not in sql, name
        assert "%(run_id)s" in sql, name
    assert expand("WHERE run_id = '$run' AND $__timeFilter(ts)") == (
        "WHERE run_id = %(run_id)s AND ts BETWEEN %(time_from)s::timestamptz "
        "AND %(time_to)s::timestamptz"
    )
