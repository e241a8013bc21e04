"""What `claire stack up` says when a container is not ready in time."""

from __future__ import annotations

from engine.stack.containers import not_ready


def test_a_container_still_starting_shows_its_last_health_check_and_log_line() -> None:
    state = {
        "Status": "running",
        "Health": {
            "Status": "starting",
            "Log": [
                {"ExitCode": 1, "Output": "Traceback\nConnectionRefusedError: [Errno 111]\n"},
            ],
        },
    }
    said = not_ready("cdb_ws", "service_healthy", state, "service started")
    assert said.startswith("cdb_ws was not healthy in time (starting; last health check: ")
    assert "exit 1, ConnectionRefusedError: [Errno 111]" in said
    assert "last log line: service started" in said
    assert said.endswith("see `claire stack logs cdb_ws`, or give `--timeout` more seconds.")


def test_a_container_never_checked_or_restarting_says_so() -> None:
    unchecked = not_ready(
        "cdb_risk", "service_healthy", {"Status": "running", "Health": {"Status": "starting"}}, "-"
    )
    assert "(starting; last health check: no health check result yet;" in unchecked
    restarting = not_ready(
        "cdb_init",
        "service_completed_successfully",
        {"Status": "restarting", "Restarting": True},
        "no output",
    )
    assert restarting.startswith("cdb_init was not completed successfully in time (restarting;")
