"""Which data folder a command works in."""

from __future__ import annotations

from pathlib import Path

from engine.config import Settings
from engine.errors import ConfigError
from engine.runtime import default_data_dir


def resolve_data_dir(data_dir: Path | str | None, settings: Settings) -> Path:
    """`--data-dir`, else CLAIRE_HOME, else the user data folder; never "" nor a file."""
    if data_dir is not None and not str(data_dir).strip():
        raise ConfigError(
            "--data-dir is empty; name a folder, or leave the option out to use CLAIRE_HOME "
            "or the default data folder."
        )
    if data_dir is not None and Path(data_dir).exists() and not Path(data_dir).is_dir():
        raise ConfigError(f"--data-dir {data_dir} is a file; give a folder.")
    return default_data_dir(data_dir or settings.claire_home)


__all__ = ["resolve_data_dir"]
