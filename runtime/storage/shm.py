"""The /dev/shm of a container others may join (`ipc: shareable`), as Docker keeps it: a
tmpfs mounted on the host at <container dir>/shm while the container runs, bound at /dev/shm
in it and in every container that joins its IPC namespace (POSIX shared memory lives in
files there, System V IPC in the namespace itself)."""
from __future__ import annotations

import os
from pathlib import Path

from runtime.process.syscalls import MS_NODEV, MS_NOEXEC, MS_NOSUID, LibcSyscalls
from runtime.storage.rootfs import detach, mounts_under

SHM_DIR = "shm"


def path(container_dir: str | os.PathLike[str]) -> str:
    return str(Path(container_dir) / SHM_DIR)


def mount(container_dir: str | os.PathLike[str], size: int) -> str:
    """Mount the shared /dev/shm (idempotent); its host path."""
    target = path(container_dir)
    os.makedirs(target, exist_ok=True)
    if not mounts_under(target):
        LibcSyscalls().mount("shm", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                             f"mode=1777,size={size}")
    return target


def unmount(container_dir: str | os.PathLike[str]) -> None:
    """Detach it (joiners keep their own bind until they end). Idempotent."""
    target = path(container_dir)
    for mp in mounts_under(target):
        detach(mp)
    if os.path.isdir(target):
        os.rmdir(target)
