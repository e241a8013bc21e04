"""Fixtures of the operations tests: more data folders, as reachable as `claire_home`."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def new_home() -> Iterator[Callable[[], Path]]:
    """Makes fresh, empty data folders (under /tmp, enterable by the server's account)."""
    made: list[Path] = []

    def make() -> Path:
        base = Path(tempfile.mkdtemp(prefix="claire-other-"))
        os.chmod(base, 0o711)
        made.append(base)
        return base / "data"

    yield make
    for base in made:
        shutil.rmtree(base, ignore_errors=True)
