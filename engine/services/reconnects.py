"""The operator's `reconnect` on a live run as services: from the supervisor to the feed.

The supervisor's steward queues the command (`control:reconnect`, a Redis list); the
live feed service takes what is queued between two market times, at most a few times
a second, drops its sockets (each reconnects with backoff, resubscribes and backfills
the gap over REST, as after a dropped connection) and answers with how many sockets it
dropped (`control:reconnected`). A command queued while no feed runs is taken by the
feed's next start.
"""

from __future__ import annotations

import json
from typing import Final

from engine.bus.redis import RedisBus

QUEUE: Final = "control:reconnect"
ANSWERS: Final = "control:reconnected"


def queue_reconnect(bus: RedisBus, command_id: int, note: str) -> None:
    """The supervisor's side: hand a reconnect to the feed."""
    bus.redis.rpush(bus.key(QUEUE), json.dumps({"id": command_id, "note": note}))


def take_reconnects(bus: RedisBus) -> list[tuple[int, str]]:
    """The feed's side: every queued reconnect, each taken once."""
    pipe = bus.redis.pipeline(transaction=True)
    pipe.lrange(bus.key(QUEUE), 0, -1)
    pipe.delete(bus.key(QUEUE))
    raws, _ = pipe.execute()
    taken = [json.loads(raw) for raw in raws]
    return [(int(t["id"]), str(t["note"])) for t in taken]


def answer_reconnect(bus: RedisBus, command_id: int, sockets: int) -> None:
    """The feed's side: the reconnect is done, with how many sockets were dropped."""
    bus.redis.hset(bus.key(ANSWERS), str(command_id), str(sockets))


def read_reconnected(bus: RedisBus, command_ids: list[int]) -> dict[int, int]:
    """The supervisor's side: the reconnects named that the feed has done."""
    if not command_ids:
        return {}
    raws = bus.redis.hmget(bus.key(ANSWERS), [str(c) for c in command_ids])
    return {c: int(raw) for c, raw in zip(command_ids, raws, strict=True) if raw is not None}


__all__ = ["answer_reconnect", "queue_reconnect", "read_reconnected", "take_reconnects"]
