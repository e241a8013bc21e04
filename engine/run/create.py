"""A new run recorded: its id, configuration, window and data source, before it is
driven. The warnings of what looks wrong about it are said here, once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.feeds.replay import PerpetualFiles, ReplayPlan, log_rejected, plan_replay
from engine.kernel.pipeline import replay_end
from engine.kernel.recorded import new_run_id, perpetual_config, record_rejected
from engine.kernel.run_checks import entry_fraction, replay_warnings
from engine.run.context import RunContext
from engine.store import Store

if TYPE_CHECKING:
    from engine.feeds.exchange import FeedSettings

log = logging.getLogger("claire.run")


def create_replay_run(
    ctx: RunContext,
    store: Store,
    files: list[Path],
    days: float | None,
    speed: str,
    perpetual: PerpetualFiles | None,
    run_id: str | None = None,
    preflight: dict[str, Any] | None = None,
) -> tuple[str, ReplayPlan]:
    strategy = ctx.choice.strategy_class()  # fail before anything is created
    started = ctx.clock.now()
    plan = plan_replay(files, days, now=started, perpetual=perpetual)
    log_rejected(plan)
    settings = ctx.settings
    ctx.warn(
        replay_warnings(
            settings.initial_capital,
            "initial_capital" in settings.model_fields_set,
            entry_fraction(settings.position_size_pct, settings.max_position_pct),
            plan,
            strategy,
        )
    )
    run_id = run_id or new_run_id(started)
    config = {
        **ctx.config(settings, preflight),
        "replay": {
            "files": [str(Path(f).resolve()) for f in files],
            "days": days,
            "speed": speed,
            **perpetual_config(plan),
        },
        "quote_currency": plan.quote,
        "window": {
            "start": plan.start.isoformat(),
            "end": end.isoformat() if (end := replay_end(plan)) else None,
        },
    }
    store.create_run(
        run_id,
        config=config,
        data_source="replay: " + ", ".join(Path(f).name for f in files),
        started_at=started,
    )
    record_rejected(store, run_id, plan)
    return run_id, plan


def create_live_run(
    ctx: RunContext,
    store: Store,
    feed_settings: FeedSettings,
    days: float | None,
    quote: str,
    run_id: str | None = None,
    preflight: dict[str, Any] | None = None,
    specs: dict[str, Any] | None = None,
) -> tuple[str, datetime, datetime | None]:
    """A live run from now on; returns its id, start and planned end. `specs`, the
    symbols' rules as the exchange stated them, are kept for a run driven as services."""
    started = ctx.clock.now()
    run_id = run_id or new_run_id(started)
    planned_end = started + timedelta(days=days) if days else None
    store.create_run(
        run_id,
        config={
            **ctx.config(ctx.settings, preflight),
            "live": {
                "exchange": feed_settings.exchange,
                "market": feed_settings.market,
                "symbols": list(feed_settings.symbols),
                "timeframe": feed_settings.candle_timeframe,
                "days": days,
                **({"specs": specs} if specs else {}),
            },
            "quote_currency": quote,
            "window": {
                "start": started.isoformat(),
                "end": planned_end.isoformat() if planned_end else None,
            },
        },
        data_source=f"{feed_settings.exchange} {feed_settings.market}: "
        + ",".join(feed_settings.symbols),
        started_at=started,
        planned_end=planned_end,
    )
    return run_id, started, planned_end


__all__ = ["create_live_run", "create_replay_run"]
