"""Every CLAIRE_ variable the code or the stack reads is one the settings check knows,
so a variable Claire itself sets (a supervisor for its services, the compose file for
its containers) is never refused as a misspelling."""

from __future__ import annotations

import re

from engine.config import known_variables
from tests.conftest import REPO

NAME = re.compile(r"\bCLAIRE_[A-Z][A-Z0-9_]*[A-Z0-9]\b")


def test_every_claire_variable_the_code_and_the_stack_use_is_known() -> None:
    used: set[str] = set()
    for folder in ("engine", "claire_cli"):
        for path in (REPO / folder).rglob("*.py"):
            used |= set(NAME.findall(path.read_text(encoding="utf-8")))
    for path in (REPO / "compose/docker-compose.yml", REPO / "compose/.env.example"):
        used |= set(NAME.findall(path.read_text(encoding="utf-8")))
    assert used - known_variables() == set()
