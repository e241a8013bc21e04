"""When an alert fires and when it resolves: a pure step function, like Prometheus rules.

A condition must hold for `for_s` seconds before its alert fires (`for:`), and an
alert that fired resolves only once the condition has been clear for `clear_s`
seconds (`keep_firing_for:`). Level rules add hysteresis: "clear" means the
figure is down at a clear level below the threshold (not merely under it), and
after an episode resolves the same alert fires again only once `quiet_s` seconds
have passed. So a figure that hovers around its threshold gives one episode,
not a storm of alerts. Time is whatever clock the caller uses: event
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
    resolved_at: datetime | None = None  # the last episode's end: the quiet period runs from it

    @property
    def firing(self) -> bool:
        return self.fired_at is not None


IDLE = Episode()


@dataclass(frozen=True, slots=True)
class Step:
    episode: Episode
    fired: bool = False
    resolved: bool = False


def step(
    episode: Episode,
    active: bool,
    now: datetime,
    for_s: float,
    clear_s: float,
    clear: bool | None = None,
    quiet_s: float = 0,
) -> Step:
    """The episode after observing the condition (`active`) at `now`.

    `fired` is true exactly when the condition has now held for `for_s` and the
    quiet period after the last episode (`quiet_s`) is over; `resolved` exactly
    when a firing alert has now been `clear` (by default: not active) for
    `clear_s`. The caller names the episode (`episode_id`) when it fires.
    """
    is_clear = (not active) if clear is None else clear
    if episode.fired_at is None:
        resolved = episode.resolved_at
        quiet = resolved is not None and (now - resolved).total_seconds() < quiet_s
        if not active:
            return Step(Episode(resolved_at=resolved) if quiet else IDLE)
        since = episode.pending_since if episode.pending_since is not None else now
        if (now - since).total_seconds() >= for_s and not quiet:
            return Step(Episode(fired_at=now), fired=True)
        return Step(Episode(pending_since=since, resolved_at=resolved))
    if not is_clear:
        return Step(replace(episode, clear_since=None))
    since = episode.clear_since if episode.clear_since is not None else now
    if (now - since).total_seconds() >= clear_s:
        return Step(Episode(resolved_at=now) if quiet_s > 0 else IDLE, resolved=True)
    return Step(replace(episode, clear_since=since))


def to_json(episode: Episode) -> list[str | None]:
    times = [
        None if t is None else t.isoformat()
        for t in (episode.pending_since, episode.fired_at, episode.clear_since)
    ]
    resolved = [episode.resolved_at.isoformat()] if episode.resolved_at is not None else []
    return [*times, episode.episode_id, *resolved]


def from_json(body: list[str | None]) -> Episode:
    pending, fired, clear, episode_id, *rest = body  # checkpoints before quiet periods: 4
    resolved = rest[0] if rest else None
    return Episode(
        pending_since=datetime.fromisoformat(pending) if pending else None,
        fired_at=datetime.fromisoformat(fired) if fired else None,
        episode_id=episode_id,
        clear_since=datetime.fromisoformat(clear) if clear else None,
        resolved_at=datetime.fromisoformat(resolved) if resolved else None,
    )
