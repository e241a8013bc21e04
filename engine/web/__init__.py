"""The web view of a run: a live page over the run's database, read-only.

`claire web` serves it; the Docker stack runs it as `cdb_web`. It shows what
`claire status` shows and the Grafana dashboard's nine panels, from the same SQL.
"""

from __future__ import annotations

from typing import Final

from engine.errors import ConfigError

LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
TOKEN_VARIABLE: Final = "CLAIRE_WEB_TOKEN"  # noqa: S105 - the name, not a token
MIN_TOKEN_LENGTH: Final = 16


def web_token(host: str, token: str | None) -> str | None:
    """The token requests must carry: needed off 127.0.0.1, used whenever it is set."""
    token = (token or "").strip() or None
    if token is None and host not in LOCAL_HOSTS:
        raise ConfigError(
            f"--host {host} shows the run beyond this machine: set {TOKEN_VARIABLE} to a long "
            "random string first (requests then need it), or leave --host at 127.0.0.1."
        )
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"{TOKEN_VARIABLE} is too short: use at least {MIN_TOKEN_LENGTH} random characters."
        )
    return token


__all__ = ["LOCAL_HOSTS", "TOKEN_VARIABLE", "web_token"]
