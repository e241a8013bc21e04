"""The bus contract every implementation passes (see tests/bus/contract.py).

- `publish` appends an event to a named stream and returns its message id; ids
  increase within a stream ("<int>-<int>", as Redis Streams writes them).
- Each consumer group sees every message of a stream once, in order; groups are
  independent of each other. A group created with start="latest" skips history.
- A delivered message stays pending for its group until acked. `claim` hands
  pending messages idle longer than `min_idle_ms` to another consumer, which is
  how a crashed consumer's work is picked up again.
- A malformed message never stops a reader: `read` moves it to the `dead_letters`
  stream with the reason, acks it, and goes on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from engine.events import Event

DEAD_LETTERS = "dead_letters"


@dataclass(frozen=True, slots=True)
class Delivery:
    stream: str
    msg_id: str
    event: Event
    times_delivered: int


@dataclass(frozen=True, slots=True)
class Pending:
    msg_id: str
    consumer: str
    idle_ms: int
    times_delivered: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    stream: str
    msg_id: str
    payload: str
    reason: str


def msg_id_key(msg_id: str) -> tuple[int, int]:
    """Order of message ids, as Redis orders them."""
    ms, _, seq = msg_id.partition("-")
    return int(ms), int(seq or 0)


class Bus(ABC):
    @abstractmethod
    def publish(self, event: Event, stream: str | None = None) -> str:
        """Append `event` to `stream` (default: the event type's own stream)."""

    @abstractmethod
    def publish_raw(self, stream: str, payload: str) -> str:
        """Append an undecoded JSON payload, as an outside producer would."""

    @abstractmethod
    def create_group(
        self, stream: str, group: str, start: Literal["first", "latest"] = "first"
    ) -> None:
        """Create the group if it does not exist; an existing group keeps its position."""

    @abstractmethod
    def read(
        self, stream: str, group: str, consumer: str, count: int = 100, block_ms: int = 0
    ) -> list[Delivery]:
        """New messages for the group, up to `count`; waits up to `block_ms` when empty."""

    @abstractmethod
    def ack(self, stream: str, group: str, msg_ids: Iterable[str]) -> int:
        """Mark messages done for the group; returns how many were pending."""

    @abstractmethod
    def pending(self, stream: str, group: str) -> list[Pending]:
        """Delivered but unacknowledged messages of the group, oldest first."""

    @abstractmethod
    def claim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int = 100
    ) -> list[Delivery]:
        """Take over pending messages idle at least `min_idle_ms` (after a consumer crash)."""

    @abstractmethod
    def length(self, stream: str) -> int:
        """Messages currently kept in the stream."""

    @abstractmethod
    def trim(self, stream: str, maxlen: int) -> int:
        """Drop the oldest messages beyond `maxlen`; returns how many were dropped."""

    @abstractmethod
    def dead_letters(self) -> list[DeadLetter]:
        """Messages that could not be decoded, with the reason."""

    def close(self) -> None:  # noqa: B027 - optional for implementations without resources
        """Release connections; the in-process bus has none."""
