"""Files inside a container's root, reached from the daemon without ever leaving that root.

`composer cp`, `composer export` and `composer watch`'s syncs (put_archive, remove_paths)
read and write a container's files from the host, all through this one module. A
container's root is a directory fd (`Root`):

    running   `/proc/<pid>/root` of its init: its own mount namespace (the overlay, volumes,
              binds, tmpfs), checked against the init's start time (pid reuse)
    stopped   its overlay (and, for cp, its volume and bind mounts) mounted in a private mount
              namespace of one short-lived thread (`stopped_view`): nothing of it is visible
              on the host, and it is unmounted before the thread ends

Every path given by the user is resolved with openat2(2) `RESOLVE_IN_ROOT |
RESOLVE_NO_MAGICLINKS`: `..` and absolute symlinks stay inside the root as in a chroot, and
magic links (/proc/<pid>/root, /proc/self/fd/N) are refused, so no path or symlink of the
container can lead to a host file. The last component of what is written is never followed:
an existing entry is replaced (a symlink there too, not written through); a regular file is
written under a temporary name and renamed over it, so it appears complete. A mount point
(a single-file bind, a volume) is never unlinked: from outside the container's mount
namespace that would detach it; a regular file there is rewritten in place. Below a resolved
start, walks and extraction go one component at a time relative to a directory fd with
O_NOFOLLOW; a parent an archive entry names is resolved again with RESOLVE_IN_ROOT.

Tar names follow Docker's archive: the resource's base name (`dir`, `dir/a`), or `.`
(`./a`) for `PATH/.` (the directory's content); export has bare names (`bin/sh`).
Owners are container ids: a user namespace's host ids are mapped back when reading and
forward when writing.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import posixpath
import secrets
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from runtime.api import PathStat
from runtime.errors import Conflict, EngineError, InvalidArgument, NotFound
from runtime.process.config import MountPoint
from runtime.process.userns import IdMap
from runtime.storage import whiteout
from runtime.storage.tarextract import clean_name

# linux/openat2.h
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
_SYS_OPENAT2 = 437  # the same number on every architecture (added after the unified table)
_CHUNK = 1 << 16
T = TypeVar("T")

# file systems a copy never descends into (their content is the kernel's, not the container's)
PSEUDO_FS = {
    0x9FA0: "proc", 0x62656572: "sysfs", 0x27E0EB: "cgroup", 0x63677270: "cgroup2",
    0x1CD1: "devpts", 0x19800202: "mqueue", 0x73636673: "securityfs", 0x64626720: "debugfs",
    0x74726163: "tracefs", 0xCAFE4A11: "bpf",
}


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


class _Statfs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 112)]


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.syscall.restype = ctypes.c_long


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2); retries EAGAIN (a concurrent rename made `..` resolution ambiguous)."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    raw = os.fsencode(path)
    for _ in range(64):
        fd = _libc.syscall(_SYS_OPENAT2, dirfd, raw, ctypes.byref(how), ctypes.sizeof(how))
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err not in (errno.EAGAIN, errno.EINTR):
            raise OSError(err, os.strerror(err), path)
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), path)


def fs_type(fd: int) -> int:
    buf = _Statfs()
    if _libc.fstatfs(fd, ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(buf.f_type) & 0xFFFFFFFF


def _map(maps: tuple[IdMap, ...], value: int, *, to_host: bool) -> int:
    if not maps:
        return value
    for m in maps:
        start, other = (m.container, m.host) if to_host else (m.host, m.container)
        if start <= value < start + m.size:
            return other + value - start
    return 65534 if not to_host else maps[0].host  # unmapped: nobody inside, root outside


def split_path(path: str) -> tuple[str, str]:
    """(parent, base) of a container path, as Docker's SplitPathDirEntry: `/a/b/` -> (/a, b),
    `/a/b/.` -> (/a/b, .), `/` -> (/, .)."""
    clean = posixpath.normpath("/" + path.lstrip("/"))
    if path.endswith("/.") or path == ".":
        clean = clean.rstrip("/") + "/."
    if clean == "/":
        return "/", "."
    parent, base = posixpath.split(clean)
    return parent or "/", base


@dataclass
class Root:
    """A container's root directory fd, and its user namespace maps (empty: none)."""

    fd: int
    uid_map: tuple[IdMap, ...] = ()
    gid_map: tuple[IdMap, ...] = ()
    name: str = ""  # for messages

    def open(self, path: str, flags: int, *, follow: bool = True, create_mode: int = 0) -> int:
        rel = posixpath.normpath("/" + path.lstrip("/")).lstrip("/") or "."
        if not follow:
            flags |= os.O_NOFOLLOW
        try:
            return openat2(self.fd, rel, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
                           create_mode)
        except OSError as e:
            raise self.error(e, path) from None

    def error(self, e: OSError, path: str) -> EngineError:
        where = f"{self.name}:{path}" if self.name else path
        if e.errno == errno.ENOENT:
            return NotFound(f"no such file or directory: {where}", subject=path)
        if e.errno in (errno.ENOTDIR,):
            return InvalidArgument(f"not a directory: {where}", subject=path)
        if e.errno == errno.EROFS:
            return Conflict(f"read-only file system: {where} (the container's root or that "
                            "volume is read-only)", subject=path)
        if e.errno == errno.ELOOP:
            return InvalidArgument(f"too many levels of symbolic links, or a link that may not "
                                   f"be followed: {where}", subject=path)
        if e.errno == errno.EXDEV:
            return InvalidArgument(f"{where} crosses a mount that may not be crossed", subject=path)
        return InvalidArgument(f"{where}: {e.strerror or e}", subject=path)

    def host_ids(self, uid: int, gid: int) -> tuple[int, int]:
        return _map(self.uid_map, uid, to_host=True), _map(self.gid_map, gid, to_host=True)

    def container_ids(self, uid: int, gid: int) -> tuple[int, int]:
        return _map(self.uid_map, uid, to_host=False), _map(self.gid_map, gid, to_host=False)

    def stat(self, path: str, *, follow: bool = False) -> PathStat:
        parent, base = split_path(path)
        follow = follow or base == "." or path.endswith("/")
        if base == ".":
            fd = self.open(parent, os.O_PATH)
            base = posixpath.basename(parent) or "/"
        else:
            fd = self.open(posixpath.join(parent, base), os.O_PATH, follow=follow)
        try:
            st = os.fstat(fd)
            target = ""
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink("", dir_fd=fd)
        finally:
            os.close(fd)
        if path.endswith("/") and not stat.S_ISDIR(st.st_mode):
            raise InvalidArgument(f"not a directory: {path}", subject=path)
        return PathStat(base, st.st_size, st.st_mode, st.st_mtime, target)


