"""A stack's run: recorded by the one-shot `cdb_init` container, followed from outside.

`cdb_init` runs `claire stack init-run` inside the stack: it records the replay run
(`CLAIRE_RUN_ID`, default `stack`) in the stack's PostgreSQL with the market files
mounted at /data/market, unless it exists already (then the services resume it),
and creates every service's consumer group in the stack's Redis.
The services read the run from there. From this machine, `run_progress` reads the
run's streams in the stack's Redis, and `wait_for_run` records the run completed once
the feed has published everything and every group has acknowledged every message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from engine.bus.redis import RedisBus
from engine.config import Settings
from engine.errors import ClaireError, ConfigError
from engine.services.host import create_groups as create_service_groups
from engine.services.host import drained, stream_prefix
from engine.stack.config import StackConfig
from engine.store import RunStatus, Store


def record_stack_run(
    settings: Settings,
    data_dir: Path,
    run_id: str,
    paths: list[Path],
    days: float | None,
    speed: str,
) -> bool:
    """Record the stack's replay run from the market files mounted in the stack;
    False when it exists already."""
    from engine.run.runner import PaperRunner

    if not paths:
        raise ConfigError("CLAIRE_REPLAY_FILES names no file; list the market files to replay.")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(
            f"market file {missing[0]} is not in the mounted data folder: set "
            "CLAIRE_MARKET_DATA to the folder holding it, or fix CLAIRE_REPLAY_FILES."
        )
    return PaperRunner(settings, data_dir).record_services_run(paths, days, speed, run_id)


def create_groups(redis_url: str, run_id: str) -> None:
    """Create every service's consumer group on the run's streams before any service
    starts (see `engine.services.host.create_groups`)."""
    bus = RedisBus(redis_url, prefix=stream_prefix(run_id))
    try:
        create_service_groups(bus)
    finally:
        bus.close()


def run_progress(config: StackConfig) -> dict[str, Any]:
    """The stack's run as its streams show it: market times published, done, drained."""
    bus = RedisBus(config.redis_url(), prefix=stream_prefix(config.run_id))
    try:
        done = bool(bus.redis.get(bus.key("feed:done")))
        return {
            "run_id": config.run_id,
            "published": int(bus.redis.get(bus.key("feed:position")) or 0),
            "feed_done": done,
            "complete": done and drained(bus),
        }
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise ClaireError(
            f"the stack's Redis on 127.0.0.1:{config.redis_port} does not answer ({exc}); "
            "run `claire stack up`."
        ) from None
    except redis.AuthenticationError:
        raise ClaireError(
            "the stack's Redis refused the password: REDIS_PASSWORD in compose/.env must be "
            "the one the stack was started with."
        ) from None
    finally:
        bus.close()


def wait_for_run(
    config: StackConfig,
    timeout_s: float,
    progress: Callable[[dict[str, Any]], None] | None = None,
    poll_s: float = 1.0,
) -> dict[str, Any]:
    """Wait until the stack's run is complete, then record it completed."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = run_progress(config)
        if progress is not None:
            progress(state)
        if state["complete"]:
            with Store.open(config.postgres_url(), external=True) as store:
                store.end_run(config.run_id, RunStatus.COMPLETED, datetime.now(UTC))
            return state
        if time.monotonic() > deadline:
            raise ClaireError(
                f"run {config.run_id} was not complete after {timeout_s:.0f} s "
                f"({state['published']} market times published); `claire stack ps` shows "
                "the services, `claire stack logs SERVICE` their logs."
            )
        time.sleep(poll_s)
