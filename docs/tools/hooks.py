"""MkDocs hooks: the settings reference is written from engine/config.py before a build."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import settings_reference


def on_pre_build(config: Any, **kwargs: Any) -> None:
    text = settings_reference.render()
    page = settings_reference.PAGE
    if not page.is_file() or page.read_text(encoding="utf-8") != text:
        page.write_text(text, encoding="utf-8")
