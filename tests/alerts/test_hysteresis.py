"""Level alerts clear only at their clear level and fire again only after a quiet period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.alerts.book import AlertBook
from engine.alerts.episodes import IDLE, from_json, step, to_json
from engine.alerts.rules import OPEN_POSITIONS, Reading, rules
from engine.config import load_settings
from engine.events import AlertStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _positions(counts: list[int], **settings: object) -> list[tuple[int, str]]:
    """(minute, firing|resolved) of the open-positions alert over a count per minute."""
    table = rules(load_settings(**settings))
    book = AlertBook(table, 0)
    rule = table[OPEN_POSITIONS]
    out = []
    for minute, count in enumerate(counts):
        value = Decimal(count)
        reading = Reading(
            OPEN_POSITIONS,
            "",
            value > rule.threshold,
            value,
            rule.threshold,
            f"{count} open positions",
            None if rule.clear_level is None else value <= rule.clear_level,
        )
        for alert in book.observe([reading], T0 + timedelta(minutes=minute), None):
            out.append((minute, alert.status.value))
    return out


def test_two_positions_keep_an_alert_over_two_firing_until_one_is_left() -> None:
    counts = [3, 3, 2, 3, 2, 2, 1, 1]
    got = _positions(counts, alert_for_seconds=0, alert_quiet_seconds=0)
    assert got == [(0, "firing"), (6, "resolved")]


def test_a_resolved_warning_fires_again_only_after_the_quiet_period() -> None:
    counts = [3, 1] + [3] * 59 + [3, 3]  # back over the limit at once, for an hour and more
    got = _positions(counts, alert_for_seconds=0, alert_quiet_seconds=3600)
    assert got == [(0, "firing"), (1, "resolved"), (61, "firing")]


def test_without_hysteresis_the_old_storm_comes_back() -> None:
    counts = [3, 2, 3, 2, 3, 2]
    got = _positions(counts, alert_for_seconds=0, alert_quiet_seconds=0, alert_clear_ratio=1)
    assert [s for _, s in got] == ["firing", "resolved"] * 3


def test_a_critical_rule_has_no_quiet_period() -> None:
    table = rules(load_settings())
    assert table["daily_drawdown_high"].quiet_s == 0
    assert table[OPEN_POSITIONS].quiet_s == 86400
    assert table[OPEN_POSITIONS].clear_level == Decimal("1.6")
    assert table["exposure_high"].clear_level == Decimal("0.28") * Decimal("0.8")


@given(
    st.lists(st.tuples(st.booleans(), st.booleans()), max_size=60),
    st.integers(0, 600),
    st.integers(0, 600),
    st.integers(0, 3600),
)
def test_episodes_alternate_and_survive_a_checkpoint(
    readings: list[tuple[bool, bool]], for_s: int, clear_s: int, quiet_s: int
) -> None:
    """Fire and resolve alternate, and a saved episode steps on exactly like the live one."""
    episode, restored, seen = IDLE, IDLE, []
    for i, (active, low) in enumerate(readings):
        clear = low and not active
        now = T0 + timedelta(minutes=i)
        result = step(episode, active, now, for_s, clear_s, clear=clear, quiet_s=quiet_s)
        again = step(restored, active, now, for_s, clear_s, clear=clear, quiet_s=quiet_s)
        assert (result.fired, result.resolved) == (again.fired, again.resolved)
        episode = result.episode
        restored = from_json(to_json(again.episode))
        if result.fired or result.resolved:
            seen.append("fire" if result.fired else "resolve")
    assert seen == ["fire", "resolve"] * (len(seen) // 2) + (["fire"] if len(seen) % 2 else [])


def test_a_checkpoint_from_before_quiet_periods_still_loads() -> None:
    old = [None, T0.isoformat(), None, "alert-1"]
    episode = from_json(old)
    assert episode.firing and episode.resolved_at is None


def test_resolved_alerts_keep_their_status() -> None:
    book = AlertBook(rules(load_settings(alert_for_seconds=0)), 0)
    rule = book.table[OPEN_POSITIONS]

    def reading(count: int) -> Reading:
        value = Decimal(count)
        return Reading(
            OPEN_POSITIONS, "", value > rule.threshold, value, rule.threshold, "", value <= 1
        )

    fired = book.observe([reading(3)], T0, None)
    resolved = book.observe([reading(0)], T0 + timedelta(minutes=1), None)
    assert [a.status for a in fired + resolved] == [AlertStatus.FIRING, AlertStatus.RESOLVED]
    assert book.firing() == []