# ---------------------------------------------------------------- reading: a tar of a path


class _Exact:
    """`size` bytes of an fd: a file that shrank while read is padded with zeros, one that
    grew is cut, so the tar stays well-formed (a copy is not a snapshot)."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.left = fd, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        if n <= 0:
            return b""
        data = os.read(self.fd, n) if self.fd >= 0 else b""
        if not data:
            data = b"\0" * n
            self.fd = -1
        self.left -= len(data)
        return data


def _xattrs(fd: int) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        names = os.listxattr(fd)
    except OSError:
        return out
    for name in sorted(names):
        if name.startswith(whiteout.OVERLAY_XATTR_PREFIXES):
            continue
        with contextlib.suppress(OSError):
            out["SCHILY.xattr." + name] = os.getxattr(fd, name).decode("utf-8", "surrogateescape")
    return out


class _TarWriter:
    def __init__(self, root: Root, tf: tarfile.TarFile, *, cross_mounts: bool) -> None:
        self.root = root
        self.tf = tf
        self.cross_mounts = cross_mounts
        self.links: dict[tuple[int, int], str] = {}

    def info(self, name: str, st: os.stat_result) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.uid, ti.gid = self.root.container_ids(st.st_uid, st.st_gid)
        ti.uname = ti.gname = ""
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.mtime = int(st.st_mtime)
        return ti

    def child(self, dfd: int, name: str, flags: int) -> int | None:
        """fd of `name` in `dfd`, never following it; None: it is another mount we do not
        cross (export), or it vanished."""
        resolve = RESOLVE_BENEATH | (0 if self.cross_mounts else RESOLVE_NO_XDEV)
        try:
            return openat2(dfd, name, flags | os.O_NOFOLLOW, resolve)
        except OSError as e:
            if e.errno in (errno.EXDEV, errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.ENXIO):
                return None
            raise

    def add(self, dfd: int | None, fd: int, name: str, st: os.stat_result) -> None:
        """Add the entry open as `fd` (its parent `dfd`, None for the start) named `name`."""
        mode = st.st_mode
        ti = self.info(name, st)
        if stat.S_ISDIR(mode):
            ti.type = tarfile.DIRTYPE
            ti.pax_headers = _xattrs(fd)
            self.tf.addfile(ti)
            if fs_type(fd) in PSEUDO_FS:
                return  # /proc, /sys, ... of a running container: the mount point only
            for child in sorted(os.listdir(fd)):
                self.add_child(fd, child, f"{name}/{child}" if name else child)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                ti.type, ti.linkname = tarfile.LNKTYPE, self.links[key]
                self.tf.addfile(ti)
                return
            self.links[key] = name
            ti.size = st.st_size
            ti.pax_headers = _xattrs(fd)
            self.tf.addfile(ti, _Exact(fd, st.st_size))
        elif stat.S_ISLNK(mode):
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink("", dir_fd=fd)
            self.tf.addfile(ti)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tf.addfile(ti)
        elif stat.S_ISFIFO(mode):
            ti.type = tarfile.FIFOTYPE
            self.tf.addfile(ti)
        # sockets: skipped, as Docker

    def add_child(self, dfd: int, child: str, name: str) -> None:
        try:
            st = os.stat(child, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return  # removed while we walk
        if stat.S_ISDIR(st.st_mode):
            flags = os.O_RDONLY | os.O_DIRECTORY
        elif stat.S_ISREG(st.st_mode):
            flags = os.O_RDONLY | os.O_NONBLOCK  # never blocks on a file swapped for a FIFO
        else:
            flags = os.O_PATH
        fd = self.child(dfd, child, flags)
        if fd is None:
            if not self.cross_mounts and not stat.S_ISLNK(st.st_mode):
                self.placeholder(name, st)  # a mount point: what the layer holds is empty
            return
        try:
            now = os.fstat(fd)
            if stat.S_IFMT(now.st_mode) != stat.S_IFMT(st.st_mode):
                return  # swapped for another kind of file while we looked
            self.add(dfd, fd, name, now)
        finally:
            os.close(fd)

    def placeholder(self, name: str, st: os.stat_result) -> None:
        ti = self.info(name, st)
        ti.type = tarfile.DIRTYPE if stat.S_ISDIR(st.st_mode) else tarfile.REGTYPE
        self.tf.addfile(ti)


def write_tar(root: Root, path: str, out: BinaryIO, *, follow_link: bool = False,
              cross_mounts: bool = True, bare: bool = False, top: str | None = None) -> PathStat:
    """Write a tar of `path` in the container to `out`; return its stat. Names start with
    `top`, else the path's base name (`.` for `PATH/.` and `/`); `bare`: no top entry, names
    relative to `path` (export). `follow_link`: a symlink at `path` is archived as its
    target."""
    parent, base = split_path(path)
    follow = follow_link or base == "." or path.endswith("/")
    target = parent if base == "." else posixpath.join(parent, base)
    fd = root.open(target, os.O_PATH, follow=follow)
    try:
        st = os.fstat(fd)
        if path.endswith("/") and not stat.S_ISDIR(st.st_mode):
            raise InvalidArgument(f"not a directory: {path}", subject=path)
        kind = stat.S_IFMT(st.st_mode)
        if kind in (stat.S_IFDIR, stat.S_IFREG):  # reopen for reading (O_PATH can't read)
            flags = os.O_RDONLY | (os.O_DIRECTORY if kind == stat.S_IFDIR else os.O_NONBLOCK)
            rfd = os.open(f"/proc/self/fd/{fd}", flags | os.O_CLOEXEC)
            os.close(fd)
            fd = rfd
            st = os.fstat(fd)
        link = os.readlink("", dir_fd=fd) if stat.S_ISLNK(st.st_mode) else ""
        pstat = PathStat(base if base != "." else (posixpath.basename(parent) or "/"),
                         st.st_size, st.st_mode, st.st_mtime, link)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            writer = _TarWriter(root, tf, cross_mounts=cross_mounts)
            if bare:
                if not stat.S_ISDIR(st.st_mode):
                    raise InvalidArgument(f"not a directory: {path}", subject=path)
                for child in sorted(os.listdir(fd)):
                    writer.add_child(fd, child, child)
            else:
                writer.add(None, fd, top or base, st)
    finally:
        os.close(fd)
    return pstat


# ---------------------------------------------------------------- writing: extract a tar

Owner = Callable[[int, int], tuple[int, int] | None]  # tar ids -> host ids; None: leave as made


@dataclass
class _Meta:
    uid: int
    gid: int
    mode: int
    mtime_ns: int


class _Extractor:
    """Extract into `dest` (a directory path inside `root`), Docker's archive rules:
    directories merge, anything else is replaced; with `no_overwrite_dir_non_dir` a
    directory is never replaced by a non-directory nor the reverse."""

    def __init__(self, root: Root, dest: str, owner: Owner, no_overwrite_dir_non_dir: bool,
                 rename: Callable[[str], str] | None = None) -> None:
        self.root = root
        self.rename = rename or (lambda rel: rel)
        self.dest = posixpath.normpath("/" + dest.lstrip("/"))
        self.owner = owner
        self.strict = no_overwrite_dir_non_dir
        self.dirs: dict[str, _Meta] = {}
        self.made: set[str] = set()

    def where(self, rel: str) -> str:
        return posixpath.join(self.dest, rel)

    def parent(self, rel: str) -> tuple[int, str]:
        """fd of the parent of `rel` (created as needed, resolved inside the root), its base."""
        parent, _, base = rel.rpartition("/")
        try:
            return self.root.open(self.where(parent), os.O_RDONLY | os.O_DIRECTORY), base
        except NotFound:
            pass
        fd = self.root.open(self.dest, os.O_RDONLY | os.O_DIRECTORY)
        done = ""
        try:
            for comp in parent.split("/"):
                done = f"{done}/{comp}" if done else comp
                with contextlib.suppress(FileExistsError):
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    ids = self.owner(0, 0)
                    if ids is not None:
                        os.chown(comp, *ids, dir_fd=fd, follow_symlinks=False)
                nfd = self.root.open(self.where(done), os.O_RDONLY | os.O_DIRECTORY)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd, base

    def add(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = self.rename(clean_name(m.name))
        if rel == "":
            return  # the "." entry: the destination keeps its own metadata (as Docker)
        pfd, base = self.parent(rel)
        try:
            self._add(tf, m, rel, pfd, base)
        except OSError as e:
            raise self.root.error(e, self.where(rel)) from None
        finally:
            os.close(pfd)

    def _add(self, tf: tarfile.TarFile, m: tarfile.TarInfo, rel: str, pfd: int, base: str
             ) -> None:
        try:
            st: os.stat_result | None = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None:
            is_dir = stat.S_ISDIR(st.st_mode)
            if self.strict and is_dir and not m.isdir():
                raise Conflict(f"cannot overwrite directory {self.where(rel)} with a "
                               f"non-directory", subject=rel)
            if self.strict and not is_dir and m.isdir():
                raise Conflict(f"cannot overwrite non-directory {self.where(rel)} with a "
                               f"directory", subject=rel)
            if not (is_dir and m.isdir()):
                if mount_point(pfd, base):
                    # unlinking it from outside its mount namespace would detach the mount
                    # (and rmtree would empty the host's directory): rewrite a file in place
                    if not (m.isreg() and stat.S_ISREG(st.st_mode)):
                        raise Conflict(f"cannot replace {self.where(rel)}: it is a mount point "
                                       "(a volume or bind mount)", subject=rel)
                    self._rewrite(tf, m, pfd, base)
                    return
                if is_dir:
                    import shutil
                    shutil.rmtree(base, dir_fd=pfd)
                elif not m.isreg():  # a regular file is renamed over it, below
                    os.unlink(base, dir_fd=pfd)
        mtime_ns = int(m.mtime * 1_000_000_000)
        ids = self.owner(m.uid, m.gid)
        if m.isdir():
            if st is None or not stat.S_ISDIR(st.st_mode):
                os.mkdir(base, 0o700, dir_fd=pfd)
            self.dirs[rel] = _Meta(*(ids or (-1, -1)), m.mode & 0o7777, mtime_ns)
        elif m.isreg():
            # written under a temporary name, then renamed over the target: the container's
            # processes see the old file or the new one complete (watch), never a part
            tmp = f".{base[:200]}.composer-{secrets.token_hex(4)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=pfd)
            try:
                try:
                    self._fill(tf, m, fd)
                finally:
                    os.close(fd)
                os.rename(tmp, base, src_dir_fd=pfd, dst_dir_fd=pfd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=pfd)
                raise
        elif m.islnk():
            target = self.rename(clean_name(m.linkname, "hardlink target"))
            tfd, tbase = self.parent(target)
            try:
                os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            finally:
                os.close(tfd)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            if ids is not None:
                os.chown(base, *ids, dir_fd=pfd, follow_symlinks=False)
            os.utime(base, ns=(mtime_ns, mtime_ns), dir_fd=pfd, follow_symlinks=False)
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            os.mknod(base, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor),
                     dir_fd=pfd)
            if ids is not None:
                os.chown(base, *ids, dir_fd=pfd, follow_symlinks=False)
            os.utime(base, ns=(mtime_ns, mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _fill(self, tf: tarfile.TarFile, m: tarfile.TarInfo, fd: int) -> None:
        """The content, owner, mode and mtime of the regular file entry `m` into `fd`."""
        src = tf.extractfile(m)
        assert src is not None
        while chunk := src.read(_CHUNK):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
        ids = self.owner(m.uid, m.gid)
        if ids is not None:
            os.fchown(fd, *ids)
        os.fchmod(fd, m.mode & 0o7777)
        mtime_ns = int(m.mtime * 1_000_000_000)
        os.utime(fd, ns=(mtime_ns, mtime_ns))

    def _rewrite(self, tf: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        """A regular file that is a mount point (a single-file bind or volume) is rewritten
        in place: unlinking or renaming over it fails with EBUSY."""
        fd = os.open(base, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            self._fill(tf, m, fd)
        finally:
            os.close(fd)

    def finish(self) -> None:
        """Directory metadata last, deepest first (creating children changes the mtime)."""
        for rel in sorted(self.dirs, key=lambda r: r.count("/"), reverse=True):
            meta = self.dirs[rel]
            try:
                fd = self.root.open(self.where(rel), os.O_RDONLY | os.O_DIRECTORY, follow=False)
            except EngineError:
                continue  # replaced by a later entry
            try:
                if meta.uid >= 0:
                    os.fchown(fd, meta.uid, meta.gid)
                os.fchmod(fd, meta.mode)
                os.utime(fd, ns=(meta.mtime_ns, meta.mtime_ns))
            finally:
                os.close(fd)


def extract_tar(root: Root, dest: str, src: BinaryIO, owner: Owner, *,
                no_overwrite_dir_non_dir: bool = True,
                rename: Callable[[str], str] | None = None) -> None:
    """Extract the tar stream `src` into the directory `dest` of `root`; `rename` maps each
    entry's relative name (Docker's RebaseArchiveEntries)."""
    fd = root.open(dest, os.O_RDONLY | os.O_DIRECTORY)  # it must exist, as a directory
    os.close(fd)
    ex = _Extractor(root, dest, owner, no_overwrite_dir_non_dir, rename)
    try:
        with tarfile.open(fileobj=src, mode="r|*") as tf:
            for m in tf:
                ex.add(tf, m)
    except tarfile.TarError as e:
        raise InvalidArgument(f"the archive is not a valid tar stream ({e})") from None
    ex.finish()


def mount_point(dfd: int, name: str) -> bool:
    """True when `name` in the directory `dfd` is the root of another mount (a bind-mounted
    file, a volume): opening it without crossing a mount fails with EXDEV."""
    try:
        os.close(openat2(dfd, name, os.O_PATH | os.O_NOFOLLOW, RESOLVE_BENEATH | RESOLVE_NO_XDEV))
    except OSError as e:
        return e.errno == errno.EXDEV
    return False


def remove_paths(root: Root, paths: list[str]) -> tuple[int, list[str]]:
    """Remove each path (a directory with everything in it) in `root`, the parent resolved
    inside it and the last component never followed (a symlink goes, not its target); a
    missing path is no error. (paths removed, one line per path that failed)."""
    import shutil

    removed, errors = 0, []
    for path in paths:
        parent, base = split_path(path)
        if base in (".", "/"):
            errors.append(f"{path}: the container's root or a directory's content is not removed")
            continue
        try:
            pfd = root.open(parent, os.O_RDONLY | os.O_DIRECTORY)
        except (NotFound, InvalidArgument):
            continue  # its directory is gone (or is no directory): so is the path
        except EngineError as e:
            errors.append(str(e))
            continue
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            if mount_point(pfd, base):
                errors.append(f"{root.name + ':' if root.name else ''}{path}: a mount point "
                              "(a volume or bind mount) is not removed")
                continue
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(base, dir_fd=pfd)  # fd-based: never follows a symlink below
            else:
                os.unlink(base, dir_fd=pfd)
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as e:
            errors.append(str(root.error(e, path)))
        finally:
            os.close(pfd)
    return removed, errors


def rebase(old: str, new: str) -> Callable[[str], str]:
    """Rename the first component `old` of entry names to `new` ("." means the entries of a
    directory's content: `a` under `.` becomes `new/a`)."""
    def rename(rel: str) -> str:
        if old in (".", ""):
            return f"{new}/{rel}" if rel else new
        first, sep, rest = rel.partition("/")
        if first != old:
            return rel
        return f"{new}{sep}{rest}"
    return rename


def owner_in(root: Root, *, keep: bool) -> Owner:
    """Owners for files copied into a container: as the tar says (`cp -a`), else the
    container's root; both seen through its user namespace."""
    def owner(uid: int, gid: int) -> tuple[int, int]:
        return root.host_ids(uid, gid) if keep else root.host_ids(0, 0)
    return owner


def host_root(path: str) -> Root:
    """A directory of the host as a Root: what a tar writes stays inside it."""
    try:
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"no such directory: {path}", subject=path) from None
    except NotADirectoryError:
        raise InvalidArgument(f"not a directory: {path}", subject=path) from None
    return Root(fd)


