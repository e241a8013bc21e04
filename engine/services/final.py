"""A services run's final snapshot: the portfolio as its service left it, with the final marks.

Written once the services have stopped (a planned stop), as one process writes it
when it stops (`PersistedRun.finish`): the portfolio's state is read from its saved
state in Redis, and the snapshot goes to the database with the `run-end` cause.
"""

from __future__ import annotations

import json

from engine.bus.redis import RedisBus
from engine.events import Event
from engine.kernel.checkpoint import restore
from engine.kernel.persisted import FINAL_SNAPSHOT_CAUSE
from engine.kernel.pipeline import build_replay_pipeline
from engine.kernel.recorded import plan_for_run
from engine.services.worker import build_components
from engine.store import EventWriter, Store


def write_final_snapshot(store: Store, run_id: str, bus: RedisBus) -> bool:
    """The final snapshot, written; False when the portfolio never handled a market time."""
    run = store.get_run(run_id)
    raw = bus.redis.get(bus.key("state:portfolio"))
    if run is None or raw is None:
        return False
    plan, choice, settings = plan_for_run(run)
    strategy = choice.build()
    specs = build_replay_pipeline(settings, plan, strategy).specs
    out: list[Event] = []
    parts = build_components(settings, specs, strategy, out.append)
    restore(parts, json.loads(raw)["state"])  # type: ignore[arg-type]
    parts.portfolio.snapshot(parts.clock.now(), FINAL_SNAPSHOT_CAUSE)
    EventWriter(store, run_id).write(out)
    return True


__all__ = ["write_final_snapshot"]
