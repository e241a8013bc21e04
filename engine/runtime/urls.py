"""Connection URLs without their secrets, for logs, errors and reprs.

A PostgreSQL or Redis URL can carry a password in three places: the user info
(`postgresql://user:secret@host/db`), the query string (`?password=secret`) and,
for libpq key/value strings, a `password=secret` pair. `redact_url` masks all
three, and never raises: a string it cannot parse is masked as a whole rather
than echoed, because showing a malformed secret is still showing a secret.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

MASK: Final = "***"

# libpq key/value form: password='it''s' or password=plain
_KEYWORD_PASSWORD: Final = re.compile(r"(\bpassword\s*=\s*)('(?:\\.|''|[^'])*'|\S+)", re.IGNORECASE)
_SECRET_QUERY_KEYS: Final = frozenset(
    {"password", "pass", "passwd", "secret", "token", "sslpassword"}
)


class SecretUrl(str):
    """A URL that shows itself redacted in `repr`: tracebacks and debuggers print locals
    with `repr`, so a connection string held in one never leaks its password there.
    `str()` and f-strings give the real URL, which is what drivers need."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(redact_url(str(self)))


def redact_url(url: str | None) -> str:
    """The URL with every password replaced by `***`; safe to log or show."""
    if not url:
        return ""
    if "://" not in url:
        # Not a URL: a libpq key/value string, or garbage we must not echo.
        if "=" in url:
            return _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + MASK, url)
        return MASK
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, hostinfo = netloc.rsplit("@", 1)
            if ":" in userinfo:
                user = userinfo.split(":", 1)[0]
                netloc = f"{user}:{MASK}@{hostinfo}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(key.lower() in _SECRET_QUERY_KEYS for key, _ in pairs):
                query = urlencode(
                    [(k, MASK if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs],
                    safe="/*",
                )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return MASK


def password_of(url: str | None) -> str | None:
    """The password in a URL's user info, decoded, or None; used to scrub error text."""
    if not url or "://" not in url:
        match = _KEYWORD_PASSWORD.search(url or "")
        return match.group(2).strip("'") if match else None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    found = unquote(parts.password) if parts.password else None
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in _SECRET_QUERY_KEYS and value:
            found = value
    return found or None


def scrub(text: str, url: str | None) -> str:
    """`text` with the URL's password (raw and percent-encoded) removed.

    Driver messages sometimes quote the connection string they were given; this
    is the last line of defence before such a message reaches a log or a user.
    """
    secret = password_of(url)
    if url:
        text = text.replace(url, redact_url(url))
    if secret:
        # Longest first, so a raw password inside its own encoded form is not half-replaced.
        for form in sorted({secret, quote(secret, safe=""), quote(secret)}, key=len, reverse=True):
            text = text.replace(form, MASK)
    return text


def with_database(url: str, database: str) -> str:
    """The same server and credentials, another database (for tests and backup checks)."""
    if "://" not in url:
        raise ValueError("with_database needs a postgresql:// URL")
    parts = urlsplit(url)
    return SecretUrl(
        urlunsplit((parts.scheme, parts.netloc, "/" + quote(database), parts.query, ""))
    )
