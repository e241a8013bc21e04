"""Notifications through apprise: every channel of `CLAIRE_NOTIFY_URLS`, never in the way.

`CLAIRE_NOTIFY_URLS` is a secret: apprise URLs separated by commas (`tgram://token/chat`,
`discord://id/token`, `json://host:port/path`, and whatever else apprise supports).
A URL may end in `min_severity=info|warning|critical` (a query parameter, taken
off before apprise sees the URL): that channel gets only messages at least that
severe. Channels are named `#N scheme` in logs and status, never by their URL.

Sending never blocks trading: `submit` puts a message in a bounded queue (a full
queue drops it and counts it) and a worker thread delivers it, retrying with
exponential backoff. A channel that still fails is recorded and skipped for a
while; the other channels go on. What failed is said in `problems()`, which the
run's summary and `claire status` show, as for a backup that failed.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from engine.config import Settings
from engine.errors import ConfigError
from engine.events import Alert, AlertStatus, Severity
from engine.plain import iso_utc

log = logging.getLogger(__name__)
# apprise logs whole URLs, tokens included, at debug level.
logging.getLogger("apprise").setLevel(logging.WARNING)

RANK: Final = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
PARAM: Final = "min_severity"


@dataclass(frozen=True, slots=True)
class Channel:
    index: int
    scheme: str
    url: str = field(repr=False)  # a secret: tokens live in it
    min_severity: Severity = Severity.INFO

    @property
    def label(self) -> str:
        return f"#{self.index} {self.scheme}"

    def wants(self, severity: Severity) -> bool:
        return RANK[severity] >= RANK[self.min_severity]


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    severity: Severity = Severity.INFO
    resolved: bool = False


def _take_min_severity(url: str, index: int) -> tuple[str, Severity]:
    base, sep, query = url.partition("?")
    if not sep:
        return url, Severity.INFO
    kept, chosen = [], Severity.INFO
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name.lower() != PARAM:
            kept.append(part)
            continue
        try:
            chosen = Severity(value.strip().lower())
        except ValueError:
            raise ConfigError(
                f"CLAIRE_NOTIFY_URLS channel #{index}: {PARAM}={value!r} is not info, warning "
                "or critical."
            ) from None
    return base + ("?" + "&".join(kept) if kept else ""), chosen


def parse_channels(text: str) -> list[Channel]:
    """Channels from `CLAIRE_NOTIFY_URLS`; a bad one is an error naming its number only."""
    import apprise

    channels = []
    parts = [p.strip() for p in text.split(",") if p.strip()]
    for index, part in enumerate(parts, start=1):
        scheme, sep, _ = part.partition("://")
        if not sep or not scheme.isascii() or not scheme.replace("+", "").isalnum():
            raise ConfigError(
                f"CLAIRE_NOTIFY_URLS channel #{index} is not a URL like json://host/path or "
                "tgram://token/chat; fix it in the environment or .env."
            )
        url, severity = _take_min_severity(part, index)
        apprise_logger = logging.getLogger("apprise")
        was = apprise_logger.disabled
        apprise_logger.disabled = True  # its refusal would print the URL
        try:
            known = apprise.Apprise.instantiate(url) is not None
        finally:
            apprise_logger.disabled = was
        if not known:
            raise ConfigError(
                f"CLAIRE_NOTIFY_URLS channel #{index} ({scheme}://...) is not a notification URL "
                "apprise understands; see apprise's list of services and fix it."
            )
        channels.append(Channel(index, scheme.lower(), url, severity))
    return channels


def channels_from_settings(settings: Settings) -> list[Channel]:
    secret = settings.claire_notify_urls
    return parse_channels(secret.get_secret_value()) if secret is not None else []


def secret_parts(channels: Iterable[Channel]) -> list[str]:
    """Everything in the channels' URLs that could be a token, for log redaction."""
    out: list[str] = []
    for channel in channels:
        out.append(channel.url)
        rest = channel.url.partition("://")[2]
        for piece in rest.replace("?", "/").replace("&", "/").replace("@", "/").split("/"):
            for bit in (piece, *piece.split(":"), piece.partition("=")[2]):
                if len(bit) >= 6:
                    out.append(bit)
    return out


_TYPES: Final = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.CRITICAL: "failure"}


def apprise_send(channel: Channel, message: Message, timeout_s: float = 10.0) -> bool:
    """Deliver one message to one channel; True when apprise says it went out."""
    import apprise

    sender = apprise.Apprise()
    if not sender.add(channel.url):
        return False
    kind = "success" if message.resolved else _TYPES[message.severity]
    return bool(sender.notify(body=message.body, title=message.title, notify_type=kind))


def alert_message(alert: Alert, run_id: str = "") -> Message:
    resolved = alert.status is AlertStatus.RESOLVED
    head = "resolved" if resolved else alert.severity.value.upper()
    where = f"run {run_id}, " if run_id else ""
    return Message(
        title=f"claire {head}: {alert.rule}",
        body=f"{alert.message}\n{where}{iso_utc(alert.ts)}",
        severity=alert.severity,
        resolved=resolved,
    )


@dataclass
class ChannelState:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    failing_since: float | None = None
    skip_until: float = 0.0
    last_error: str = ""


Sender = Callable[[Channel, Message], bool]
_STOP: Final = object()


