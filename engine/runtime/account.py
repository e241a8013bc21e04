"""The operating-system account the embedded PostgreSQL runs as.

`initdb` and `postgres` refuse to run as root, on purpose: a database server
that can be tricked into running SQL should not own the machine. So:

- not root: the server runs as us, nothing special;
- root (CI containers, a server started by systemd without `User=`): the server
  runs as an existing unprivileged account, `nobody` by default. Its data folder
  is handed over to that account (`chown`, mode 0700, as PostgreSQL demands),
  the child drops root's supplementary groups, and nothing is created or
  downloaded. We do not loosen the permissions of folders we do not own: if the
  account cannot reach the data folder, the error names the folder that blocks
  it and how to fix it. PostgreSQL programs it cannot reach (a virtual
  environment under /root) are copied into the data folder (programs.py).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from engine.errors import StoreError

DEFAULT_ROOT_ACCOUNT: Final = "nobody"


@dataclass(frozen=True, slots=True)
class ServerAccount:
    """Who the server processes run as when we are root."""

    name: str
    uid: int
    gid: int


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def server_account(run_as: str | None = None) -> ServerAccount | None:
    """None when we are not root (the server runs as us), else the account to switch to."""
    if not running_as_root():
        return None
    import pwd

    name = run_as or DEFAULT_ROOT_ACCOUNT
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise StoreError(
            f"running as root, the embedded PostgreSQL must run as an unprivileged account, and "
            f"account {name!r} does not exist; create one (useradd --system claire-pg) and pass it "
            "as run_as, or run claire as a normal user."
        ) from None
    if entry.pw_uid == 0:
        raise StoreError(
            f"account {name!r} is root; the embedded PostgreSQL needs an unprivileged account."
        )
    return ServerAccount(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def _can_search(path: Path, account: ServerAccount) -> bool:
    """Whether `account` may enter directory `path` (owner, group, other bits; no ACLs)."""
    info = path.stat()
    if info.st_uid == account.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == account.gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def blocking_folder(account: ServerAccount, target: Path) -> Path | None:
    """The first folder on the way to `target` that the account cannot enter, or None.

    Folders that do not exist yet are made by claire, enterable (see postgres.py).
    """
    for folder in reversed(target.absolute().parents):
        if folder.exists() and not _can_search(folder, account):
            return folder
    return None


def can_reach(account: ServerAccount, target: Path) -> bool:
    return blocking_folder(account, target) is None


def check_reachable(account: ServerAccount, target: Path, what: str) -> None:
    """Raise StoreError naming the first folder on the way to `target` the account cannot enter."""
    folder = blocking_folder(account, target)
    if folder is not None:
        raise StoreError(
            f"the embedded PostgreSQL runs as {account.name!r} because claire runs as root, "
            f"and that account cannot enter {folder} to reach the {what}; set CLAIRE_HOME "
            f"to a folder outside it (for example /var/lib/claire) or run `chmod o+x {folder}`."
        )


def hand_over(account: ServerAccount | None, path: Path) -> None:
    """Give `path` to the server's account; a no-op when we are not root."""
    if account is not None:
        os.chown(path, account.uid, account.gid)
