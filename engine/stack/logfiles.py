"""The stack's run log (the JSON lines its engine services write in the `claire_data`
volume), copied out of a container for `claire logs`."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Final

import docker.errors

from engine.stack.containers import StackError, service_container
from engine.stack.spec import DATA_DIR

# Any engine container mounts the volume; the writer runs as long as the run does.
LOG_SOURCE: Final = "cdb_db_writer"


def copy_run_logs(dest: Path, project: str | None = None) -> Path:
    """The stack's log files copied into `dest/logs`; returns that folder."""
    container = service_container(LOG_SOURCE, project)
    try:
        stream, _ = container.get_archive(f"{DATA_DIR}/logs")
    except docker.errors.NotFound:
        raise StackError(
            "the stack has written no log yet; `claire stack logs SERVICE` shows what its "
            "containers print."
        ) from None
    except docker.errors.APIError as exc:
        raise StackError(f"Docker did not hand over the stack's log ({exc.explanation}).") from None
    folder = dest / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream)), mode="r") as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if member.isfile() and name.startswith("claire.log"):
                data = archive.extractfile(member)
                if data is not None:
                    (folder / name).write_bytes(data.read())
    return folder


__all__ = ["LOG_SOURCE", "copy_run_logs"]
