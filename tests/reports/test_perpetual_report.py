"""A perpetual-futures run's report shows funding paid and received, liquidations and margin."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from engine.events import Event, FundingPayment, FundingSettlement, Liquidation, MarkPrice
from engine.report.content import build_report
from engine.report.render import render
from engine.store import EventWriter, Store
from tests.perp.test_paper_perpetuals import T0, bar, of, run
from tests.store.conftest import db_url, pg_admin, pg_server, store, template_db  # noqa: F401

pytestmark = pytest.mark.integration
D = Decimal


def test_funding_liquidations_and_margin_usage_are_in_the_report(store: Store) -> None:  # noqa: F811
    events: list[Event] = [bar(0, "1", "1", "1", "1"), bar(1, "1", "1", "1", "1")]
    settle = T0 + timedelta(hours=2)
    events += [FundingSettlement("f-2", settle, None, "XRPUSDT", D("0.0001"))]
    events += [MarkPrice("m-1", T0 + timedelta(hours=2, minutes=30), None, "XRPUSDT", D("0.97"))]
    events += [MarkPrice("m-2", T0 + timedelta(hours=2, minutes=40), None, "XRPUSDT", D("0.90"))]
    events += [bar(2, "1", "1", "0.9", "0.9"), bar(3, "0.9", "0.9", "0.9", "0.9")]
    seen = run({0: "buy"}, events, leverage="20", max_leverage="20")
    [payment] = of(seen, FundingPayment)
    [liquidation] = of(seen, Liquidation)

    settings = {"initial_capital": "1000", "max_margin_usage_pct": "0.5", "leverage": "20"}
    config = {"settings": settings, "window": {"start": T0.isoformat()}, "quote_currency": "USDT"}
    store.create_run("run-perp", config=config, data_source="replay: test", started_at=T0)
    EventWriter(store, "run-perp").write(seen)

    report = build_report(store, "run-perp")
    perp = report.body["perpetuals"]
    assert perp["funding_paid"] == payment.amount > 0 and perp["funding_received"] == 0
    assert perp["funding_payments"] == 1
    assert [row["liquidation_price"] for row in perp["liquidations"]] == [
        liquidation.liquidation_price
    ]
    margins = [e.margin_used / e.equity for e in seen if getattr(e, "margin_used", 0)]
    assert perp["max_margin_usage_frac"] == max(margins) > 0
    limits = {c["limit"]: c for c in report.body["risk_compliance"]}
    assert limits["MAX_MARGIN_USAGE_PCT"]["worst"] == max(margins)
    text = render(report, "md")
    assert "## Perpetual futures" in text and "liquidated at" in text
    assert "## Perpetual futures" in render(report, "html").replace("<h2>", "## ").replace(
        "</h2>", ""
    )
