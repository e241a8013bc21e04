"""A live run as one process per service over Redis Streams, under the supervisor.

The run is recorded with its symbols' rules as the exchange states them now (the
services trade by these, without asking the exchange each), then supervised in the
foreground as a replay's services are: the feed service (engine.services.live_feed)
publishes the exchange's data in market times closed by the exchange's clock. A live
run has no end of data: it ends on Ctrl-C, SIGTERM or an operator's stop (stopped),
or when market time reaches its planned end (`--days`, completed). It starts in the
background with `--detach`, as a replay's services do.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from engine.errors import ConfigError
from engine.run.context import RunContext
from engine.run.create import create_live_run
from engine.run.services_runtime import supervise_run
from engine.services.live_run import specs_to_config
from engine.store import RunStatus

if TYPE_CHECKING:
    from engine.feeds.exchange import FeedSettings
    from engine.markets import SymbolSpec
    from engine.store import Store


async def exchange_specs(feed_settings: FeedSettings) -> tuple[dict[str, SymbolSpec], str]:
    """The symbols' rules from the exchange, and the one quote currency they share."""
    from engine.feeds.exchange import LiveFeed
    from engine.kernel.live import live_specs

    async with LiveFeed(feed_settings) as feed:
        specs = await live_specs(feed)
    quotes = {s.quote for s in specs.values()}
    if len(quotes) != 1:
        raise ConfigError(
            f"symbols are quoted in {', '.join(sorted(quotes))}; one run values everything "
            "in one quote currency, so choose symbols with the same quote."
        )
    return specs, quotes.pop()


def record_live_run(
    ctx: RunContext,
    store: Store,
    feed_settings: FeedSettings,
    days: float | None,
    run_id: str | None = None,
) -> str:
    """Record a live run with its symbols' rules as the exchange states them now (its
    services trade by these); returns its id."""
    specs, quote = asyncio.run(exchange_specs(feed_settings))
    run_id, _, _ = create_live_run(
        ctx, store, feed_settings, days, quote, run_id=run_id, specs=specs_to_config(specs)
    )
    return run_id


def run_live_services(
    ctx: RunContext,
    feed_settings: FeedSettings,
    days: float | None,
    ports: dict[str, int] | None = None,
    *,
    run_id: str | None = None,
    detached: bool = False,
    reports: bool = False,
) -> tuple[str, RunStatus, int | None]:
    """Record the live run, supervise its services until it ends, record how it ended
    (engine.run.services_runtime.supervise_run: the operator's commands, backups and
    reports as for a replay's services).

    Returns the run id, how it ended and the signal that stopped it, if one did.
    """
    with ctx.store() as (store, _):
        run_id = record_live_run(ctx, store, feed_settings, days, run_id)
        return supervise_run(ctx, store, run_id, ports, detached=detached, reports=reports)


__all__ = ["exchange_specs", "record_live_run", "run_live_services"]
