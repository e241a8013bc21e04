"""When an alert fires and when it resolves: a pure step function, like Prometheus rules.

A condition must hold for `for_s` seconds before its alert fires (`for:`), and an
alert that fired resolves only once the condition has been clear for `clear_s`
seconds (`keep_firing_for:`). So a figure that hovers around its threshold gives
one episode, not a storm of alerts. Time is whatever clock the caller uses: event
time for market rules (a replay gives the same alerts), wall time for health.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Episode:
    """Where one alert stands: idle, pending (true, not long enough), firing or clearing."""

    pending_since: datetime | None = None
    fired_at: datetime | None = None
    episode_id: str | None = None
    clear_since: datetime | None = None

    @property
    def firing(self) -> bool:
        return self.fired_at is not None


IDLE = Episode()


@dataclass(frozen=True, slots=True)
class Step:
    episode: Episode
    fired: bool = False
    resolved: bool = False


def step(episode: Episode, active: bool, now: datetime, for_s: float, clear_s: float) -> Step:
    """The episode after observing the condition (`active`) at `now`.

    `fired` is true exactly when the condition has now held for `for_s`; `resolved`
    exactly when a firing alert's condition has now been clear for `clear_s`. The
    caller names the episode (`episode_id`) when it fires.
    """
    if episode.fired_at is None:
        if not active:
            return Step(IDLE)
        since = episode.pending_since if episode.pending_since is not None else now
        if (now - since).total_seconds() >= for_s:
            return Step(Episode(fired_at=now), fired=True)
        return Step(Episode(pending_since=since))
    if active:
        return Step(replace(episode, clear_since=None))
    since = episode.clear_since if episode.clear_since is not None else now
    if (now - since).total_seconds() >= clear_s:
        return Step(IDLE, resolved=True)
    return Step(replace(episode, clear_since=since))


def to_json(episode: Episode) -> list[str | None]:
    return [
        None if t is None else t.isoformat()
        for t in (episode.pending_since, episode.fired_at, episode.clear_since)
    ] + [episode.episode_id]


def from_json(body: list[str | None]) -> Episode:
    pending, fired, clear, episode_id = body
    return Episode(
        pending_since=datetime.fromisoformat(pending) if pending else None,
        fired_at=datetime.fromisoformat(fired) if fired else None,
        episode_id=episode_id,
        clear_since=datetime.fromisoformat(clear) if clear else None,
    )
