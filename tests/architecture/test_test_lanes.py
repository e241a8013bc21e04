"""The suite's lanes (tests/conftest.py) rest on pytest-xdist's `--dist loadgroup`,
which groups a test by rewriting its item's `_nodeid`. A pytest that no longer reads
it (9.2) spreads the Docker tests and the services runs over every worker."""

from __future__ import annotations

import pytest


def test_the_installed_pytest_reads_the_node_id_xdist_groups_by(
    request: pytest.FixtureRequest,
) -> None:
    item = request.node
    before = item.nodeid
    item._nodeid = f"{before}@lane"
    try:
        assert item.nodeid == f"{before}@lane"
    finally:
        item._nodeid = before
