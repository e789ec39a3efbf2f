"""Per-container root filesystem directories for an overlay mount.

    <container_dir>/rootfs/upper    the container's writes (overlay upperdir)
    <container_dir>/rootfs/work     overlay's workdir (same filesystem as upper)
    <container_dir>/rootfs/merged   where runtime.process mounts the overlay
    <container_dir>/rootfs/l/<n>    short symlinks to the image's layer dirs (top layer = 0)

We only make the directories; runtime.process mounts the overlay inside the container's mount
namespace, using `RootfsLayout.mount_options()`.

Overlay limits. The whole option string ("lowerdir=a:b:...,upperdir=...,workdir=...") is
passed to mount(2) in one page (4096 bytes here), and the kernel stacks at most 500 lowers.
A layer path is ~95 bytes (/var/lib/composer/layers/<64 hex>/diff), so about 40 layers fit.
When the absolute form is too long, `mount_options()` returns the short form with relative
names (`l/0:l/1:...`, each a symlink to a layer) and the directory to chdir into before
mount(2): overlay resolves relative lowerdirs against the caller's cwd (Docker's overlay2 does
the same). The symlinks are made always, so both forms work.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
from dataclasses import dataclass
from pathlib import Path

from runtime.storage.errors import InvalidArgument, StorageError
from runtime.storage.fsutil import remove_tree

MOUNT_DATA_MAX = os.sysconf("SC_PAGESIZE") - 1  # the option string and its NUL
OVERLAY_MAX_LOWERS = 500  # OVL_MAX_STACK
MNT_DETACH = 2
ROOTFS = "rootfs"


@dataclass(frozen=True)
class RootfsLayout:
    root: str  # <container_dir>/rootfs
    lowerdirs: tuple[str, ...]  # absolute layer dirs, top layer first
    upperdir: str
    workdir: str
    mergeddir: str

    @property
    def short_lowerdirs(self) -> tuple[str, ...]:
        """Relative names under `root` ("l/0", ...) that link to `lowerdirs`."""
        return tuple(f"l/{i}" for i in range(len(self.lowerdirs)))

    def mount_options(self) -> tuple[str, str | None]:
        """(overlay mount data, cwd to chdir into before mount(2) or None if not needed)."""
        opts = _options(self.lowerdirs, self.upperdir, self.workdir)
        if len(opts) <= MOUNT_DATA_MAX:
            return opts, None
        short = _options(self.short_lowerdirs, "upper", "work")
        if len(short) > MOUNT_DATA_MAX:
            raise StorageError(f"too many layers for one overlay mount ({len(self.lowerdirs)})")
        return short, self.root


def _options(lowers: tuple[str, ...], upper: str, work: str) -> str:
    for p in (*lowers, upper, work):
        if any(c in p for c in ":,\n"):
            raise InvalidArgument(f"overlay path {p!r} contains ':' or ',': use a state root without them")
    return f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"


def layout(container_dir: str | os.PathLike[str], lowerdirs: list[str] | tuple[str, ...]) -> RootfsLayout:
    root = Path(container_dir) / ROOTFS
    return RootfsLayout(
        root=str(root),
        lowerdirs=tuple(lowerdirs) if lowerdirs else (str(root / "empty"),),
        upperdir=str(root / "upper"),
        workdir=str(root / "work"),
        mergeddir=str(root / "merged"),
    )


def prepare(container_dir: str | os.PathLike[str], lowerdirs: list[str] | tuple[str, ...]) -> RootfsLayout:
    """Create upper/work/merged (and the short links) for a container; returns the layout.

    `lowerdirs` are the image's layer dirs, top layer first (ImageStore.lowerdirs). An image
    without layers gets one empty lowerdir (overlay needs at least one).
    """
    if len(lowerdirs) > OVERLAY_MAX_LOWERS:
        raise StorageError(
            f"image has {len(lowerdirs)} layers; overlay stacks at most {OVERLAY_MAX_LOWERS}: "
            "squash the image"
        )
    lay = layout(container_dir, lowerdirs)
    root = Path(lay.root)
    for d in (root, Path(lay.upperdir), Path(lay.workdir), Path(lay.mergeddir)):
        d.mkdir(parents=True, exist_ok=True)
    os.chmod(lay.upperdir, 0o755)
    if not lowerdirs:
        (root / "empty").mkdir(exist_ok=True)
    links = root / "l"
    remove_tree(links)
    links.mkdir()
    for i, lower in enumerate(lay.lowerdirs):
        if not os.path.isdir(lower):
            raise StorageError(f"layer directory {lower} is missing: the image store is damaged; "
                               "remove the image and load it again")
        os.symlink(lower, links / str(i))
    return lay


def mounts_under(path: str) -> list[str]:
    """Mount points at or below `path` in this process's mount namespace, deepest first."""
    path = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = _unescape(line.split()[4])
            if mp == path or mp.startswith(path + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


def _unescape(s: str) -> str:
    if "\\" not in s:  # most mount points: no octal escapes (a remove reads every line)
        return s
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1 : i + 4].isdigit():
            out.append(chr(int(s[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


_libc: ctypes.CDLL | None = None


def _umount(target: str) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if _libc.umount2(os.fsencode(target), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # not mounted (any more)
            raise StorageError(f"cannot unmount {target}: {os.strerror(err)}")


def detach(target: str) -> None:
    """Lazily unmount `target`; not mounted is no error."""
    _umount(target)


def cleanup(container_dir: str | os.PathLike[str]) -> None:
    """Unmount anything left at the rootfs in the host namespace, then remove it. Idempotent."""
    root = Path(container_dir) / ROOTFS
    if not root.exists():
        return
    for mp in mounts_under(str(root)):
        _umount(mp)
    with contextlib.suppress(FileNotFoundError):
        remove_tree(root)
