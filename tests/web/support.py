"""Starting `claire web` beside a test, and reading what it serves."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from engine.runtime.files import free_port
from tests.paperrun.runs import claire_process


@contextmanager
def web_server(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`claire web ARGS` on a free port until the block ends; yields its address."""
    port = free_port()
    child = claire_process(["web", "--port", str(port), *args], env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert child.poll() is None, child.communicate()
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "claire web did not answer in 60 s"
            time.sleep(0.1)
        yield url
    finally:
        child.terminate()
        try:
            child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
    assert child.returncode == 0, f"claire web ended with {child.returncode} on SIGTERM"


def web_texts() -> list[str]:
    """The page and its JSON, served in this process from the data folder's run."""
    from starlette.testclient import TestClient

    from engine.config import load_settings
    from engine.report.access import open_data
    from engine.web.app import create_app
    from engine.web.view import ViewSource

    settings = load_settings()
    with open_data(settings, None) as data:
        external = settings.claire_postgres_url is not None
        source = ViewSource(data.store, data.folder, settings, external_db=external)
        with TestClient(create_app(source)) as client:
            return [client.get(path).text for path in ("/", "/api/view")]


def view_json(url: str, **kw: Any) -> Any:
    return httpx.get(url + "/api/view", timeout=10, **kw).json()
