"""The bus contract on Redis Streams (redis-py), for one process per service.

- One Redis stream per bus stream, `<prefix>:<stream>`; one consumer group per
  service; `XREADGROUP` delivers, `XACK` acknowledges. A service acks only after
  the effect of a message is durable (written, or published onward).
- A crashed consumer's messages stay pending; `claim` takes them over with
  `XAUTOCLAIM` once idle for `min_idle_ms`. A message delivered `max_deliveries`
  times without an ack is a poison message: it goes to the dead letters, acked.
- Malformed messages go to the dead-letter stream once (whatever the number of
  groups reading them), with the reason, and reading goes on.
- `trim` drops the oldest entries (the contract's plain trim); `trim_acknowledged`
  drops only what every group has read and acked, never a pending entry.
- Backpressure: with `max_len`, `publish` waits while the stream holds that many
  entries that are not yet acknowledged by every group (trimming what is), up to
  `publish_timeout_s`, then raises `BusBackpressure`; it never drops.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Literal, cast

import redis

from engine.bus.base import DEAD_LETTERS, Bus, DeadLetter, Delivery, Pending, msg_id_key
from engine.errors import ClaireError, InvalidEventError
from engine.events import Event, from_json, to_json

_FIELD = b"e"


class BusBackpressure(ClaireError):
    """A stream stayed full: its consumers are not keeping up."""


class RedisBus(Bus):
    def __init__(
        self,
        url: str,
        prefix: str = "claire",
        *,
        max_len: int | None = None,
        max_deliveries: int = 5,
        publish_timeout_s: float = 60.0,
        client: redis.Redis | None = None,
    ) -> None:
        self.prefix = prefix
        self.max_len = max_len
        self.max_deliveries = max_deliveries
        self.publish_timeout_s = publish_timeout_s
        self.redis = client or redis.Redis.from_url(url)

    # --- keys ---------------------------------------------------------------------

    def key(self, stream: str) -> str:
        return f"{self.prefix}:{stream}"

    @property
    def _dead_key(self) -> str:
        return self.key(DEAD_LETTERS)

    @property
    def _dead_seen_key(self) -> str:
        return self.key("dead_letters:seen")

    # --- publishing -------------------------------------------------------------------

    def publish(self, event: Event, stream: str | None = None) -> str:
        return self._add(stream or event.STREAM, to_json(event))

    def publish_raw(self, stream: str, payload: str) -> str:
        return self._add(stream, payload)

    def _add(self, stream: str, payload: str) -> str:
        key = self.key(stream)
        if self.max_len is not None:
            self._wait_for_room(stream, key)
        msg_id = self.redis.xadd(key, {_FIELD: payload.encode()})
        return _text(msg_id)

    def _wait_for_room(self, stream: str, key: str) -> None:
        deadline = time.monotonic() + self.publish_timeout_s
        pause = 0.001
        assert self.max_len is not None
        while self.redis.xlen(key) >= self.max_len:
            if self.trim_acknowledged(stream) == 0:
                if time.monotonic() > deadline:
                    raise BusBackpressure(
                        f"stream {stream} has held {self.max_len} unacknowledged messages for "
                        f"{self.publish_timeout_s:.0f} s: a consumer is stuck; check "
                        "`claire status`."
                    )
                time.sleep(pause)
                pause = min(pause * 2, 0.1)

    # --- groups and reading -------------------------------------------------------------

    def create_group(
        self, stream: str, group: str, start: Literal["first", "latest"] = "first"
    ) -> None:
        try:
            self.redis.xgroup_create(
                self.key(stream), group, id="0" if start == "first" else "$", mkstream=True
            )
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(
        self, stream: str, group: str, consumer: str, count: int = 100, block_ms: int = 0
    ) -> list[Delivery]:
        key = self.key(stream)
        try:
            reply = self.redis.xreadgroup(
                group, consumer, {key: ">"}, count=count, block=block_ms or None
            )
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                raise KeyError(
                    f"group {group!r} of stream {stream!r} does not exist; create it first"
                ) from None
            raise
        entries: list[Any] = cast(list[Any], reply)[0][1] if reply else []
        return self._deliveries(stream, group, entries, times_delivered=1)

    def read_raw(
        self,
        group: str,
        consumer: str,
        positions: dict[str, str],
        count: int,
        block_ms: int | None = None,
    ) -> list[tuple[str, list[tuple[str, str | None]]]]:
        """`XREADGROUP` over several streams: (stream, [(message id, payload)]) in order.

        `positions` maps stream names to `">"` (new messages) or `"0"` (this consumer's
        own pending ones). A payload is None when its entry was trimmed away.
        """
        keys = {self.key(stream): stream for stream in positions}
        reply = cast(
            list[Any],
            self.redis.xreadgroup(
                group,
                consumer,
                {self.key(s): p for s, p in positions.items()},
                count=count,
                block=block_ms,
            ),
        )
        out: list[tuple[str, list[tuple[str, str | None]]]] = []
        for raw_key, entries in reply or []:
            messages: list[tuple[str, str | None]] = []
            for raw_id, fields in entries:
                data = (fields or {}).get(_FIELD)
                payload = None if data is None else data.decode("utf-8", errors="replace")
                messages.append((_text(raw_id), payload))
            out.append((keys[_text(raw_key)], messages))
        return out

    def _deliveries(
        self,
        stream: str,
        group: str,
        entries: list[Any],
        times_delivered: int | dict[str, int],
    ) -> list[Delivery]:
        out: list[Delivery] = []
        dead: list[str] = []
        for raw_id, fields in entries:
            msg_id = _text(raw_id)
            if fields is None:  # trimmed away while pending
                dead.append(msg_id)
                continue
            payload = (fields.get(_FIELD) or b"").decode("utf-8", errors="replace")
            try:
                event = from_json(payload)
            except InvalidEventError as exc:
                self._dead_letter(stream, msg_id, payload, f"{exc.reason}: {exc}")
                dead.append(msg_id)
                continue
            times = (
                times_delivered.get(msg_id, 1)
                if isinstance(times_delivered, dict)
                else times_delivered
            )
            out.append(Delivery(stream, msg_id, event, times))
        if dead:
            self.redis.xack(self.key(stream), group, *dead)
        return out

    def _dead_letter(self, stream: str, msg_id: str, payload: str, reason: str) -> None:
        # Recorded once, whatever the number of groups that read it.
        if self.redis.sadd(self._dead_seen_key, f"{stream}:{msg_id}"):
            self.redis.xadd(
                self._dead_key,
                {b"stream": stream, b"msg_id": msg_id, b"payload": payload, b"reason": reason},
            )

    def ack(self, stream: str, group: str, msg_ids: Iterable[str]) -> int:
        ids = list(msg_ids)
        if not ids:
            return 0
        return int(self.redis.xack(self.key(stream), group, *ids))

    def pending(self, stream: str, group: str) -> list[Pending]:
        rows: list[dict[str, Any]] = cast(
            list[dict[str, Any]],
            self.redis.xpending_range(self.key(stream), group, min="-", max="+", count=10_000),
        )
        return [
            Pending(
                _text(row["message_id"]),
                _text(row["consumer"]),
                int(row["time_since_delivered"]),
                int(row["times_delivered"]),
            )
            for row in rows
        ]

    def claim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int = 100
    ) -> list[Delivery]:
        key = self.key(stream)
        reply = self.redis.xautoclaim(key, group, consumer, min_idle_ms, "0-0", count=count)
        entries: list[Any] = reply[1] if reply and len(reply) > 1 else []
        ids = [_text(raw_id) for raw_id, _ in entries]
        times = self._times_delivered(key, group, ids)
        poison = [i for i in ids if times.get(i, 1) > self.max_deliveries]
        if poison:
            found = {_text(i): f for i, f in entries}
            for msg_id in poison:
                fields = found.get(msg_id) or {}
                payload = (fields.get(_FIELD) or b"").decode("utf-8", errors="replace")
                reason = f"delivered {times[msg_id]} times without an acknowledgement"
                self._dead_letter(stream, msg_id, payload, reason)
            self.redis.xack(key, group, *poison)
            entries = [(i, f) for i, f in entries if _text(i) not in poison]
        return self._deliveries(stream, group, entries, times)

    def _times_delivered(self, key: str, group: str, ids: list[str]) -> dict[str, int]:
        if not ids:
            return {}
        low, high = min(ids, key=msg_id_key), max(ids, key=msg_id_key)
        rows: list[dict[str, Any]] = cast(
            list[dict[str, Any]],
            self.redis.xpending_range(key, group, min=low, max=high, count=len(ids) * 2 + 10),
        )
        return {_text(r["message_id"]): int(r["times_delivered"]) for r in rows}

    # --- size -------------------------------------------------------------------------

    def length(self, stream: str) -> int:
        return int(self.redis.xlen(self.key(stream)))

    def trim(self, stream: str, maxlen: int) -> int:
        return int(self.redis.xtrim(self.key(stream), maxlen=maxlen, approximate=False))

    def trim_acknowledged(self, stream: str) -> int:
        """Drop the entries every group has read and acknowledged; never a pending one."""
        key = self.key(stream)
        try:
            groups = self.redis.xinfo_groups(key)
        except redis.ResponseError:
            return 0
        if not groups:
            return 0
        keep_from: tuple[int, int] | None = None
        for group in groups:
            name = _text(group["name"])
            ms, seq = msg_id_key(_text(group["last-delivered-id"]))
            oldest = (ms, seq + 1)
            if int(group["pending"]):
                summary = self.redis.xpending(key, name)
                if summary.get("min") is not None:  # acked meanwhile: nothing pending
                    oldest = msg_id_key(_text(summary["min"]))
            keep_from = oldest if keep_from is None else min(keep_from, oldest)
        assert keep_from is not None
        minid = f"{keep_from[0]}-{keep_from[1]}"
        trimmed = self.redis.execute_command("XTRIM", key, "MINID", minid)  # type: ignore[no-untyped-call]
        return int(trimmed)

    def dead_letters(self) -> list[DeadLetter]:
        rows = cast(list[tuple[bytes, dict[bytes, bytes]]], self.redis.xrange(self._dead_key))
        return [
            DeadLetter(
                _text(f[b"stream"]), _text(f[b"msg_id"]), _text(f[b"payload"]), _text(f[b"reason"])
            )
            for _, f in rows
        ]

    def close(self) -> None:
        self.redis.close()


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
