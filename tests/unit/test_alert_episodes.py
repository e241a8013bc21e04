"""Alert episodes: fire once per episode, resolve once clear, never flap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from engine.alerts.episodes import IDLE, Episode, from_json, step, to_json

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _run(conditions: list[bool], for_s: int, clear_s: int, step_s: int = 60) -> list[str]:
    episode, out = IDLE, []
    for i, active in enumerate(conditions):
        result = step(episode, active, T0 + timedelta(seconds=i * step_s), for_s, clear_s)
        episode = result.episode
        out.append("fire" if result.fired else "resolve" if result.resolved else "")
    return out


@given(st.lists(st.booleans(), max_size=80), st.integers(0, 600), st.integers(0, 600))
def test_fire_and_resolve_alternate_starting_with_fire(
    conditions: list[bool], for_s: int, clear_s: int
) -> None:
    transitions = [t for t in _run(conditions, for_s, clear_s) if t]
    assert transitions == ["fire", "resolve"] * (len(transitions) // 2) + (
        ["fire"] if len(transitions) % 2 else []
    )


@given(st.lists(st.booleans(), max_size=80), st.integers(0, 600), st.integers(0, 600))
def test_fires_only_after_the_condition_held_for_its_duration(
    conditions: list[bool], for_s: int, clear_s: int
) -> None:
    transitions = _run(conditions, for_s, clear_s)
    for i, t in enumerate(transitions):
        if t == "fire":
            held = 0
            while i - held >= 0 and conditions[i - held]:
                held += 1
            assert conditions[i] and (held - 1) * 60 >= for_s
        if t == "resolve":
            clear = 0
            while i - clear >= 0 and not conditions[i - clear]:
                clear += 1
            assert not conditions[i] and (clear - 1) * 60 >= clear_s


@given(st.lists(st.booleans(), max_size=80))
def test_without_durations_the_alert_follows_the_condition(conditions: list[bool]) -> None:
    firing = False
    for active, t in zip(conditions, _run(conditions, 0, 0), strict=True):
        firing = (firing or t == "fire") and t != "resolve"
        assert firing == active


def test_a_figure_hovering_at_its_threshold_gives_one_episode() -> None:
    hovering = [True, False] * 20  # above, below, above, ... every minute
    assert _run(hovering, 0, 300).count("fire") == 1
    assert _run(hovering, 0, 0).count("fire") == 20


def test_episode_round_trips_through_json() -> None:
    e = Episode(pending_since=None, fired_at=T0, episode_id="alert-x", clear_since=T0)
    assert from_json(to_json(e)) == e
    assert from_json(to_json(IDLE)) == IDLE


@given(
    st.integers(0, 10**6),
    st.integers(0, 600),
    st.integers(0, 600),
    st.none() | st.booleans(),
    st.integers(0, 3600),
)
def test_an_idle_alert_whose_condition_is_false_stays_idle(
    at_s: int, for_s: int, clear_s: int, clear: bool | None, quiet_s: int
) -> None:
    # What lets the alert book skip such readings without stepping them.
    now = T0 + timedelta(seconds=at_s)
    result = step(IDLE, False, now, for_s, clear_s, clear=clear, quiet_s=quiet_s)
    assert result.episode == IDLE and not result.fired and not result.resolved