class Notifier:
    def __init__(
        self,
        channels: list[Channel],
        *,
        queue_size: int = 1000,
        retries: int = 3,
        backoff_s: float = 1.0,
        skip_s: float = 300.0,
        send: Sender = apprise_send,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channels = channels
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._retries = retries
        self._backoff_s = backoff_s
        self._skip_s = skip_s
        self._send = send
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self.state = {c.label: ChannelState() for c in channels}
        self.dropped = 0

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Notifier:
        return cls(
            channels_from_settings(settings),
            queue_size=settings.claire_notify_queue,
            retries=settings.claire_notify_retries,
            **kwargs,
        )

    # --- producer side: never blocks --------------------------------------------------

    def submit(self, message: Message) -> bool:
        if not self.channels or self._stop.is_set():
            return False
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self.dropped += 1
            log.warning(
                "notification queue full; message dropped",
                extra={"event": "notify_dropped", "dropped": self.dropped},
            )
            return False
        return True

    def notify_alert(self, alert: Alert, run_id: str = "") -> bool:
        """Queue an alert's message once, however often the alert is seen."""
        with self._lock:
            if alert.event_id in self._seen:
                return False
            self._seen[alert.event_id] = None
            if len(self._seen) > 10000:
                self._seen.popitem(last=False)
        return self.submit(alert_message(alert, run_id))

    # --- worker ---------------------------------------------------------------------

    def start(self) -> Notifier:
        if self.channels and self._thread is None:
            self._thread = threading.Thread(target=self._work, name="claire-notify", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued for up to `timeout_s`, then stop the worker."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout_s)
        self._thread.join(timeout=timeout_s)
        self._stop.set()
        self._thread.join(timeout=1.0)
        self._thread = None

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            self.deliver(item)

    def deliver(self, message: Message) -> dict[str, bool]:
        """Send to every channel that wants it; a failing channel is skipped for a while."""
        results: dict[str, bool] = {}
        for channel in self.channels:
            if not channel.wants(message.severity):
                continue
            state = self.state[channel.label]
            if self._monotonic() < state.skip_until:
                state.skipped += 1
                continue
            results[channel.label] = self._attempts(channel, message, state)
        return results

    def _attempts(self, channel: Channel, message: Message, state: ChannelState) -> bool:
        for attempt in range(self._retries + 1):
            if attempt and self._stop.wait(self._backoff_s * 2 ** (attempt - 1)):
                break
            try:
                ok = self._send(channel, message)
                error = "" if ok else "the service refused or could not be reached"
            except Exception as exc:  # a channel's bug must not reach trading
                ok, error = False, type(exc).__name__
            if ok:
                state.sent += 1
                if state.failing_since is not None:
                    log.info(
                        "notification channel works again",
                        extra={"event": "notify_recovered", "channel": channel.label},
                    )
                state.failing_since, state.last_error = None, ""
                return True
            state.last_error = error
        state.failed += 1
        if state.failing_since is None:
            state.failing_since = self._monotonic()
        state.skip_until = self._monotonic() + self._skip_s
        log.warning(
            f"notification channel {channel.label} failed after {self._retries + 1} tries "
            f"({state.last_error}); skipped for {self._skip_s:g} s",
            extra={"event": "notify_failed", "channel": channel.label},
        )
        return False

    def send_now(self, message: Message) -> dict[str, bool]:
        """Every channel, whatever its minimum severity, now and in this thread (a test)."""
        results = {}
        for channel in self.channels:
            try:
                results[channel.label] = bool(self._send(channel, message))
            except Exception:
                results[channel.label] = False
        return results

    def problems(self) -> list[str]:
        """A sentence for each channel that failed to deliver, and for dropped messages."""
        out = [
            f"notifications to channel {c.label} failed "
            f"({self.state[c.label].last_error or 'not delivered'}); check the channel with "
            "`claire notify test` (see logs/claire.log)"
            for c in self.channels
            if self.state[c.label].failed
        ]
        if self.dropped:
            out.append(
                "notifications were dropped because their queue was full; raise "
                "CLAIRE_NOTIFY_QUEUE or check the channels with `claire notify test`"
            )
        return out

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "channel": c.label,
                "min_severity": c.min_severity.value,
                "sent": self.state[c.label].sent,
                "failed": self.state[c.label].failed,
                "skipped": self.state[c.label].skipped,
                "failing": self.state[c.label].failing_since is not None,
                "last_error": self.state[c.label].last_error,
            }
            for c in self.channels
        ]


def notify_test(settings: Settings, send: Sender = apprise_send) -> list[dict[str, Any]]:
    """A test message to every channel now; which went out and which failed."""
    from engine.runtime.redaction import masked

    channels = channels_from_settings(settings)
    message = Message(
        title="claire test notification",
        body="This is a test from claire notify test: this channel works.",
        severity=Severity.INFO,
    )
    results = []
    with masked(settings, secret_parts(channels)):
        for channel in channels:
            try:
                ok, error = bool(send(channel, message)), ""
            except Exception as exc:  # reported per channel, never raised
                ok, error = False, type(exc).__name__
            if not ok and not error:
                error = "the service refused the message or could not be reached"
            results.append(
                {
                    "channel": channel.label,
                    "min_severity": channel.min_severity.value,
                    "ok": ok,
                    "error": error,
                }
            )
    return results
