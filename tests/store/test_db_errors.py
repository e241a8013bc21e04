"""What a database error tells the operator: the driver's reason, and advice that fits."""

from __future__ import annotations

import socket

import pytest

from engine.store import Database, DatabaseUnavailable


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the probe is


@pytest.mark.parametrize("external", [False, True])
def test_an_unreachable_server_names_the_setting_only_when_it_was_used(external: bool) -> None:
    url = f"postgresql://claire:hunter2@127.0.0.1:{closed_port()}/claire"

    with pytest.raises(DatabaseUnavailable) as refused:
        Database(url, connect_timeout_s=2, external=external)

    message = str(refused.value)
    assert "cannot reach PostgreSQL" in message and "hunter2" not in message
    assert refused.value.detail and refused.value.detail in message
    assert ("CLAIRE_POSTGRES_URL" in message) is external
    assert "\n" not in message
