"""Shared fixtures: a clean environment for every test and the shipped market data."""

from __future__ import annotations

import os
import shutil
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
