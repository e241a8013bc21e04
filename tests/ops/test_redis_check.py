"""The Redis check speaks RESP to a real socket: PING, AUTH, and the failures' reasons."""

from __future__ import annotations

import socket

import pytest

from engine.ops.resp import RedisUnreachable, ping
from tests.ops.resp_server import RespServer


def test_ping_gets_pong() -> None:
    with RespServer() as server:
        pong = ping(f"redis://127.0.0.1:{server.port}/0")
    assert pong.where == f"127.0.0.1:{server.port}" and pong.round_trip_ms >= 0
    assert server.commands == [["PING"]]


def test_password_goes_in_auth_and_never_in_the_error() -> None:
    with RespServer(password="s3cret!") as server:
        ping(f"redis://:s3cret%21@127.0.0.1:{server.port}")
        assert server.commands == [["AUTH", "s3cret!"], ["PING"]]
        with pytest.raises(RedisUnreachable) as wrong:
            ping(f"redis://:nope-guess@127.0.0.1:{server.port}")
        with pytest.raises(RedisUnreachable) as missing:
            ping(f"redis://127.0.0.1:{server.port}")
    assert "refused the password" in str(wrong.value) and "nope-guess" not in str(wrong.value)
    assert "needs a password" in str(missing.value)


def test_unreachable_and_malformed_urls_say_why() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RedisUnreachable, match=f"cannot reach Redis at 127.0.0.1:{port}"):
        ping(f"redis://:pw@127.0.0.1:{port}", timeout_s=1)
    with pytest.raises(RedisUnreachable, match="not a redis://"):
        ping("http://:hunter2@127.0.0.1:6379")
