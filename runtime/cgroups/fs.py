"""The file seam of the drivers: every read, write, mkdir and rmdir of cgroupfs goes here.

The real implementation never creates files (cgroupfs files appear when the kernel makes
the directory), so a write to a file the kernel does not offer fails with FileNotFoundError
just as it would on cgroupfs. Unit tests pass a subclass that mirrors the kernel's side
effects on a plain temp dir (mkdir populates the interface files, rmdir drops them).
The v2 device filter is attached through it too, so the fake can record it.
"""

from __future__ import annotations

import os
from pathlib import Path

from runtime.cgroups import bpf


class CgroupFS:
    def read(self, path: Path) -> str:
        with open(path, encoding="ascii") as f:
            return f.read()

    def write(self, path: Path, value: str) -> None:
        # O_TRUNC without O_CREAT, as runc does: cgroupfs ignores the truncation.
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode("ascii"))
        finally:
            os.close(fd)

    def exists(self, path: Path) -> bool:
        return os.path.exists(path)

    def is_dir(self, path: Path) -> bool:
        return os.path.isdir(path)

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)

    def rmdir(self, path: Path) -> None:
        os.rmdir(path)

    def subdirs(self, path: Path) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []

    def realpath(self, path: Path) -> Path:
        return Path(os.path.realpath(path))

    def attach_device_filter(self, path: Path, program: bytes) -> None:
        """Load `program` (a cgroup device BPF program) and attach it to the v2 cgroup `path`."""
        bpf.attach_device_filter(path, program)
