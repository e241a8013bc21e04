"""Every probe here is hostile input; the fast suite skips them with -m 'not hostile'."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/hostile/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.hostile)
