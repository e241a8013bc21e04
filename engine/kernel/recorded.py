"""A recorded run read back: the settings, strategy and replay data it was started
with, the input rows it refused, and a check of a checkpoint against its fills."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.config import Settings, load_settings
from engine.errors import RunNotResumable
from engine.events import MarketEvent
from engine.feeds.replay import PerpetualFiles, ReplayPlan, plan_replay
from engine.kernel.pipeline import Pipeline
from engine.signal.loader import StrategyChoice
from engine.store import RunRecord, Store
from engine.store.runs import Checkpoint

# Secrets and machine-local paths are not part of what a run decides with.
_NOT_REPLAYED = {
    "db_outage_tolerance_seconds",
    "claire_home",
    "claire_postgres_url",
    "claire_service_port_base",
    "claire_redis_url",
    "mexc_api_key",
    "mexc_api_secret",
    "claire_notify_urls",
    "claire_notify_queue",
    "claire_notify_retries",
    "claire_log_max_bytes",
    "claire_log_backups",
    "claire_log_level",
    "claire_health_interval_s",
    "claire_auto_reports",
    "backup_dir",
    "backup_retention_days",
    "backup_schedule",
    "backup_interval",
    "backup_max_age_hours",
    "preflight_min_disk_gb",
    "preflight_min_memory_gb",
    "max_clock_skew_ms",
}


def new_run_id(now: datetime) -> str:
    return f"run-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def settings_from_snapshot(snapshot: dict[str, Any]) -> Settings:
    """The settings a run started with; secrets and paths come from this environment."""
    chosen = {k: v for k, v in snapshot.items() if k not in _NOT_REPLAYED}
    return load_settings(**chosen)


def record_rejected(store: Store, run_id: str, plan: ReplayPlan) -> None:
    """The run keeps the input rows it refused, with their reasons, and their counts.

    Sources are absolute paths, as in the run's config, so a resume (which reads
    the files by those paths) records the same rows rather than new ones.
    """
    rows = [(str(Path(r.path).resolve()), r.line, r.reason) for r in plan.rejected]
    counts = [
        (str(f.source.path.resolve()), code, n)
        for f in plan.files
        for code, n in sorted(f.refusals.by_reason.items())
    ]
    store.record_rejected_input(run_id, rows, counts)


def check_against_fills(store: Store, run_id: str, pipeline: Pipeline) -> None:
    """The restored positions must be what the stored fills add up to."""
    rows = store.db.fetch_all(store.queries["net_position_by_symbol"], {"run_id": run_id})
    from_fills = {r["symbol"]: Decimal(r["qty"]) for r in rows if Decimal(r["qty"]) != 0}
    restored = {s: p.qty for s, p in pipeline.portfolio.positions.items()}
    if from_fills != restored:
        raise RunNotResumable(
            f"run {run_id}'s checkpoint does not match its stored fills ({restored} vs "
            f"{from_fills}); the database was changed by hand: start a new run instead."
        )


def plan_for_run(run: RunRecord) -> tuple[ReplayPlan, StrategyChoice, Settings]:
    """A recorded replay run's data, strategy and settings, as it was started."""
    replay = run.config.get("replay") or {}
    files = [Path(f) for f in replay.get("files", [])]
    if not files:
        raise RunNotResumable(f"run {run.run_id} has no replay files recorded.")
    settings = settings_from_snapshot(run.config.get("settings", {}))
    choice = StrategyChoice.from_config(run.config, settings.strategy)
    # Rows "in the future" are judged against the run's start, as they were then.
    plan = plan_replay(
        files,
        replay.get("days"),
        now=run.started_at,
        perpetual=_perpetual_from_config(replay, settings),
    )
    return plan, choice, settings


def perpetual_config(plan: ReplayPlan) -> dict[str, Any]:
    """How a futures replay found its mark and funding data, for its resume."""
    perp = plan.perpetual
    if perp is None:
        return {}
    return {
        "market": "futures",
        "marks": [str(source.path.resolve()) for source in perp.marks.values()],
        "funding": [str(Path(path).resolve()) for path in perp.funding_files],
    }


def _perpetual_from_config(replay: dict[str, Any], settings: Settings) -> PerpetualFiles | None:
    if replay.get("market") != "futures":
        return None
    return PerpetualFiles(
        tuple(Path(p) for p in replay.get("marks", [])),
        tuple(Path(p) for p in replay.get("funding", [])),
        settings.funding_default_rate,
        explicit=True,
    )


def after_checkpoint(
    events: Iterator[MarketEvent], checkpoint: Checkpoint
) -> Iterator[MarketEvent]:
    """Skip exactly the market events the checkpoint has already seen."""
    skipped = 0
    for skipped, event in enumerate(events, start=1):
        if skipped == checkpoint.market_events:
            if event.event_id != checkpoint.last_event_id:
                raise RunNotResumable(
                    f"the replay data changed since the run started: event {skipped} is "
                    f"{event.event_id}, the checkpoint says {checkpoint.last_event_id}."
                )
            break
    else:
        if skipped < checkpoint.market_events:
            raise RunNotResumable(
                "the replay data is shorter than what the run already processed; "
                "restore the original files."
            )
    yield from events


__all__ = [
    "after_checkpoint",
    "check_against_fills",
    "new_run_id",
    "perpetual_config",
    "plan_for_run",
    "record_rejected",
    "settings_from_snapshot",
]
