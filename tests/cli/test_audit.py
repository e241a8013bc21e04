"""`claire audit fills`: a run's fill realism from the database, as a table or JSON."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.cli.support import ETH, LTC, invoke, ok, one_line, replay

pytestmark = pytest.mark.integration
D = Decimal


def test_audit_fills_re_derives_a_stored_run(claire_home: Path) -> None:
    ok(*replay(ETH, LTC, days="2"))
    body = json.loads(ok("audit", "fills", "--json").stdout)
    assert body["fills"] > 10 and body["taker_fills"] == body["fills"]
    for figure in ("outside_bar", "before_arrival", "under_half_spread", "maker_over_cap"):
        assert body[figure] == 0, figure
    assert body["freeze_violations"] == 0 and body["holds"] is True
    assert body["latency_ms"] == 200 and D(body["participation_cap"]) == D("0.1")
    first = [c for c in body["costs"] if c["fills"] == "first"]
    assert {c["side"] for c in first} == {"buy", "sell"}
    assert all(D(c["mean_vs_decision"]) > 0 for c in first)
    # The same run named by its id; the table says the same; --check passes.
    same = json.loads(ok("audit", "fills", "--run", body["run_id"], "--json").stdout)
    assert same == body
    table = ok("audit", "fills", "--check").stdout
    assert "priced before their order arrived" in table
    assert "paper was nowhere kinder than the market" in table
    # The final report carries the same figures.
    report = json.loads(ok("report", "--json").stdout)
    assert report["fill_realism"] == {k: v for k, v in body.items() if k != "run_id"}


def test_audit_fills_errors_are_one_sentence(claire_home: Path) -> None:
    result = invoke("audit", "fills")
    assert result.exit_code == 1
    assert "no Claire data in" in one_line(result.output)
    ok(*replay(ETH, days="0.5"))
    result = invoke("audit", "fills", "--run", "run-nope")
    assert result.exit_code == 1
    assert "no run run-nope in" in one_line(result.output)
