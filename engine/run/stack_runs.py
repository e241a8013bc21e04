"""A stack's run: recorded by the one-shot `cdb_init` container, followed from outside.

`cdb_init` runs `claire stack init-run` inside the stack: it records the run
(`CLAIRE_RUN_ID`, default `stack`) in the stack's PostgreSQL, unless it exists
already (then the services resume it), and creates every service's consumer group
in the stack's Redis. The run is a replay of the market files mounted at
/data/market, or, with `CLAIRE_EXCHANGE` set, a live run on the exchange's market
(`CLAIRE_MARKET`, `CLAIRE_SYMBOLS`) with its symbols' rules as the exchange states
them. The services read the run from there. From this machine, `run_progress` reads
the run's streams in the stack's Redis, and `wait_for_run` records a replay completed
once the feed has published everything and every group has acknowledged every
message. A live run has no end of data: `wait_for_run` returns once it publishes, and
the run goes on until `claire papertest stop --stack` or its planned end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

from engine.bus.redis import RedisBus
from engine.config import Settings
from engine.errors import ClaireError, ConfigError, ExchangeError, UnlistedSymbolsError
from engine.runtime.urls import redact_url
from engine.services.host import create_groups as create_service_groups
from engine.services.host import drained, stream_lag, stream_prefix
from engine.services.worker import SERVICE_STREAMS
from engine.stack.config import StackConfig
from engine.store import RunStatus, Store

if TYPE_CHECKING:
    from engine.feeds.exchange import FeedSettings


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


def record_stack_live_run(
    settings: Settings,
    data_dir: Path,
    run_id: str,
    feed_settings: FeedSettings,
    days: float | None,
) -> bool:
    """Record the stack's live run with its symbols' rules from the exchange; False when
    it exists already (its services resume it, without asking the exchange again)."""
    from engine.run.live_services import record_live_run
    from engine.run.runner import PaperRunner

    ctx = PaperRunner(settings, data_dir).ctx
    with ctx.store() as (store, _):
        if store.get_run(run_id) is not None:
            return False
        try:
            record_live_run(ctx, store, feed_settings, days, run_id)
        except UnlistedSymbolsError as exc:
            where = f"{feed_settings.exchange} {feed_settings.market}"
            raise ConfigError(
                f"CLAIRE_SYMBOLS names {', '.join(exc.symbols)}, not listed on {where}; "
                "fix CLAIRE_SYMBOLS in compose/.env."
            ) from None
        except ExchangeError as exc:
            raise ConfigError(_unreachable(feed_settings, exc)) from None
    return True


def _unreachable(feed_settings: FeedSettings, exc: ExchangeError) -> str:
    futures = feed_settings.market == "futures"
    variable = f"CLAIRE_MEXC_{'FUTURES' if futures else 'SPOT'}_REST_URL"
    url = redact_url(feed_settings.futures_rest_url if futures else feed_settings.spot_rest_url)
    reason = str(exc).rstrip(".")
    return (
        f"the exchange at {url} cannot be reached for the symbols' rules ({reason}); check "
        f"the network, or {variable} in compose/.env (empty: MEXC's own)."
    )


def create_groups(redis_url: str, run_id: str) -> None:
    """Create every service's consumer group on the run's streams before any service
    starts (see `engine.services.host.create_groups`)."""
    bus = RedisBus(redis_url, prefix=stream_prefix(run_id))
    try:
        create_service_groups(bus)
    finally:
        bus.close()


def run_progress(config: StackConfig) -> dict[str, Any]:
    """The stack's run as its streams show it: market times published, done, drained;
    a live run's also the lag, messages its services have still to handle. A live run
    is complete only once its feed reached the planned end and everything is handled."""
    bus = RedisBus(config.redis_url(), prefix=stream_prefix(config.run_id))
    try:
        done = bool(bus.redis.get(bus.key("feed:done")))
        state: dict[str, Any] = {
            "run_id": config.run_id,
            "live": is_live_stack(config),
            "published": int(bus.redis.get(bus.key("feed:position")) or 0),
            "feed_done": done,
            "complete": done and drained(bus),
        }
        if state["live"]:
            state["lag"] = _lag(bus)
        return state
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


def is_live_stack(config: StackConfig) -> bool:
    """Whether the stack's run is live (`CLAIRE_EXCHANGE` set in compose/.env)."""
    return bool(config.env.get("CLAIRE_EXCHANGE", "").strip())


def _lag(bus: RedisBus) -> int:
    """Messages of the run's streams that a service has still to read or acknowledge."""
    total = 0
    for stream in SERVICE_STREAMS:
        try:
            groups = bus.redis.xinfo_groups(bus.key(stream))
        except redis.ResponseError:  # the stream does not exist yet
            continue
        for info in groups:
            name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
            total += stream_lag(bus, stream, name)
    return total


def wait_for_run(
    config: StackConfig,
    timeout_s: float,
    progress: Callable[[dict[str, Any]], None] | None = None,
    poll_s: float = 1.0,
) -> dict[str, Any]:
    """Wait until the stack's replay is complete, then record it completed. A live run
    never completes on drained streams: wait until it publishes, and return."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = run_progress(config)
        if progress is not None:
            progress(state)
        if state["live"] and (state["published"] or state["feed_done"]):
            return state
        if state["complete"] and not state["live"]:
            with Store.open(config.postgres_url(), external=True) as store:
                store.end_run(config.run_id, RunStatus.COMPLETED, datetime.now(UTC))
            return state
        if time.monotonic() > deadline and state["live"]:
            raise ClaireError(
                f"live run {config.run_id} published no market time in {timeout_s:.0f} s; "
                "`claire stack logs cdb_ws` shows the feed's log."
            )
        if time.monotonic() > deadline:
            raise ClaireError(
                f"run {config.run_id} was not complete after {timeout_s:.0f} s "
                f"({state['published']} market times published); `claire stack ps` shows "
                "the services, `claire stack logs SERVICE` their logs."
            )
        time.sleep(poll_s)
