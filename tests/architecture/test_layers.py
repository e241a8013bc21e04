"""The code's structure: layers checked by import-linter, no import loop anywhere,
and modules and functions small enough to read."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.architecture.imports import ROOT, cycles, import_graph, module_files

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
MAX_COMMAND_LINES = 60
# The event vocabulary stays one module: every service speaks it.
LONG_MODULES_ALLOWED = {"engine/events.py"}


def contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def test_the_engine_layers_run_from_the_lifecycle_down_to_the_vocabulary() -> None:
    layers = contracts()["engine-layers"]["layers"]
    assert isinstance(layers, list)
    order = [layer.split(" ")[0] for layer in layers]
    assert order[0] in ("engine.web", "engine.run")
    for upper, lower in [
        ("engine.run", "engine.incidents"),
        ("engine.incidents", "engine.ops"),
        ("engine.ops", "engine.services"),
        ("engine.services", "engine.kernel"),
        ("engine.kernel", "engine.feeds"),
        ("engine.feeds", "engine.home"),
        ("engine.home", "engine.store"),
        ("engine.store", "engine.runtime"),
        ("engine.runtime", "engine.events"),
    ]:
        assert order.index(upper) < order.index(lower), (upper, lower)
    parts = next(layer for layer in layers if layer.startswith("engine.feeds"))
    for part in ("signal", "risk", "execution", "portfolio", "alerts"):
        assert f"engine.{part}" in parts.split(" | ")  # independent of each other


def test_the_forbidden_imports_are_declared() -> None:
    found = contracts()
    assert set(found["engine-no-cli"]["forbidden_modules"]) >= {"claire_cli", "typer", "rich"}
    pure = found["pure-parts"]
    assert set(pure["source_modules"]) >= {  # type: ignore[arg-type]
        "engine.signal",
        "engine.risk",
        "engine.execution",
        "engine.portfolio",
    }
    assert set(pure["forbidden_modules"]) >= {  # type: ignore[arg-type]
        "engine.store",
        "engine.bus.redis",
        "engine.runtime",
        "docker",
    }
    assert found["cli-commands"]["type"] == "layers"


def test_import_linter_keeps_every_contract() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.fail("lint-imports is not installed; run `python3 tasks.py test` to set it up")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert f"Contracts: {len(contracts())} kept, 0 broken." in done.stdout


def test_no_module_imports_itself_back_through_others() -> None:
    assert cycles(import_graph()) == []


def test_the_loop_finder_finds_a_loop() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_hand_written_module_is_too_long() -> None:
    long = {
        path.relative_to(ROOT).as_posix(): n
        for path in module_files().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert set(long) <= LONG_MODULES_ALLOWED, long


def _functions(path: Path) -> list[tuple[str, int, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            decorators = [ast.unparse(d) for d in node.decorator_list]
            out.append((node.name, node.end_lineno - node.lineno + 1, decorators))
    return out


def test_no_function_is_too_long() -> None:
    long = [
        f"{path.relative_to(ROOT)}:{name} ({n} lines)"
        for path in module_files().values()
        for name, n, _ in _functions(path)
        if n > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_cli_commands_parse_call_and_render_in_a_few_lines() -> None:
    long = [
        f"{path.relative_to(ROOT)}:{name} ({n} lines)"
        for name_, path in module_files().items()
        if name_.startswith("claire_cli")
        for name, n, decorators in _functions(path)
        if any(".command(" in d or ".callback(" in d for d in decorators) and n > MAX_COMMAND_LINES
    ]
    assert long == []
