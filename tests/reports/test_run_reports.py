"""A 7-day replay writes seven daily reports and a final one, with charts, and every
figure of the final report matches what the exported trades and snapshots add up to."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import os
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.config import Settings
from tests.cli.support import ok

pytestmark = pytest.mark.integration
D = Decimal
SETTINGS = {name.upper() for name in Settings.model_fields}
PNG = re.compile(r'<img class="chart" alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def run(four_symbols: list[Path]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """One 7-day accelerated replay of the shipped data, as `python3 tasks.py run` does it."""
    home = Path(tempfile.mkdtemp(prefix="claire-reports-"))
    os.chmod(home, 0o711)
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if (name.startswith("CLAIRE_") and name != "CLAIRE_SHARED_DATA") or name in SETTINGS:
                env.delenv(name)
        env.setenv("CLAIRE_HOME", str(home))
        args = ["papertest", "start", "--days", "7", "--speed", "max", "--capital", "10"]
        for path in four_symbols:
            args += ["--replay", str(path)]
        summary = json.loads(ok(*args, "--reports", "--json").stdout)
        yield home, summary
    shutil.rmtree(home, ignore_errors=True)


def _export(home: Path, kind: str) -> list[dict[str, str]]:
    text = ok("export", kind, "--data-dir", str(home)).stdout
    return list(csv.DictReader(io.StringIO(text)))


def test_seven_daily_reports_and_a_final_one_in_markdown_and_html(run: Any) -> None:
    home, summary = run
    folder = home / "reports" / summary["run_id"]
    names = sorted(p.name for p in folder.iterdir())
    days = [f"day-{d:02d}" for d in range(1, 8)]
    for stem in [*days, "final"]:
        for suffix in ("md", "html", "json"):
            assert f"{stem}.{suffix}" in names
    assert not [n for n in names if n.startswith("day-08") or n.endswith(".tmp")]
    day3 = (folder / "day-03.md").read_text()
    assert day3.startswith("# Daily report: day 3 (2018-01-12)")
    assert "2018-01-12 00:00 UTC -> 2018-01-13 00:00 UTC" in day3
    assert "## Risk compliance" in day3 and "| MAX_TOTAL_EXPOSURE_PCT | 30.00 % |" in day3
    final = json.loads((folder / "final.json").read_text())
    assert final["kind"] == "final" and final["equity"] == summary["equity"]
    assert json.loads((folder / "day-07.json").read_text())["day"] == 7


def _images(html: str) -> dict[str, bytes]:
    return {alt: base64.b64decode(data) for alt, data in PNG.findall(html)}


def test_html_reports_inline_charts_that_show_something(run: Any) -> None:
    from matplotlib.image import imread

    home, summary = run
    folder = home / "reports" / summary["run_id"]
    daily = _images((folder / "day-02.html").read_text())
    assert set(daily) == {"equity curve", "drawdown", "exposure", "PnL per UTC day"}
    final = _images((folder / "final.html").read_text())
    assert set(final) == {*daily, "net PnL per symbol"}
    for name, png in {**daily, **final}.items():
        assert png.startswith(b"\x89PNG\r\n\x1a\n"), name
        pixels = imread(io.BytesIO(png))
        assert pixels.shape[0] > 100 and pixels.shape[1] > 300, name
        assert pixels[..., :3].std() > 0.05, f"{name} is blank"
    html = (folder / "final.html").read_text()
    assert "http://" not in html and "https://" not in html  # readable offline: no CDN


def _trips(trades: list[dict[str, str]]) -> list[Decimal]:
    """Net PnL of each position from flat back to flat, by cash flow: sells minus buys, fees."""
    position: dict[str, Decimal] = defaultdict(Decimal)
    flow: dict[str, Decimal] = defaultdict(Decimal)
    out = []
    for t in trades:
        qty, price, fee = D(t["qty"]), D(t["price"]), D(t["fee"])
        sign = 1 if t["side"] == "buy" else -1
        position[t["symbol"]] += sign * qty
        flow[t["symbol"]] += -sign * qty * price - fee
        if position[t["symbol"]] == 0:
            out.append(flow.pop(t["symbol"]))
    return out


def test_final_figures_match_a_recomputation_from_the_exports(run: Any) -> None:
    home, summary = run
    report = json.loads(ok("report", "--final", "--json", "--data-dir", str(home)).stdout)
    trades = _export(home, "trades")
    snapshots = _export(home, "snapshots")
    initial = D("10")

    # PnL: cash flows of every fill plus the open positions at their last marks.
    last_id = snapshots[-1]["snapshot_id"]
    positions = [p for p in _export(home, "positions") if p["snapshot_id"] == last_id]
    held: dict[str, Decimal] = defaultdict(Decimal)
    cash = initial
    for t in trades:
        sign = 1 if t["side"] == "buy" else -1
        held[t["symbol"]] += sign * D(t["qty"])
        cash -= sign * D(t["qty"]) * D(t["price"]) + D(t["fee"])
    marks = {p["symbol"]: D(p["mark_price"]) for p in positions}
    equity = cash + sum((q * marks[s] for s, q in held.items() if q), D(0))
    assert abs(D(report["total_pnl"]) - (equity - initial)) < D("1e-12")
    assert D(report["fees"]) == sum((D(t["fee"]) for t in trades), D(0))
    assert report["fills"] == len(trades)

    # Win rate and profit factor from round trips rebuilt from the fills.
    trips = _trips(trades)
    wins = [p for p in trips if p > 0]
    losses = [p for p in trips if p <= 0]
    assert report["round_trips"] == len(trips) and report["wins"] == len(wins)
    assert D(report["win_rate_frac"]) == D(len(wins)) / len(trips)
    factor = float(sum(wins, D(0)) / -sum(losses, D(0)))
    assert math.isclose(float(report["profit_factor"]), factor, rel_tol=1e-12)

    # Max drawdown from the snapshots' equity, the peak starting at the initial capital.
    peak, deepest = float(initial), 0.0
    for s in snapshots:
        peak = max(peak, float(s["equity"]))
        deepest = max(deepest, (peak - float(s["equity"])) / peak)
    assert math.isclose(float(report["max_drawdown_frac"]), deepest, rel_tol=1e-9)
    assert D(report["max_drawdown_frac"]) == D(summary["max_drawdown_frac"])

    # Sharpe of daily returns (each UTC day's last equity), 365 periods a year.
    ends: dict[str, float] = {}
    for s in snapshots:
        ends[s["ts"][:10]] = float(s["equity"])
    previous, daily = float(initial), []
    for value in ends.values():
        daily.append(value / previous - 1)
        previous = value
    mean = sum(daily) / len(daily)
    sd = math.sqrt(sum((r - mean) ** 2 for r in daily) / (len(daily) - 1))
    assert len(daily) == 8  # the window starts at 04:55 on day 1 and ends at 04:55 on day 8
    assert math.isclose(float(report["sharpe"]), mean / sd * math.sqrt(365), rel_tol=1e-9)
    assert "365" in report["annualisation"]


def test_report_of_one_day_on_demand_in_every_format(run: Any, tmp_path: Path) -> None:
    home, _ = run
    out = tmp_path / "day3.html"
    ok("report", "--day", "3", "--format", "html", "--out", str(out), "--data-dir", str(home))
    assert len(_images(out.read_text())) == 4
    day = json.loads(ok("report", "--day", "3", "--json", "--data-dir", str(home)).stdout)
    assert day["window_start"] == "2018-01-12T00:00:00Z" and day["day"] == 3
    trades = [t for t in _export(home, "trades") if t["ts"].startswith("2018-01-12")]
    assert day["fills"] == len(trades)
    assert D(day["fees"]) == sum((D(t["fee"]) for t in trades), D(0))
    spread = sum(
        (D(t["qty"]) * D(t["requested_price"]) * D(t["spread_bps"]) / 10000 for t in trades),
        D(0),
    )
    assert D(day["spread_paid"]) == spread
