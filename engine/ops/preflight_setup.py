"""The preflight as a run starts it: its context from the run's words, and the result
the run keeps (checked now, handed over by the command that detached it, or a note
that it was skipped)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from engine.config import Settings, load_settings
from engine.errors import ClaireError, ConfigError
from engine.feeds.replay import PerpetualFiles
from engine.home.folder import resolve_data_dir
from engine.ops.detach import load_preflight
from engine.ops.preflight import (
    ExchangeSource,
    PreflightContext,
    PreflightReport,
    ReplaySource,
    check_ignored,
    run_preflight,
)
from engine.runtime import default_data_dir


def preflight_context(
    data_dir: Path | str | None,
    replay: Sequence[Path] | None,
    exchange: str | None,
    symbols: str | None,
    market: str,
    days: float | None,
    *,
    settings: Settings | None = None,
    hold: ExitStack | None = None,
    resuming: bool = False,
    perpetual: PerpetualFiles | None = None,
) -> PreflightContext:
    """The checks' context; settings that do not load are the first check's finding."""
    error = None
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            error = str(exc)
    folder = (
        resolve_data_dir(data_dir, settings) if settings is not None else default_data_dir(data_dir)
    )
    source: ReplaySource | ExchangeSource | None = None
    if replay:
        source = ReplaySource(tuple(replay), days, perpetual)
    elif exchange:
        from engine.feeds.exchange.settings import live_feed_settings

        source = ExchangeSource(live_feed_settings(exchange, market, symbols, "none"))
    return PreflightContext(
        settings, folder, source, settings_error=error, hold=hold, resuming=resuming
    )


def warnings_of(report: PreflightReport) -> list[str]:
    """The warnings of a go, one line each, for a run that starts anyway."""
    out = []
    for c in report.checks:
        if c.status.value == "warn" or (c.ignored and c.status.value in ("fail", "crashed")):
            fix = f"; {c.fix}" if c.fix else ""
            out.append(f"preflight {c.name}: {c.value}{fix}")
    return out


def preflight_for_run(
    ctx: PreflightContext,
    ignore: Sequence[str],
    *,
    skip: bool = False,
    given: Path | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The preflight result a run keeps; a no-go stops the start with its reasons."""
    if given is not None:
        return load_preflight(given)
    if skip:
        return {"skipped": True}
    report = run_preflight(ctx, check_ignored(ignore))
    if not report.go:
        raise ClaireError(report.no_go())
    for warning in warnings_of(report):
        if on_warning is not None:
            on_warning(warning)
    return report.as_json()


__all__ = ["preflight_context", "preflight_for_run", "warnings_of"]
