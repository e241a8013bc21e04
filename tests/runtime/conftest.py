"""A data folder initialised once per session; each test runs on its own copy.

initdb takes most of a second; copying its result (`cp -a`, which keeps the
owner when we are root and the server runs as `nobody`) takes a fraction.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.runtime import EmbeddedPostgres

FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def _traversable_temp_dir(prefix: str) -> Path:
    # Under /tmp and 0711: short enough for a Unix socket, and enterable by the
    # unprivileged account the server runs as when the tests run as root.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o711)
    return path


@pytest.fixture(scope="session")
def initialised_home() -> Iterator[Path]:
    base = _traversable_temp_dir("claire-rt-")
    home = base / "template"
    with EmbeddedPostgres(home, settings=FAST_SETTINGS):
        pass
    try:
        yield home
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A traversable temporary folder; removed afterwards."""
    base = _traversable_temp_dir("claire-rt-")
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def home(initialised_home: Path, scratch: Path) -> Path:
    """An initialised, stopped data folder of this test's own."""
    target = scratch / "home"
    subprocess.run(["cp", "-a", str(initialised_home), str(target)], check=True)
    return target


@pytest.fixture
def server(home: Path) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(home, settings=FAST_SETTINGS)
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()
