"""A real browser for the web view's tests: Debian's chromium, driven by Playwright.

Playwright's own browser download is not used: the tests find `chromium` on the
PATH, and when it is missing and they run as root, install Debian's package first
(as the stack tests install docker.io). They are skipped, saying why, only when no
chromium can be had.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
# Screenshots the tests take; CI keeps the folder as an artifact.
ARTIFACTS = Path(os.environ.get("CLAIRE_TEST_ARTIFACTS", REPO / "build" / "test-artifacts"))
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _find() -> str | None:
    found = os.environ.get("CLAIRE_CHROMIUM") or next(filter(None, map(shutil.which, NAMES)), None)
    return found


def _install_chromium() -> str | None:
    """Debian's chromium, when missing and we are root; the reason when not possible."""
    if os.geteuid() != 0:
        return "chromium is not installed and the tests do not run as root to install it"
    if not shutil.which("apt-get"):
        return "chromium is not installed and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]
    for args in (["apt-get", "update", "-qq"], install):
        done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            return f"installing chromium failed: {done.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    found = _find()
    if found is None:
        reason = _install_chromium()
        found = _find()
        if found is None:
            pytest.skip(f"no browser for the web view's tests: {reason or 'no chromium'}")
    return found


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """Chromium, for one module's tests: Playwright's sync API keeps an event loop
    running on this thread while it is open, and the asyncio tests a worker runs after
    this module (the live feed's) need the thread without one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path,
            # As root chromium needs --no-sandbox; the page is our own, on 127.0.0.1.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
