"""The manual as a site: its generated settings page is current, every page is in the
navigation, and the README stays a short front door."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from engine.config import Settings
from tests.conftest import REPO

DOCS = REPO / "docs"
TOOL = DOCS / "tools" / "settings_reference.py"


def test_the_settings_reference_is_current_and_names_every_setting() -> None:
    checked = subprocess.run(
        [sys.executable, str(TOOL), "--check"], capture_output=True, text=True, cwd=REPO
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    page = (DOCS / "reference" / "settings.md").read_text()
    for name in Settings.model_fields:
        assert f"`{name.upper()}`" in page, name


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    return []


def test_every_page_is_in_the_navigation() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    listed = set(_nav_pages(config["nav"]))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "tools" not in p.parts}
    assert pages == listed


def test_the_readme_is_a_front_door_with_the_two_commands_and_the_screenshot() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    assert "python3 tasks.py run" in readme and "python3 tasks.py test" in readme
    assert (REPO / "docs" / "img" / "web-view.png").stat().st_size > 10_000
    for link in re.findall(r"\]\(([^)#]+)\)", readme):
        if not link.startswith("http"):
            assert (REPO / link).exists(), link
