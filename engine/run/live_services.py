"""A live run as one process per service over Redis Streams, under the supervisor.

The run is recorded with its symbols' rules as the exchange states them now (the
services trade by these, without asking the exchange each), then supervised in the
foreground as a replay's services are: the feed service (engine.services.live_feed)
publishes the exchange's data in market times closed by the exchange's clock. A live
run has no end of data: it ends on Ctrl-C, SIGTERM or a stop (stopped), or when
market time reaches its planned end (`--days`, completed).
"""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

from engine.errors import ConfigError, RunNotResumable
from engine.home.lock import RunLock, run_started
from engine.home.processes import forget_process, record_process
from engine.run.context import RunContext
from engine.run.create import create_live_run
from engine.run.services_runtime import write_reports
from engine.services.live_run import specs_to_config
from engine.store import DatabaseUnavailable, RunStatus
from engine.store.retry import OutageTolerance

if TYPE_CHECKING:
    from engine.feeds.exchange import FeedSettings
    from engine.markets import SymbolSpec


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


def run_live_services(
    ctx: RunContext,
    feed_settings: FeedSettings,
    days: float | None,
    ports: dict[str, int] | None = None,
) -> tuple[str, RunStatus, int | None]:
    """Record the live run, supervise its services until it ends, record how it ended.

    Returns the run id, how it ended and the signal that stopped it, if one did.
    """
    from engine.services.ports import service_ports
    from engine.services.supervisor import ServiceFailed, Supervisor

    specs, quote = asyncio.run(exchange_specs(feed_settings))
    with ctx.store() as (store, _):
        run_id, _, _ = create_live_run(
            ctx, store, feed_settings, days, quote, specs=specs_to_config(specs)
        )
        lock = RunLock(ctx.data_dir, run_id)
        lock.acquire()
        run_started()
        record_process(ctx.data_dir, run_id, clock=ctx.clock)
        supervisor = Supervisor(
            store, run_id, ctx.data_dir, ports=ports or service_ports(ctx.settings)
        )
        patient = OutageTolerance(seconds=ctx.settings.db_outage_tolerance_seconds)

        def record_end(status: RunStatus, reason: str | None) -> None:
            patient.call(
                lambda: supervisor.flush_records(force=True) or _still_down(),
                "recording the services' events",
            )
            patient.call(
                lambda: store.end_run(run_id, status, ctx.clock.now(), reason),
                f"recording the end of run {run_id}",
            )

        try:
            status = supervisor.run()
        except ServiceFailed as exc:
            record_end(RunStatus.FAILED, str(exc))
            raise RunNotResumable(str(exc)) from None
        finally:
            forget_process(ctx.data_dir, run_id)
            lock.release()
        reason = None
        if status is RunStatus.STOPPED and supervisor.stop_signal is not None:
            reason = f"stopped by {signal.Signals(supervisor.stop_signal).name}"
        record_end(status, reason)
        if status is RunStatus.COMPLETED:
            write_reports(ctx, store, run_id)
        return run_id, status, supervisor.stop_signal


def _still_down() -> bool:
    raise DatabaseUnavailable("the database does not answer yet", "unreachable")


__all__ = ["exchange_specs", "run_live_services"]
