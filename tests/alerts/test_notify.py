"""Notifications: channels and their minimum severity, a queue that never blocks, retries,
failing channels skipped, and real delivery to a local webhook through apprise."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from engine.alerts.notify import (
    Channel,
    Message,
    Notifier,
    alert_message,
    apprise_send,
    notify_test,
    parse_channels,
)
from engine.config import load_settings
from engine.errors import ConfigError
from engine.events import Alert, AlertStatus, Severity
from tests.alerts.receiver import closed_port, receiver

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _alert(severity: Severity = Severity.CRITICAL, event_id: str = "alert-1") -> Alert:
    return Alert(
        event_id=event_id,
        ts=T0,
        cause_id=None,
        severity=severity,
        rule="daily_drawdown_high",
        message="daily drawdown 4.80 % (alert above 4.50 %)",
        episode_id=event_id,
    )


def test_channels_take_their_minimum_severity_off_the_url() -> None:
    [a, b] = parse_channels(
        "json://127.0.0.1:9/hook?min_severity=critical&x=1, tgram://123456:abcdef/777"
    )
    assert (a.label, a.min_severity, a.url) == (
        "#1 json",
        Severity.CRITICAL,
        "json://127.0.0.1:9/hook?x=1",
    )
    assert (b.label, b.min_severity) == ("#2 tgram", Severity.INFO)
    assert a.wants(Severity.CRITICAL) and not a.wants(Severity.WARNING)
    assert "abcdef" not in repr(b)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("json://h/p,nonsense-token-XYZ", "channel #2 is not a URL"),
        ("foo://token-XYZ/chat", "channel #1 (foo://...) is not a notification URL"),
        ("json://h/p?min_severity=loud", "min_severity='loud' is not info, warning or critical"),
    ],
)
def test_a_bad_channel_is_named_by_its_number_never_by_its_url(text: str, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_channels(text)
    assert said in str(caught.value)
    assert "token-XYZ" not in str(caught.value)


def test_alert_messages_carry_the_alert_and_its_resolution() -> None:
    firing = alert_message(_alert(), "run-1")
    assert firing.title == "claire CRITICAL: daily_drawdown_high"
    assert "daily drawdown 4.80 %" in firing.body and "run run-1" in firing.body
    resolved = Alert(
        event_id="alert-2",
        ts=T0,
        cause_id=None,
        severity=Severity.CRITICAL,
        rule="daily_drawdown_high",
        message="resolved: daily drawdown 1.00 %",
        status=AlertStatus.RESOLVED,
        episode_id="alert-1",
    )
    assert alert_message(resolved).title == "claire resolved: daily_drawdown_high"
    assert alert_message(resolved).resolved


def test_submit_never_blocks_a_full_queue_drops_and_counts() -> None:
    gate = threading.Event()

    def slow(channel: Channel, message: Message) -> bool:
        gate.wait(5)
        return True

    notifier = Notifier(parse_channels("json://127.0.0.1:9/x"), queue_size=2, send=slow).start()
    try:
        started = time.monotonic()
        accepted = [notifier.submit(Message("t", f"m{i}")) for i in range(10)]
        assert time.monotonic() - started < 0.5
        assert accepted.count(True) <= 3 and notifier.dropped >= 7
    finally:
        gate.set()
        notifier.close()


def test_retries_with_backoff_then_the_channel_is_skipped_and_others_go_on() -> None:
    calls: list[str] = []

    def send(channel: Channel, message: Message) -> bool:
        calls.append(channel.label)
        if channel.index == 1:
            raise OSError("connection refused by https://secret-host/token")
        return True

    channels = parse_channels("json://127.0.0.1:9/bad,json://127.0.0.1:9/good")
    notifier = Notifier(channels, retries=2, backoff_s=0.01, skip_s=60, send=send)
    first = notifier.deliver(Message("t", "one"))
    assert first == {"#1 json": False, "#2 json": True}
    assert calls.count("#1 json") == 3  # the first try and two retries
    second = notifier.deliver(Message("t", "two"))
    assert second == {"#2 json": True}  # the failing channel is skipped for a while
    [bad, good] = notifier.status()
    assert bad["failing"] and bad["failed"] == 1 and bad["skipped"] == 1
    assert bad["last_error"] == "OSError" and "secret-host" not in str(notifier.status())
    assert good["sent"] == 2 and not good["failing"]


def test_minimum_severity_filters_per_channel() -> None:
    got: list[str] = []
    channels = parse_channels("json://h:1/a?min_severity=critical,json://h:1/b")
    notifier = Notifier(channels, send=lambda c, m: got.append(c.label) or True)
    notifier.deliver(Message("t", "warn", Severity.WARNING))
    notifier.deliver(Message("t", "crit", Severity.CRITICAL))
    assert got == ["#2 json", "#1 json", "#2 json"]


def test_an_alert_is_notified_once_however_often_it_is_seen() -> None:
    notifier = Notifier(parse_channels("json://h:1/a"), send=lambda c, m: True)
    assert notifier.notify_alert(_alert())
    assert not notifier.notify_alert(_alert())
    assert notifier.notify_alert(_alert(event_id="alert-2"))


def test_apprise_delivers_to_a_local_webhook() -> None:
    with receiver() as hook:
        [channel] = parse_channels(hook.url())
        assert apprise_send(channel, alert_message(_alert(), "run-1"))
        [post] = hook.wait_for(1)
    assert post["title"] == "claire CRITICAL: daily_drawdown_high"
    assert "daily drawdown 4.80 %" in post["message"] and post["type"] == "failure"


def test_worker_thread_delivers_queued_alerts_to_the_webhook() -> None:
    with receiver() as hook:
        notifier = Notifier(parse_channels(hook.url()), retries=0).start()
        notifier.notify_alert(_alert())
        notifier.close(timeout_s=10)
        assert [p["title"] for p in hook.posts] == ["claire CRITICAL: daily_drawdown_high"]


def test_notify_test_says_which_channel_failed() -> None:
    with receiver() as hook:
        urls = f"{hook.url()},json://127.0.0.1:{closed_port()}/down"
        results = notify_test(load_settings(claire_notify_urls=SecretStr(urls)))
        assert [(r["channel"], r["ok"]) for r in results] == [("#1 json", True), ("#2 json", False)]
        assert results[1]["error"] and "claire test notification" in hook.posts[0]["title"]
