"""The stack's health for `claire status` and `claire preflight --stack`."""

from __future__ import annotations

from typing import Any

from engine.ops.preflight import CheckResult, CheckStatus, PreflightContext
from engine.stack.containers import StackError, stack_exists, stack_rows
from engine.stack.spec import BY_NAME


def stack_health() -> dict[str, Any] | None:
    """Every container's state, health and restarts, and what is wrong; None when no
    Docker engine answers or it holds no container of the stack."""
    if not stack_exists():
        return None
    try:
        rows = stack_rows()
    except StackError:
        return None
    return {"containers": rows, "reasons": problems(rows)}


def problems(rows: list[dict[str, Any]]) -> list[str]:
    """One line per container that is not as it should be."""
    out = []
    for row in rows:
        name = row["service"]
        service = BY_NAME.get(name)
        if service is not None and service.one_shot:
            if row["state"] == "exited" and row["exit_code"] not in (0, None):
                out.append(f"{name} exited with code {row['exit_code']}")
            continue
        if row["state"] != "running":
            out.append(f"{name} is {row['state']}")
        elif row["health"] not in ("healthy", "-"):
            out.append(f"{name} is {row['health']}")
    return out


def check_stack(ctx: PreflightContext) -> CheckResult:
    """Preflight: every container of the stack runs and is healthy."""
    title = "Docker stack healthy"
    try:
        found = stack_health()
    except StackError as exc:
        return CheckResult("stack", title, CheckStatus.FAIL, str(exc), "start Docker")
    if found is None:
        return CheckResult(
            "stack", title, CheckStatus.FAIL, "no Docker engine with the stack answers",
            "claire stack up",
        )  # fmt: skip
    restarts = sum(r["restarts"] for r in found["containers"])
    if found["reasons"]:
        return CheckResult(
            "stack", title, CheckStatus.FAIL, "; ".join(found["reasons"]),
            "claire stack ps, then claire stack logs SERVICE",
        )  # fmt: skip
    value = f"{len(found['containers'])} containers, {restarts} restarts"
    status = CheckStatus.WARN if restarts else CheckStatus.OK
    return CheckResult(
        "stack", title, status, value, "claire stack logs SERVICE" if restarts else ""
    )
