"""Shared fixtures: a clean environment for every test and the shipped market data."""

from __future__ import annotations

import os
import random
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import Settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CLAIRE_SHARED_DATA", REPO.parent / "shared" / "data"))
MARKET = SHARED_DATA / "market"
FOUR_SYMBOLS = [MARKET / f"{s}_BTC-5m.csv" for s in ("ETH", "LTC", "ADA", "DASH")]

_SETTING_NAMES = {name.upper() for name in Settings.model_fields} | {"CANDLE_CLOSE_GRACE_MS"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's settings, `.env` or data folder."""
    for name in list(os.environ):
        if (name.startswith("CLAIRE_") and name != "CLAIRE_SHARED_DATA") or name in _SETTING_NAMES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")
    # Runs serve /health and /metrics on 8000 by default; tests that check it pick a port.
    monkeypatch.setenv("CLAIRE_HTTP_PORT", "off")
    # Services listen on 8000-8006 by default, where a Docker stack or another run on this
    # machine may be: every test's services get seven free ports of their own.
    monkeypatch.setenv("CLAIRE_SERVICE_PORT_BASE", str(free_port_range(7)))


def free_port_range(count: int) -> int:
    """The first of `count` consecutive ports free on 127.0.0.1 right now."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - count)
        if all(_port_free(base + n) for n in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports found on 127.0.0.1")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture(autouse=True)
def claire_home(monkeypatch: pytest.MonkeyPatch, clean_environment: None) -> Iterator[Path]:
    """A data folder of the test's own, never the user's.

    Made with mkdtemp under /tmp rather than pytest's tmp_path: as root the embedded
    server runs as an unprivileged account, which must be able to reach the folder
    (pytest's base folder is private), and the socket path must stay short.
    """
    home = Path(tempfile.mkdtemp(prefix="claire-home-"))
    os.chmod(home, 0o711)
    monkeypatch.setenv("CLAIRE_HOME", str(home))
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def four_symbols() -> list[Path]:
    missing = [p for p in FOUR_SYMBOLS if not p.is_file()]
    assert not missing, f"shipped market data not found: {missing}; set CLAIRE_SHARED_DATA"
    return FOUR_SYMBOLS


SERVICES_LANES = 2  # supervised services runs at once: seven processes and a database each


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """When the suite runs in several workers (pytest-xdist), the tests that share one
    Docker engine run in one worker, and the tests that start a supervised services run
    in `SERVICES_LANES` workers: more of them at once on a small machine only starve each
    other (and their bounds in seconds). Without xdist they run in this one process anyway.

    Both come first: they are the longest groups, so the other workers share out the
    rest of the suite while these run.
    """
    docker = [item for item in items if item.get_closest_marker("docker")]
    services = [
        item
        for item in items
        if item.get_closest_marker("services") and not item.get_closest_marker("docker")
    ]
    heavy = {id(item) for item in docker + services}
    items[:] = docker + services + [item for item in items if id(item) not in heavy]
    if config.pluginmanager.hasplugin("xdist"):
        for item in docker:
            item.add_marker(pytest.mark.xdist_group("docker"))
        for n, item in enumerate(services):
            item.add_marker(pytest.mark.xdist_group(f"services-{n % SERVICES_LANES}"))
