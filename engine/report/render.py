"""A report as Markdown, HTML (charts inlined) or JSON, from the Jinja2 templates.

The templates are `templates/report.md.j2` and `templates/report.html.j2`,
installed with the package as `claire_templates`; the JSON is the report's body
with every value made plain (`engine.plain`).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.plain import plain
from engine.report.content import Report

FORMATS = ("md", "html", "json")


def _pct(value: Decimal | None, places: int = 2) -> str:
    return "-" if value is None else f"{value * 100:.{places}f} %"


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:,.8f}"


def _num(value: Decimal | float | int | None, places: int = 2) -> str:
    if value is None:
        return "-"
    if places > 6:
        return f"{Decimal(value):.{places}g}"
    return f"{Decimal(value):,.{places}f}"


def _dt(value: datetime | None, seconds: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:%Y-%m-%d %H:%M{':%S' if seconds else ''}} UTC"


def _dur(seconds: int | None) -> str:
    if not seconds:
        return "0 s"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else ""]
    parts += [f"{minutes} min" if minutes else "", f"{secs} s" if secs and not days else ""]
    return " ".join(p for p in parts if p)


def _sign(value: Decimal | None) -> str:
    if value is None or value == 0:
        return ""
    return "pos" if value > 0 else "neg"


def _md(text: Any) -> str:
    """Text that stays in one Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _pairs(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items()) or "none"


def _counts(values: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items()) or "none"


def _limit(value: Decimal, name: str) -> str:
    """A limit's value as its setting reads: shares as percent, counts and seconds whole."""
    return _pct(value) if name.endswith("_PCT") else f"{value:.0f}"


@cache
def environment() -> Any:
    import importlib

    import jinja2

    templates: Any = importlib.import_module("claire_templates")  # installed from templates/
    folder = Path(templates.__file__).parent
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(
        pct=_pct,
        money=_money,
        num=_num,
        dt=_dt,
        dur=_dur,
        sign=_sign,
        md=_md,
        limit=_limit,
        pairs=_pairs,
        counts=_counts,
    )
    return env


def title(report: Report) -> str:
    body = report.body
    if body["kind"] == "day":
        return (
            f"Daily report: day {body['day']} ({body['window_start']:%Y-%m-%d}), {body['run_id']}"
        )
    return f"Final report: {body['run_id']}"


def to_markdown(report: Report) -> str:
    template = environment().get_template("report.md.j2")
    text: str = template.render(r=report.body, title=title(report), generated=report.generated_at)
    return text


def to_html(report: Report) -> str:
    from engine.report.charts import charts

    images = charts(report.series, report.body["quote_currency"], report.kind == "final")
    template = environment().get_template("report.html.j2")
    html: str = template.render(
        r=report.body, title=title(report), charts=images, generated=report.generated_at
    )
    return html


def to_json(report: Report) -> str:
    return json.dumps(plain(report.body), indent=2) + "\n"


def render(report: Report, fmt: str) -> str:
    if fmt == "md":
        return to_markdown(report)
    if fmt == "html":
        return to_html(report)
    if fmt == "json":
        return to_json(report)
    raise ConfigError(f"report format {fmt!r} is not one of {', '.join(FORMATS)}.")
