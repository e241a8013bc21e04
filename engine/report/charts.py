"""The report's charts as PNG images inlined in HTML (data URIs): no network, no files.

matplotlib draws with its Agg backend, so no display is needed; each chart is its
own `Figure`, which is safe in any thread or worker process.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

from engine.report.content import Series

GREEN, RED, BLUE, GREY = "#2e7d32", "#c62828", "#1565c0", "#757575"


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(title: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=(10, 3.2))
    fig.subplots_adjust(left=0.08, right=0.98, top=0.88, bottom=0.22)
    ax = fig.add_subplot()
    ax.set_title(title, loc="left", fontsize=11)
    ax.grid(True, alpha=0.3)
    fig.autofmt_xdate()
    return fig, ax


def _line(
    points: Sequence[tuple[datetime, Decimal]], title: str, ylabel: str, scale: float = 1.0
) -> Figure:
    fig, ax = _figure(title)
    if points:
        ax.plot([t for t, _ in points], [float(v) * scale for _, v in points], color=BLUE, lw=1.2)
    else:
        ax.text(0.5, 0.5, "no data in this window", ha="center", transform=ax.transAxes)
    ax.set_ylabel(ylabel)
    return fig


def equity_chart(series: Series, quote: str) -> str:
    return _png(_line(series.equity, "Equity", quote))


def drawdown_chart(series: Series) -> str:
    fig, ax = _figure("Drawdown below the running peak")
    if series.drawdown:
        times = [t for t, _ in series.drawdown]
        values = [-float(v) * 100 for _, v in series.drawdown]
        ax.fill_between(times, values, 0, color=RED, alpha=0.35, step="post")
        ax.plot(times, values, color=RED, lw=1)
    ax.set_ylabel("%")
    return _png(fig)


def exposure_chart(series: Series) -> str:
    fig = _line(series.exposure, "Exposure (open notional over equity)", "%", 100.0)
    if series.exposure_limit is not None:
        ax = fig.axes[0]
        ax.axhline(float(series.exposure_limit) * 100, color=GREY, ls="--", lw=1, label="limit")
        ax.legend(loc="upper right", fontsize=8)
    return _png(fig)


def daily_pnl_chart(points: Sequence[tuple[date, Decimal]], quote: str) -> str:
    fig, ax = _figure("PnL per UTC day")
    labels = [d.isoformat() for d, _ in points]
    values = [float(v) for _, v in points]
    ax.bar(labels, values, color=[GREEN if v >= 0 else RED for v in values])
    ax.axhline(0, color=GREY, lw=0.8)
    ax.set_ylabel(quote)
    return _png(fig)


def symbol_pnl_chart(pnl: dict[str, Decimal], quote: str) -> str:
    fig, ax = _figure("Net PnL per symbol")
    names = list(pnl)
    values = [float(pnl[n]) for n in names]
    ax.bar(names, values, color=[GREEN if v >= 0 else RED for v in values])
    ax.axhline(0, color=GREY, lw=0.8)
    ax.set_ylabel(quote)
    return _png(fig)


def charts(series: Series, quote: str, final: bool) -> dict[str, str]:
    """Every chart of a report by name, as data URIs."""
    out = {
        "equity": equity_chart(series, quote),
        "drawdown": drawdown_chart(series),
        "exposure": exposure_chart(series),
        "daily_pnl": daily_pnl_chart(series.daily_pnl, quote),
    }
    if final:
        out["symbol_pnl"] = symbol_pnl_chart(series.pnl_by_symbol, quote)
    return out
