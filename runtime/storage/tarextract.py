"""Extract an untrusted layer tar into a directory, safely, as an overlay lowerdir.

We never call `TarFile.extractall` on a layer. Our own walker:
  * cleans each member name; an absolute name is taken relative to the layer (as Docker),
    a name or hardlink target that climbs out with `..` is refused (UnsafeArchive);
  * creates every entry relative to an fd of its parent, opened component by component with
    O_NOFOLLOW: a symlink in the layer can never redirect a later write outside the layer;
  * keeps owner, mode, mtime (ns), xattrs (PAX `SCHILY.xattr.*`), hardlinks, device nodes;
  * turns `.wh.NAME` into a 0/0 character device and `.wh..wh..opq` into the opaque xattr,
    so the directory is directly usable as an overlay lowerdir;
  * applies directory metadata last, deepest first (writing children changes the mtime).
"""
from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.storage import whiteout
from runtime.storage.errors import InvalidArgument, UnsafeArchive

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_COPY_CHUNK = 1 << 20


@dataclass
class ExtractStats:
    files: int = 0
    bytes: int = 0  # sum of regular file sizes (Docker's idea of a layer's size)
    skipped: list[str] = field(default_factory=list)  # entries we could not create (devices when not root)


@dataclass
class _DirMeta:
    uid: int
    gid: int
    mode: int
    mtime_ns: int
    xattrs: dict[str, bytes]


def clean_name(name: str, what: str = "entry") -> str:
    """The member's path relative to the layer root ("" is the root); refuse `..` escapes."""
    rel = posixpath.normpath("/" + name).lstrip("/")
    # normpath("/" + "../x") is "/x": check the raw components, as Docker does for breakouts.
    depth = 0
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        depth += -1 if comp == ".." else 1
        if depth < 0:
            raise UnsafeArchive(f"unsafe {what} {name!r} in layer tar: it climbs out of the layer with '..'")
    return "" if rel == "." else rel