# ---------------------------------------------------------------- the root of a container


def running_root(pid: int, start_time: int, name: str, uid_map: tuple[IdMap, ...] = (),
                 gid_map: tuple[IdMap, ...] = ()) -> Root:
    """The root of a running container: `/proc/<pid>/root` of its init, in its namespace."""
    from runtime.process.launcher import proc_start_time

    try:
        fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        raise Conflict(f"container {name} is not running any more", subject=name) from None
    if proc_start_time(pid) != start_time:  # the pid was reused: not our container's root
        os.close(fd)
        raise Conflict(f"container {name} is not running any more", subject=name)
    return Root(fd, uid_map, gid_map, name)


def stopped_root(container_dir: str, lowerdirs: tuple[str, ...], binds: tuple[MountPoint, ...],
                 *, read_only: bool, name: str, work: Callable[[Root], T]) -> T:
    """Run `work` on the root of a container that is not running: its overlay, and `binds`
    (its volumes and bind mounts) on top, mounted in a private mount namespace of the
    calling thread, which must be a fresh one that ends afterwards (runtime.threadpipe).
    Everything is unmounted before returning."""
    from runtime.process.syscalls import CLONE_NEWNS, MS_PRIVATE, MS_RDONLY, MS_REC, LibcSyscalls
    from runtime.storage import rootfs

    sc = LibcSyscalls()
    sc.unshare(CLONE_NEWNS)  # this thread only (it implies CLONE_FS: our own cwd too)
    sc.mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount reaches the host
    lay = rootfs.prepare(container_dir, lowerdirs)
    options, cwd = lay.mount_options()
    if cwd is not None:
        os.chdir(cwd)  # short relative lowerdirs (see runtime.storage.rootfs)
    sc.mount("overlay", lay.mergeddir, "overlay", MS_RDONLY if read_only else 0, options)
    fd = -1
    try:
        fd = os.open(lay.mergeddir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        root = Root(fd, name=name)
        for mp in binds:
            _bind(sc, root, mp)
        return work(root)
    finally:
        if fd >= 0:
            os.close(fd)
        from runtime.process.syscalls import MNT_DETACH

        sc.umount2(lay.mergeddir, MNT_DETACH)  # the binds below it go with it


def _bind(sc: object, root: Root, mp: MountPoint) -> None:
    """Bind `mp.source` at `mp.target` inside `root` (made when missing, resolved in it)."""
    from runtime.process.syscalls import MS_BIND, MS_RDONLY, MS_REC, MS_REMOUNT

    is_dir = os.path.isdir(mp.source)
    try:
        fd = root.open(mp.target, os.O_PATH)
    except NotFound:
        parent, base = split_path(mp.target)
        ex = _Extractor(root, "/", lambda u, g: None, False)
        pfd, base = ex.parent(posixpath.join(parent, base).lstrip("/"))
        try:
            if is_dir:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(base, 0o755, dir_fd=pfd)
            else:
                os.close(os.open(base, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o644, dir_fd=pfd))
        finally:
            os.close(pfd)
        fd = root.open(mp.target, os.O_PATH)
    try:
        sc.mount(mp.source, f"/proc/self/fd/{fd}", None, MS_BIND | MS_REC)  # type: ignore[attr-defined]
    finally:
        os.close(fd)
    if mp.read_only:
        fd = root.open(mp.target, os.O_PATH)  # now the mount's root
        try:
            sc.mount(None, f"/proc/self/fd/{fd}", None,  # type: ignore[attr-defined]
                     MS_BIND | MS_REMOUNT | MS_RDONLY)
        finally:
            os.close(fd)
