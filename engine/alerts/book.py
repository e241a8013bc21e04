"""Episodes of every rule and key: readings in, firing and resolved alerts out.

One book follows event time (the alerts service), another wall time (the health
monitor); both name an episode after its rule, key and the moment it fired, so a
replay names its alerts the same way every time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from engine.alerts.episodes import IDLE, Episode, from_json, step, to_json
from engine.alerts.rules import Reading, Rule
from engine.events import Alert, AlertStatus, derive_id


class AlertBook:
    def __init__(self, table: Mapping[str, Rule], clear_s: int) -> None:
        self.table = table
        self.clear_s = clear_s
        self.episodes: dict[tuple[str, str], Episode] = {}

    def observe(
        self, readings: Iterable[Reading], now: datetime, cause_id: str | None
    ) -> list[Alert]:
        """Step every reading's episode; the alerts that fire or resolve at `now`."""
        out: list[Alert] = []
        episodes = self.episodes
        for reading in readings:
            key = (reading.rule, reading.key)
            if not reading.active and key not in episodes:
                continue  # idle and still quiet: stepping it would change nothing
            rule = self.table[reading.rule]
            before = episodes.get(key, IDLE)
            result = step(
                before,
                reading.active,
                now,
                rule.for_s,
                self.clear_s,
                clear=reading.clear,
                quiet_s=rule.quiet_s,
            )
            episode = result.episode
            if result.fired:
                episode_id = derive_id("alert", reading.rule, reading.key, now.isoformat())
                episode = Episode(fired_at=now, episode_id=episode_id)
                out.append(_alert(rule, reading, now, cause_id, episode_id, AlertStatus.FIRING))
            elif result.resolved and before.episode_id is not None:
                out.append(
                    _alert(rule, reading, now, cause_id, before.episode_id, AlertStatus.RESOLVED)
                )
            if episode == IDLE:  # an episode in its quiet period is kept: it remembers when
                self.episodes.pop(key, None)
            else:
                self.episodes[key] = episode
        return out

    def follows(self, rule: str, key: str) -> bool:
        """Whether an episode of this rule and key is open (firing, or in its quiet period)."""
        return (rule, key) in self.episodes

    def adopt(self, rule: str, key: str, episode_id: str, now: datetime) -> None:
        """A one-off alert raised elsewhere becomes this rule's open episode, to resolve here."""
        if not self.episodes.get((rule, key), IDLE).firing:
            self.episodes[(rule, key)] = Episode(fired_at=now, episode_id=episode_id)

    def firing(self) -> list[tuple[str, str, str]]:
        """(rule, key, episode_id) of every alert firing now."""
        return [
            (rule, key, e.episode_id or "")
            for (rule, key), e in sorted(self.episodes.items())
            if e.firing
        ]

    def export_state(self) -> dict[str, Any]:
        return {f"{rule}|{key}": to_json(e) for (rule, key), e in self.episodes.items()}

    def import_state(self, body: Mapping[str, Any]) -> None:
        self.episodes = {}
        for name, value in body.items():
            rule, _, key = name.partition("|")
            self.episodes[(rule, key)] = from_json(value)


def _alert(
    rule: Rule,
    reading: Reading,
    now: datetime,
    cause_id: str | None,
    episode_id: str,
    status: AlertStatus,
) -> Alert:
    resolved = status is AlertStatus.RESOLVED
    detail = {"value": str(reading.value), "threshold": str(reading.threshold)}
    if reading.key:
        detail["key"] = reading.key
    return Alert(
        event_id=derive_id("alert-resolved", episode_id) if resolved else episode_id,
        ts=now,
        cause_id=cause_id,
        severity=rule.severity,
        rule=rule.name,
        message=("resolved: " if resolved else "") + reading.message,
        detail=detail,
        status=status,
        episode_id=episode_id,
        value=reading.value,
    )
