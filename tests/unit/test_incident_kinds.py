"""The pure parts of incident response: types, ids, the alert mapping, the timeline,
redaction, and the trigger that opens one incident per alert episode."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.alerts.incidents import IncidentTrigger
from engine.alerts.rules import rules
from engine.config import load_settings
from engine.errors import ConfigError
from engine.events import Alert, AlertStatus, Severity
from engine.incident_kinds import (
    ALERT_RULES,
    TYPE_NAMES,
    IncidentType,
    check_incident_id,
    incident_id,
    next_incident_id,
    parse_alert_mapping,
    parse_incident_id,
)
from engine.incidents.redact import BundleRedactor
from engine.incidents.timeline import LocalTimeline, TimelineEvent, next_event, render_lines
from engine.runtime.redaction import MASK

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


# --- types -----------------------------------------------------------------------------


def test_the_six_types_and_their_two_spellings() -> None:
    assert TYPE_NAMES == (
        "service-crash",
        "risk-limit",
        "unresponsive",
        "database-outage",
        "resource-shortage",
        "data-stop",
    )
    from engine.store.store import INCIDENT_TYPES

    assert {t.stored for t in IncidentType} == INCIDENT_TYPES  # the table's CHECK
    assert IncidentType.parse("unresponsive_service") is IncidentType.UNRESPONSIVE
    assert IncidentType.from_stored("unresponsive_service").label == "unresponsive"


@given(st.sampled_from(list(IncidentType)), st.lists(st.booleans(), min_size=30, max_size=30))
def test_a_type_parses_in_any_letter_case_and_either_spelling(
    kind: IncidentType, upper: list[bool]
) -> None:
    for spelling in (kind.label, kind.stored):
        mixed = "".join(c.upper() if u else c for c, u in zip(spelling, upper, strict=False))
        assert IncidentType.parse(f"  {mixed} ") is kind


@given(st.text(max_size=30))
def test_an_unknown_type_names_every_valid_one(text: str) -> None:
    known = {n for t in IncidentType for n in (t.label, t.stored, t.stored.replace("_", "-"))}
    if text.strip().lower() in known:
        return
    with pytest.raises(ConfigError) as caught:
        IncidentType.parse(text)
    message = str(caught.value)
    assert message.startswith("incident type ") and message.endswith(".")
    assert all(name in message for name in TYPE_NAMES)


# --- ids -------------------------------------------------------------------------------


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(9999, 12, 31)), st.integers(1, 9999))
def test_an_id_reads_back(day: date, number: int) -> None:
    text = incident_id(day, number)
    assert parse_incident_id(text) == (day, number)
    assert check_incident_id(text) == text


@given(
    st.lists(
        st.tuples(
            st.dates(min_value=date(2000, 1, 1), max_value=date(2999, 12, 31)),
            st.integers(1, 9999),
        ),
        min_size=2,
        max_size=20,
        unique=True,
    )
)
def test_ids_sort_as_text_in_time_order(pairs: list[tuple[date, int]]) -> None:
    ids = [incident_id(d, n) for d, n in pairs]
    assert sorted(ids) == [incident_id(d, n) for d, n in sorted(pairs)]


@given(st.sets(st.integers(1, 500), max_size=20))
def test_the_next_id_follows_the_day_s_highest(numbers: set[int]) -> None:
    day = date(2026, 11, 23)
    other = [incident_id(date(2026, 11, 22), 900), "INC-garbage", "notes.txt"]
    existing = [incident_id(day, n) for n in numbers] + other
    assert next_incident_id(day, existing) == incident_id(day, max(numbers, default=0) + 1)


def test_malformed_ids_are_refused() -> None:
    for text in ("42", "INC-2026-0001", "INC-20261332-0001", "inc-20261123-1"):
        assert parse_incident_id(text) is None
        with pytest.raises(ConfigError, match="not an incident id like INC-"):
            check_incident_id(text)
    with pytest.raises(ValueError):
        incident_id(date(2026, 1, 1), 0)


# --- the alert mapping -----------------------------------------------------------------


def test_every_rule_of_the_alarm_table_can_open_an_incident() -> None:
    assert set(rules(load_settings())) <= ALERT_RULES


def test_the_mapping_reads_rule_type_pairs() -> None:
    text = " daily_drawdown=Risk-Limit, data_stop=data-stop,service_down=service_crash,"
    assert parse_alert_mapping(text) == {
        "daily_drawdown": IncidentType.RISK_LIMIT,
        "data_stop": IncidentType.DATA_STOP,
        "service_down": IncidentType.SERVICE_CRASH,
    }
    assert parse_alert_mapping("") == {} and parse_alert_mapping("off") == {}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("meteor=risk-limit", "alert rule 'meteor' is unknown"),
        ("data_stop=meteor", "incident type 'meteor' is unknown"),
        ("data_stop", "is not RULE=TYPE"),
        ("=risk-limit", "is not RULE=TYPE"),
        ("data_stop=data-stop,data_stop=risk-limit", "mapped twice"),
    ],
)
def test_a_bad_mapping_is_one_clear_error_at_start(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_alert_mapping(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(incident_on_alert=text)
    message = str(caught.value)
    assert message.startswith("INCIDENT_ON_ALERT=") and why in message
    assert message.endswith("fix it in the environment or .env.")


def test_the_setting_is_off_unless_set() -> None:
    assert load_settings().incident_on_alert_map() == {}
    chosen = load_settings(incident_on_alert="data_stop=data-stop")
    assert chosen.incident_on_alert_map() == {"data_stop": IncidentType.DATA_STOP}


# --- the timeline ----------------------------------------------------------------------


def test_the_timeline_renders_one_line_per_event_in_order() -> None:
    events = [
        TimelineEvent(2, T0 + timedelta(seconds=1), "bundle", "bundle INC-1: 20 files"),
        TimelineEvent(1, T0, "opened", "opened by ops@host:\n  a spike"),
        TimelineEvent(3, T0 + timedelta(seconds=2), "action", "halted"),
    ]
    assert render_lines(events) == [
        "2026-11-23 03:00:00 UTC  opened  opened by ops@host: a spike",
        "2026-11-23 03:00:01 UTC  bundle  bundle INC-1: 20 files",
        "2026-11-23 03:00:02 UTC  action  halted",
    ]


@given(st.lists(st.sampled_from(["opened", "bundle", "action", "note", "closed"]), max_size=12))
def test_events_are_numbered_one_after_the_other(kinds: list[str]) -> None:
    events: list[TimelineEvent] = []
    for n, kind in enumerate(kinds):
        events.append(next_event(events, T0 + timedelta(seconds=n), kind, f"event {n}"))
    assert [e.seq for e in events] == list(range(1, len(kinds) + 1))
    assert [TimelineEvent.from_json(e.as_json()) for e in events] == events


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="kind 'exploded'"):
        TimelineEvent(1, T0, "exploded", "boom")


def test_the_local_file_keeps_the_events_and_skips_a_torn_last_line(tmp_path: Path) -> None:
    timeline = LocalTimeline(tmp_path / "INC-1.timeline.jsonl")
    timeline.append(T0, "opened", "opened", {"type": "risk-limit"})
    timeline.append(T0, "action", "halted")
    with timeline.path.open("a") as f:
        f.write('{"seq": 3, "ts": "2026-')  # a crash in the middle of a write
    assert [(e.seq, e.kind) for e in timeline.events()] == [(1, "opened"), (2, "action")]
    assert timeline.path.stat().st_mode & 0o777 == 0o600


# --- redaction -------------------------------------------------------------------------

SECRET = st.text(alphabet="abcdefXYZ0123456789", min_size=6, max_size=20)


@given(SECRET, st.text(max_size=40), st.text(max_size=40))
def test_a_secret_never_survives_and_is_counted(secret: str, before: str, after: str) -> None:
    redactor = BundleRedactor([secret])
    text = redactor.scrub(f"{before}{secret}{after}{secret}", "logs/x")
    assert secret not in text
    [row] = [r for r in redactor.as_json() if r["rule"] == "secret"]
    assert row["file"] == "logs/x" and row["places"] >= 2
    assert row["characters"] == row["places"] * len(secret)


@given(SECRET)
def test_a_url_password_is_masked_and_the_host_kept(password: str) -> None:
    redactor = BundleRedactor([])
    text = redactor.scrub(f"dsn postgresql://claire:{password}@db.example:5432/claire ok", "f")
    assert text == f"dsn postgresql://claire:{MASK}@db.example:5432/claire ok"
    assert redactor.as_json() == [
        {"file": "f", "rule": "url_password", "places": 1, "characters": len(password)}
    ]


# --- one incident per alert episode, off the pipeline's path ----------------------------


def alert(rule: str, episode: str | None, status: AlertStatus = AlertStatus.FIRING) -> Alert:
    return Alert(
        event_id=f"a-{rule}-{episode}-{status.value}",
        ts=T0,
        cause_id=None,
        severity=Severity.CRITICAL,
        rule=rule,
        message="m",
        detail={},
        status=status,
        episode_id=episode,
    )


def test_the_trigger_opens_one_incident_per_firing_episode_in_its_own_thread() -> None:
    seen: list[tuple[IncidentType, str, str]] = []
    main = threading.get_ident()

    def open_incident(kind: IncidentType, fired: Alert) -> None:
        assert threading.get_ident() != main  # never on the pipeline's thread
        seen.append((kind, fired.rule, fired.episode_id or fired.event_id))

    trigger = IncidentTrigger({"data_stop": IncidentType.DATA_STOP}, open_incident)
    assert trigger.on_alert(alert("data_stop", "e1"))
    assert not trigger.on_alert(alert("data_stop", "e1"))  # the same episode
    assert not trigger.on_alert(alert("data_stop", "e1", AlertStatus.RESOLVED))
    assert not trigger.on_alert(alert("exposure_high", "e2"))  # not mapped
    assert trigger.on_alert(alert("data_stop", "e3"))
    assert trigger.on_alert(alert("data_stop", None))  # a one-off alert: its own episode
    assert trigger.close(10)
    assert seen == [
        (IncidentType.DATA_STOP, "data_stop", "e1"),
        (IncidentType.DATA_STOP, "data_stop", "e3"),
        (IncidentType.DATA_STOP, "data_stop", "a-data_stop-None-firing"),
    ]
    assert trigger.opened == 3 and trigger.failed == 0


def test_an_incident_that_fails_to_open_is_counted_and_the_next_still_opens() -> None:
    calls: list[str] = []

    def open_incident(kind: IncidentType, fired: Alert) -> None:
        calls.append(fired.episode_id or "")
        if fired.episode_id == "bad":
            raise RuntimeError("disk full")

    trigger = IncidentTrigger({"service_down": IncidentType.SERVICE_CRASH}, open_incident)
    trigger.on_alert(alert("service_down", "bad"))
    trigger.on_alert(alert("service_down", "good"))
    assert trigger.close(10)
    assert calls == ["bad", "good"] and trigger.failed == 1 and trigger.opened == 1
