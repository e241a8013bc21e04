"""`claire web` in a real browser (Debian's chromium) beside a paced replay: the nine
panels drawn with data, no console error, the equity `claire status` reports, and
updates as the run goes on without a reload; the services of a run as services."""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.runtime.files import free_port
from engine.runtime.pidfile import running_server
from engine.services.host import SERVICES
from tests.cli.support import invoke, ok, ok_json
from tests.paperrun.runs import claire_process, replay_args
from tests.web.support import web_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PANELS = (
    "equity_curve", "daily_drawdown", "exposure", "open_positions", "total_pnl",
    "trades_per_day", "win_rate", "recent_trades", "daily_pnl",
)  # fmt: skip
TOKEN = "web-view-token-for-the-browser-test"


def open_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(url)
    return page, problems


def wait_js(page: Any, expression: str, timeout_s: float = 30) -> None:
    """Until `expression` is true in the page (polled: the page's CSP forbids the eval
    that Playwright's own wait_for_function needs)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(100)


def panels_ready(page: Any) -> None:
    names = json.dumps(list(PANELS))
    wait_js(
        page,
        f"{names}.every(n => (document.querySelector('[data-panel=\"' + n + '\"]') || {{}})"
        ".dataset?.ready === '1')",
    )


def page_equity(page: Any) -> str:
    return str(page.get_attribute("#equity", "data-value"))


def status_equity() -> str:
    return str(json.loads(invoke("status", "--json").stdout)["equity"])


def test_the_page_shows_a_paced_replay_as_it_runs(
    four_symbols: list[Path], browser: Any, artifacts: Path, claire_home: Path
) -> None:
    started = ok_json(*replay_args(four_symbols, "--speed", "3600x", "--detach"))
    try:
        with web_server() as url:
            page, problems = open_page(browser, url)
            panels_ready(page)
            assert page.inner_text("#run-id") == started["run_id"]
            assert page.inner_text("#trading-state") in ("ACTIVE", "REDUCING", "HALTED")
            assert "replay" in page.inner_text("#data-source")
            # Each panel drew its data: three charts, 50 fills at most, four figures.
            assert page.locator(".uplot").count() == 3
            assert 0 < page.locator("#fills tbody tr").count() <= 50
            assert page.locator("#processes tbody tr").count() >= 2  # the run and postgres
            # The equity on the page is what `claire status` says, for the same snapshot.
            for _ in range(40):
                before, told, after = page_equity(page), status_equity(), page_equity(page)
                if before == told == after:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError(f"page {before}/{after} never matched status {told}")
            # Status and panels are read at one moment: the PnL is that equity's.
            equity, pnl = page.evaluate(
                "['equity', 'total-pnl'].map(id => document.getElementById(id).dataset.value)"
            )
            assert math.isclose(float(equity) - 10, float(pnl), abs_tol=1e-9)
            # It moves on as the run does, without a reload.
            page.evaluate("window.stillThisPage = true")
            seq = int(page.get_attribute("body", "data-seq") or 0)
            market = page.inner_text("#market-time")
            points = page.evaluate("document.querySelectorAll('.uplot').length")
            wait_js(page, f"Number(document.body.dataset.seq) > {seq} + 2", 20)
            assert page.inner_text("#market-time") != market
            assert page.evaluate("window.stillThisPage") is True
            assert page.evaluate("document.querySelectorAll('.uplot').length") == points
            assert page.inner_text("#connection") == "live"
            page.screenshot(path=str(artifacts / "web-view.png"), full_page=True)
            assert problems == []
            page.close()

        # Off 127.0.0.1 with a token: nothing without it.
        env = {"CLAIRE_WEB_TOKEN": TOKEN}
        with web_server("--host", "0.0.0.0", env=env) as url:
            assert httpx.get(url + "/", timeout=5).status_code == 401
            assert httpx.get(url + "/api/view", timeout=5).status_code == 401
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            view = httpx.get(url + "/api/view", headers=bearer, timeout=10)
            assert view.status_code == 200 and view.json()["status"]["run_id"] == started["run_id"]
            assert TOKEN not in view.text
    finally:
        ok("papertest", "stop", "--reason", "end of the web view test")
    # A finished run: the same view, as it ended.
    with web_server() as url:
        view = httpx.get(url + "/api/view", timeout=30).json()
        assert view["status"]["run_id"] == started["run_id"]
        assert view["status"]["status"] == "stopped"
        assert view["panels"]["recent_trades"] and view["panels"]["equity_curve"]
    # Stopped by SIGTERM, it closed the database: the server it started is stopped too.
    assert running_server(claire_home / "postgres") is None


@pytest.mark.services
def test_the_page_shows_each_service_of_a_run_as_services(
    four_symbols: list[Path], browser: Any, artifacts: Path
) -> None:
    base = free_port() + 100 if free_port() < 60000 else 18300
    env = {"CLAIRE_SERVICE_PORT_BASE": str(base)}
    args = replay_args(four_symbols, "--services", "--speed", "3600x", "--json")
    child = claire_process(args, env)
    try:
        deadline = time.monotonic() + 120
        while json.loads(invoke("status", "--json").stdout).get("run_id") is None:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the services run did not start"
            time.sleep(0.5)
        with web_server(env=env) as url:
            page, problems = open_page(browser, url)
            deadline = time.monotonic() + 120
            while page.locator("#processes tr[data-service]").count() < len(SERVICES):
                assert child.poll() is None, child.communicate()
                assert time.monotonic() < deadline, page.inner_text("#processes")
                page.wait_for_timeout(250)
            panels_ready(page)
            wait_js(
                page,
                "[...document.querySelectorAll('#processes tr[data-service]')]"
                ".every(r => r.children[1].textContent === 'healthy')",
                60,
            )
            rows = page.locator("#processes tr[data-service]")
            names = [rows.nth(i).get_attribute("data-service") for i in range(rows.count())]
            assert names == list(SERVICES)
            assert page.text_content("#health-title") == "Services"
            lags = [rows.nth(i).locator("td").nth(4).inner_text() for i in range(rows.count())]
            assert all(lag.isdigit() for lag in lags), lags
            page.screenshot(path=str(artifacts / "web-view-services.png"), full_page=True)
            assert problems == []
            page.close()
    finally:
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=120)
