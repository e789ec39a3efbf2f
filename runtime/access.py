"""Who may use composerd: root, and the members of the `composer` group when it exists.

As Docker's `docker` group: membership is root-equivalent (whoever can create a container can
mount the host's / into it), so the group exists only when an admin creates it
(`groupadd --system composer`). Without it everything stays root-only (socket 0600).

    gid = access_gid()              # None: no such group, root only
    share_dir(path, gid)            # run dir: 0710 root:group (traverse, no listing)
    share_socket(path, gid)         # the API socket: 0660 root:group
    share_lock_dir(path, gid)       # project locks: 2770 root:group, lock files 0660

COMPOSER_GROUP names another group (tests use a throwaway one).
"""
from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

GROUP_ENV = "COMPOSER_GROUP"
DEFAULT_GROUP = "composer"


def group_name() -> str:
    return os.environ.get(GROUP_ENV) or DEFAULT_GROUP


def access_gid(name: str | None = None) -> int | None:
    """The gid of the access group, or None when the host has no such group."""
    try:
        return grp.getgrnam(name or group_name()).gr_gid
    except KeyError:
        return None


def _own(path: Path) -> bool:
    """Only adjust what we own and is not a shared sticky dir such as /tmp."""
    st = path.stat()
    return st.st_uid == os.geteuid() and not st.st_mode & stat.S_ISVTX


def share_dir(path: Path, gid: int | None) -> None:
    """The run dir: 0700 root-only, or 0710 root:group so members reach the socket in it."""
    if not _own(path):
        return
    if gid is None:
        os.chmod(path, 0o700)
    else:
        os.chown(path, -1, gid)
        os.chmod(path, 0o710)


def share_socket(path: Path, gid: int | None) -> None:
    """The API socket: 0600, or 0660 root:group. Bound 0600 first, so it is never wider."""
    if gid is not None:
        os.chown(path, -1, gid)
        os.chmod(path, 0o660)
    else:
        os.chmod(path, 0o600)


def share_lock_dir(path: Path, gid: int | None) -> None:
    """Project locks are taken by the CLI, so members must be able to create them:
    2770 root:group (setgid: new lock files get the group), else 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not _own(path):
        return
    if gid is None:
        os.chmod(path, 0o700)
    else:
        os.chown(path, -1, gid)
        os.chmod(path, 0o2770)


def lock_file_mode(lock_dir: Path) -> int:
    """0660 in a group-shared lock dir (another member must open it too), else 0600."""
    try:
        return 0o660 if lock_dir.stat().st_mode & stat.S_ISGID else 0o600
    except OSError:
        return 0o600
