"""A Redis PING over a plain socket (RESP), for the pre-flight check.

Redis support in the pipeline comes later; until then, preflight only needs to
know whether the server in CLAIRE_REDIS_URL answers: connect (TLS for
`rediss://`), AUTH when the URL has a password, PING, expect PONG.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from engine.errors import ClaireError
from engine.runtime.urls import redact_url

DEFAULT_PORT = 6379


class RedisUnreachable(ClaireError):
    pass


@dataclass(frozen=True, slots=True)
class Pong:
    where: str  # host:port
    round_trip_ms: float


def _command(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _reply(stream: socket.socket) -> str:
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = stream.recv(1)
        if not chunk:
            raise OSError("the server closed the connection")
        line += chunk
        if len(line) > 4096:
            raise OSError("the server's answer is not RESP")
    return line[:-2].decode(errors="replace")


def ping(url: str, timeout_s: float = 3.0) -> Pong:
    """PING the server of a `redis://` or `rediss://` URL; RedisUnreachable says why not."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise RedisUnreachable(f"CLAIRE_REDIS_URL {shown} is not a redis:// URL.") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise RedisUnreachable(
            f"CLAIRE_REDIS_URL {shown} is not a redis://host:port or rediss://host:port URL."
        )
    host = parts.hostname
    where = f"{host}:{port}"
    started = time.monotonic()
    try:
        raw = socket.create_connection((host, port), timeout=timeout_s)
        stream: socket.socket = raw
        if parts.scheme == "rediss":
            stream = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        with stream:
            stream.settimeout(timeout_s)
            if parts.password is not None:
                user = unquote(parts.username) if parts.username else None
                secret = unquote(parts.password)
                stream.sendall(_command("AUTH", *([user] if user else []), secret))
                answer = _reply(stream)
                if not answer.startswith("+OK"):
                    raise RedisUnreachable(
                        f"Redis at {where} refused the password in CLAIRE_REDIS_URL "
                        f"({answer.split(' ', 1)[0].lstrip('-')})."
                    )
            stream.sendall(_command("PING"))
            answer = _reply(stream)
    except RedisUnreachable:
        raise
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise RedisUnreachable(f"cannot reach Redis at {where}: {reason}.") from None
    if answer.startswith("-NOAUTH"):
        raise RedisUnreachable(f"Redis at {where} needs a password; put it in CLAIRE_REDIS_URL.")
    if answer != "+PONG":
        raise RedisUnreachable(f"Redis at {where} answered {answer[:40]!r} to PING.")
    return Pong(where, (time.monotonic() - started) * 1000)