class _Extractor:
    def __init__(self, dest: str) -> None:
        self.dest = dest
        self.root_fd = os.open(dest, _DIR_FLAGS)
        self.root = os.geteuid() == 0
        self.dirs: dict[str, _DirMeta] = {}
        self.stats = ExtractStats()
        self._cache: tuple[str, int] | None = None

    def close(self) -> None:
        self._drop_cache()
        os.close(self.root_fd)

    # -- path resolution ------------------------------------------------------------------
    def open_parent(self, rel: str, create: bool = True) -> tuple[int, str]:
        """fd of `rel`'s parent directory (caller closes) and `rel`'s last component.

        Tars list a directory's entries together, so the last parent is cached (as an fd:
        it stays the directory we checked); removing any directory drops the cache.
        """
        parent, _, base = rel.rpartition("/")
        if self._cache is not None and self._cache[0] == parent:
            return os.dup(self._cache[1]), base
        parts = rel.split("/")
        fd = os.dup(self.root_fd)
        try:
            for i, comp in enumerate(parts[:-1]):
                fd = self._step(fd, comp, "/".join(parts[: i + 1]), create)
        except BaseException:
            os.close(fd)
            raise
        self._drop_cache()
        self._cache = (parent, os.dup(fd))
        return fd, base

    def _drop_cache(self) -> None:
        if self._cache is not None:
            os.close(self._cache[1])
            self._cache = None

    def _step(self, fd: int, comp: str, sofar: str, create: bool) -> int:
        try:
            nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(comp, 0o755, dir_fd=fd)
            nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
        except OSError as e:
            is_link = False
            with contextlib.suppress(OSError):
                is_link = stat.S_ISLNK(os.lstat(comp, dir_fd=fd).st_mode)
            if is_link:
                raise UnsafeArchive(
                    f"unsafe layer tar: {sofar!r} is a symlink and a later entry writes through it"
                ) from e
            if e.errno in (errno.ENOTDIR, errno.ELOOP):
                raise InvalidArgument(f"bad layer tar: {sofar!r} is not a directory but has entries") from e
            raise
        os.close(fd)
        return nfd

    # -- entries --------------------------------------------------------------------------
    def add(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = clean_name(m.name)
        if rel == "":
            if m.isdir():
                self.dirs[""] = self._dir_meta(m)
            return
        pfd, base = self.open_parent(rel)
        try:
            if base.startswith(whiteout.WH_PREFIX):
                self._whiteout(pfd, base)
            elif m.isdir():
                self._mkdir(pfd, base, rel, m)
            else:
                self._remove_existing(pfd, base)
                self._create(tf, pfd, base, m)
        finally:
            os.close(pfd)

    def _whiteout(self, pfd: int, base: str) -> None:
        if base == whiteout.WH_OPAQUE:
            whiteout.set_opaque(pfd, "a directory of the layer")
        elif base.startswith(whiteout.WH_META_PREFIX):
            return  # aufs bookkeeping
        else:
            name = base[len(whiteout.WH_PREFIX):]
            if name in ("", ".", ".."):
                raise UnsafeArchive(f"bad whiteout {base!r} in layer tar")
            self._remove_existing(pfd, name)
            whiteout.make_whiteout(name, pfd)

    def _mkdir(self, pfd: int, base: str, rel: str, m: tarfile.TarInfo) -> None:
        try:
            st = os.lstat(base, dir_fd=pfd)
            if not stat.S_ISDIR(st.st_mode):
                self._remove_existing(pfd, base)
                os.mkdir(base, 0o700, dir_fd=pfd)
        except FileNotFoundError:
            os.mkdir(base, 0o700, dir_fd=pfd)
        self.dirs[rel] = self._dir_meta(m)

    def _remove_existing(self, pfd: int, base: str) -> None:
        try:
            st = os.lstat(base, dir_fd=pfd)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            self._drop_cache()
            shutil.rmtree(base, dir_fd=pfd)
        else:
            os.unlink(base, dir_fd=pfd)

    def _create(self, tf: tarfile.TarFile, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        mtime_ns = int(m.mtime * 1_000_000_000)
        if m.isreg():
            src = tf.extractfile(m)
            assert src is not None
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=pfd)
            try:
                while chunk := src.read(_COPY_CHUNK):
                    _write_all(fd, chunk)
                self._chown(os.fchown, fd, m.uid, m.gid)
                os.fchmod(fd, m.mode & 0o7777)
                self._xattrs(fd, _xattrs_of(m))
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)
            self.stats.files += 1
            self.stats.bytes += m.size
            return
        if m.islnk():
            target = clean_name(m.linkname, "hardlink target")
            if not target:
                raise UnsafeArchive(f"bad hardlink {m.name!r} -> {m.linkname!r} in layer tar")
            try:
                tfd, tbase = self.open_parent(target, create=False)
            except FileNotFoundError as e:
                raise InvalidArgument(
                    f"bad layer tar: hardlink {m.name!r} points to missing {m.linkname!r}"
                ) from e
            try:
                os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError as e:
                raise InvalidArgument(
                    f"bad layer tar: hardlink {m.name!r} points to missing {m.linkname!r}"
                ) from e
            finally:
                os.close(tfd)
            return
        if m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            self._chown(os.chown, base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            os.utime(base, ns=(mtime_ns, mtime_ns), dir_fd=pfd, follow_symlinks=False)
            return
        if m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            try:
                os.mknod(base, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
            except PermissionError:
                self.stats.skipped.append(m.name)  # devices need CAP_MKNOD (rootless: as Docker, skip)
                return
            self._chown(os.chown, base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            os.chmod(base, m.mode & 0o7777, dir_fd=pfd)
            os.utime(base, ns=(mtime_ns, mtime_ns), dir_fd=pfd, follow_symlinks=False)
            return
        self.stats.skipped.append(m.name)  # GNU sparse/multivolume/unknown types: not content

    def _chown(self, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Set owners; without root that fails and the files stay ours (as rootless tar)."""
        try:
            fn(*args, **kwargs)
        except PermissionError:
            if self.root:
                raise

    def _xattrs(self, fd: int, xattrs: dict[str, bytes]) -> None:
        for k, v in xattrs.items():
            try:
                os.setxattr(fd, k, v)
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EACCES):
                    raise

    @staticmethod
    def _dir_meta(m: tarfile.TarInfo) -> _DirMeta:
        return _DirMeta(m.uid, m.gid, m.mode & 0o7777, int(m.mtime * 1_000_000_000), _xattrs_of(m))

    # -- directory metadata, last and deepest first ----------------------------------------
    def finish(self) -> None:
        for rel in sorted(self.dirs, key=lambda r: r.count("/") + (1 if r else 0), reverse=True):
            meta = self.dirs[rel]
            if rel == "":
                fd = os.dup(self.root_fd)
            else:
                try:
                    pfd, base = self.open_parent(rel, create=False)
                except (FileNotFoundError, UnsafeArchive, InvalidArgument):
                    continue  # replaced by a later entry
                try:
                    fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
                except OSError:
                    continue  # replaced by a file or symlink: not our directory any more
                finally:
                    os.close(pfd)
            try:
                self._chown(os.fchown, fd, meta.uid, meta.gid)
                os.fchmod(fd, meta.mode)
                self._xattrs(fd, meta.xattrs)
                os.utime(fd, ns=(meta.mtime_ns, meta.mtime_ns))
            finally:
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _xattrs_of(m: tarfile.TarInfo) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for k, v in m.pax_headers.items():
        if not k.startswith("SCHILY.xattr."):
            continue
        name = k[len("SCHILY.xattr."):]
        if name.startswith(whiteout.OVERLAY_XATTR_PREFIXES):
            continue  # overlay internals come only from whiteout entries, never from a tar
        out[name] = v.encode("utf-8", "surrogateescape")
    return out


def extract_tar(tf: tarfile.TarFile, dest: str) -> ExtractStats:
    """Extract every member of `tf` into the existing empty directory `dest`."""
    ex = _Extractor(dest)
    try:
        for m in tf:
            ex.add(tf, m)
        ex.finish()
    finally:
        ex.close()
    return ex.stats
