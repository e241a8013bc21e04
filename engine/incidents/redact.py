"""Secrets out of every file of an incident bundle, and a report of what was masked.

Two rules, applied to every text before it enters the bundle:

- `secret`: the value of every secret setting (and a URL's password, and each part
  of a notification URL that could be a token), as the run's logs mask them
  (`engine.ops.logs.secret_values`, `engine.alerts.notify.secret_parts`);
- `url_password`: any `scheme://user:password@host` left in a text (a URL of some
  other server) keeps its user and host, never its password.

The report says, per file and rule, how many places were masked and how many
characters they held, so an operator can trust the bundle before sending it on.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from engine.config import Settings
from engine.runtime.redaction import MASK, Redactor, secret_values

_URL_PASSWORD: Final = re.compile(
    r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)(?P<pw>[^\s@/]+)@"
)


@dataclass
class Masked:
    places: int = 0
    characters: int = 0


@dataclass
class BundleRedactor:
    secrets: list[str]
    report: dict[str, dict[str, Masked]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._redactor = Redactor(self.secrets)

    def scrub(self, text: str, where: str) -> str:
        for secret in self._redactor.secrets:
            count = text.count(secret)
            if count:
                self._count(where, "secret", count, count * len(secret))
                text = text.replace(secret, MASK)

        def url(match: re.Match[str]) -> str:
            if match.group("pw") == MASK:
                return match.group(0)
            self._count(where, "url_password", 1, len(match.group("pw")))
            return f"{match.group('head')}{MASK}@"

        return _URL_PASSWORD.sub(url, text)

    def _count(self, where: str, rule: str, places: int, characters: int) -> None:
        masked = self.report.setdefault(where, {}).setdefault(rule, Masked())
        masked.places += places
        masked.characters += characters

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {"file": where, "rule": rule, "places": m.places, "characters": m.characters}
            for where, rules in sorted(self.report.items())
            for rule, m in sorted(rules.items())
        ]


def bundle_redactor(settings: Settings, extra: Iterable[str] = ()) -> BundleRedactor:
    """Every secret this process knows of: the settings' and `extra` (a database password)."""
    from engine.alerts.notify import channels_from_settings, secret_parts
    from engine.errors import ClaireError

    parts: list[str] = []
    # A malformed notification URL: its whole setting is still masked (secret_values).
    with contextlib.suppress(ClaireError):
        parts = [p for p in secret_parts(channels_from_settings(settings)) if not _harmless(p)]
    return BundleRedactor(secret_values(settings, [*parts, *extra]))


# Dotted names ending in a letters-only top-level label, no label longer than 30.
_HOST_NAME: Final = re.compile(r"([a-z0-9-]{1,30}\.)+[a-z]{2,24}", re.IGNORECASE)


def _harmless(part: str) -> bool:
    """A piece of a notification URL that is an address, not a token: an IP address
    (with its port), a dotted host name, a port. Bot tokens and webhook ids have no dots."""
    host, _, port = part.rpartition(":") if part.count(":") == 1 else (part, "", "")
    if port and not (port.isdigit() and int(port) <= 65535):
        return False
    if host.isdigit():
        return int(host) <= 65535
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host.strip("[]"))
        return True
    return bool(_HOST_NAME.fullmatch(host))


__all__ = ["BundleRedactor", "Masked", "bundle_redactor"]
