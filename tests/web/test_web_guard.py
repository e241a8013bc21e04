"""`claire web` is read-only and stays on 127.0.0.1 unless a token guards it."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from engine.errors import ConfigError
from engine.web import web_token
from engine.web.app import CSP, create_app
from tests.cli.support import invoke, one_line

TOKEN = "a-long-random-token-for-tests"


class StubSource:
    """A run's view without a database: what the app needs of a ViewSource."""

    def __init__(self) -> None:
        self.built = 0

    def fingerprint(self) -> tuple[Any, ...]:
        return ("run-1", self.built)

    def view(self, since: Any = None) -> dict[str, Any]:
        self.built += 1
        return {"status": {"run_id": "run-1", "data_dir": "/data"}, "panels": None}


def client(token: str | None) -> TestClient:
    return TestClient(create_app(StubSource(), token))  # type: ignore[arg-type]


def test_another_host_without_a_token_refuses_to_start_in_one_sentence() -> None:
    result = invoke("web", "--host", "0.0.0.0")
    assert result.exit_code == 1
    line = one_line(result.output)
    assert "CLAIRE_WEB_TOKEN" in line and "--host 0.0.0.0" in line
    short = invoke("web", "--host", "0.0.0.0", env={"CLAIRE_WEB_TOKEN": "short"})
    assert short.exit_code == 1 and "too short" in one_line(short.output)


def test_the_token_is_needed_off_loopback_and_used_whenever_it_is_set() -> None:
    assert web_token("127.0.0.1", None) is None
    assert web_token("127.0.0.1", TOKEN) == TOKEN
    assert web_token("0.0.0.0", TOKEN) == TOKEN
    with pytest.raises(ConfigError):
        web_token("192.168.1.5", "")


def test_without_the_token_every_route_but_health_answers_401() -> None:
    with client(TOKEN) as c:
        for path in ("/", "/api/view", "/api/stream", "/static/web.js"):
            got = c.get(path)
            assert got.status_code == 401, path
            assert got.headers["content-security-policy"] == CSP
            assert TOKEN not in got.text
        assert c.get("/", headers={"Authorization": "Bearer wrong-token-wrong"}).status_code == 401
        assert c.get("/?token=wrong").status_code == 401
        assert c.get("/health").status_code == 200


def test_the_token_as_bearer_or_once_in_the_address_then_as_a_cookie() -> None:
    with client(TOKEN) as c:
        got = c.get("/api/view", headers={"Authorization": f"Bearer {TOKEN}"})
        assert got.status_code == 200 and got.json()["status"]["run_id"] == "run-1"
        first = c.get(f"/?token={TOKEN}", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/"
        cookie = first.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        page = c.get("/")  # the cookie now
        assert page.status_code == 200 and "run-1" in page.text
        assert TOKEN not in page.text


def test_the_page_is_read_only_with_a_content_security_policy() -> None:
    with client(None) as c:
        page = c.get("/")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in page.text  # scripts come from /static only
        for method in ("post", "put", "delete"):
            assert getattr(c, method)("/api/view").status_code == 405
        assert c.get("/static/uPlot.iife.min.js").status_code == 200
        assert c.get("/static/uPlot.LICENSE").status_code == 200
