"""Writing into a running container's filesystem from the host, without ever leaving it.

`ContainerRoot(pid, start_time)` opens `/proc/<pid>/root` of the container's init: that
directory is the container's root *as its processes see it*, with its mount namespace's
volumes, binds and tmpfs mounted below it (proc(5)). Every path is then resolved with
openat2(2) `RESOLVE_IN_ROOT` relative to it: `..` stops at the container's root and an
absolute symlink (`/app/data/sub -> /var/sub`) is followed *inside* the container, never
to the host's `/var/sub`; `RESOLVE_NO_MAGICLINKS` refuses `/proc/<pid>/...` links, the one
way out a container could plant. The last component is never followed: a file is written
to a temporary name in its (resolved) parent and renamed over the target, so a symlink
there is replaced, not written through (tar's behaviour, and Docker's `cp`).

Used by the engine's `put_archive` (a tar stream: `composer watch` syncs, Docker's
`PUT /containers/{id}/archive`) and `remove_paths`. Ownership in the archive is the
container's view (ids as in the tar header); with a user namespace the ids are mapped
through the container's uid_map/gid_map before they reach the host's filesystem.
Blocking: call from a thread (`asyncio.to_thread`), never from the event loop.
"""
from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import secrets
import shutil
import stat
import tarfile
from dataclasses import dataclass, field
from typing import IO

from runtime.errors import Conflict

SYS_OPENAT2 = 437  # the same number on every architecture (syscalls added after 5.1)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
RESOLVE = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
COPY_CHUNK = 1 << 20

_libc = ctypes.CDLL(None, use_errno=True)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int = RESOLVE, mode: int = 0) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    fd = _libc.syscall(ctypes.c_long(SYS_OPENAT2), ctypes.c_int(dirfd), ctypes.c_char_p(path.encode()),
                       ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


@dataclass
class CopyResult:
    written: int = 0  # entries written (files, directories, symlinks) or paths removed
    errors: list[str] = field(default_factory=list)  # one line per entry that failed


def _idmap(pid: int, kind: str) -> list[tuple[int, int, int]]:
    try:
        with open(f"/proc/{pid}/{kind}_map") as f:
            return [tuple(int(x) for x in line.split()) for line in f if line.strip()]  # type: ignore[misc]
    except OSError:
        return []


def _map_id(ident: int, table: list[tuple[int, int, int]]) -> int:
    """A container id as the host stores it; an id outside the map becomes the container's root."""
    for inside, outside, count in table:
        if inside <= ident < inside + count:
            return outside + ident - inside
    return _map_id(0, table) if ident != 0 and table else ident


class ContainerRoot:
    """The root of a running container (see the module docstring). Close it after use."""

    def __init__(self, pid: int, start_time: int) -> None:
        from runtime.process.launcher import proc_start_time

        try:
            self.fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise Conflict(f"the container's process {pid} is gone: {e.strerror}") from None
        if proc_start_time(pid) != start_time:  # the pid was reused: not our container
            os.close(self.fd)
            raise Conflict(f"the container's process {pid} is gone")
        self.uids = _idmap(pid, "uid")
        self.gids = _idmap(pid, "gid")
        self.identity = self.uids in ([], [(0, 0, 4294967295)])

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> ContainerRoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- resolution ------------------------------------------------------------------------
    def _owner(self, uid: int, gid: int) -> tuple[int, int]:
        if self.identity:
            return uid, gid
        return _map_id(uid, self.uids), _map_id(gid, self.gids)

    def parent(self, path: str, *, create: bool) -> tuple[int, str]:
        """(fd of the directory holding `path`, last component), the directory resolved inside
        the container; missing directories are made (0755, root) when `create`."""
        parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "the container's root itself", path)
        name, dirs = parts[-1], parts[:-1]
        rel = "/".join(dirs) or "."
        try:
            return openat2(self.fd, rel, os.O_PATH | os.O_DIRECTORY), name
        except FileNotFoundError:
            if not create:
                raise
        done = "."
        for comp in dirs:  # make what is missing, one level at a time, each resolved anew
            nxt = comp if done == "." else f"{done}/{comp}"
            try:
                fd = openat2(self.fd, nxt, os.O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:
                dfd = openat2(self.fd, done, os.O_PATH | os.O_DIRECTORY)
                try:
                    os.mkdir(comp, 0o755, dir_fd=dfd)
                    os.chown(comp, *self._owner(0, 0), dir_fd=dfd, follow_symlinks=False)
                except FileExistsError:
                    pass
                finally:
                    os.close(dfd)
                fd = openat2(self.fd, nxt, os.O_PATH | os.O_DIRECTORY)
            os.close(fd)
            done = nxt
        return openat2(self.fd, rel, os.O_PATH | os.O_DIRECTORY), name

    # -- writing ---------------------------------------------------------------------------
    def write_file(self, path: str, src: IO[bytes], mode: int, uid: int, gid: int, mtime: float) -> None:
        dfd, name = self.parent(path, create=True)
        tmp = f".{name[:200]}.composer-{secrets.token_hex(4)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=dfd)
            try:
                with os.fdopen(fd, "wb", closefd=False) as out:
                    shutil.copyfileobj(src, out, COPY_CHUNK)
                os.fchown(fd, *self._owner(uid, gid))
                os.fchmod(fd, stat.S_IMODE(mode))
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)
            try:
                os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EBUSY):  # a single-file bind mount
                    raise
                self._write_in_place(dfd, name, tmp)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise
        finally:
            os.close(dfd)

    def _write_in_place(self, dfd: int, name: str, tmp: str) -> None:
        """The target is a mount point (a bind-mounted file): rewrite its content instead."""
        with os.fdopen(os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd), "rb") as src, \
                os.fdopen(os.open(name, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                                  dir_fd=dfd), "wb") as out:
            shutil.copyfileobj(src, out, COPY_CHUNK)
        os.unlink(tmp, dir_fd=dfd)

    def make_dir(self, path: str, mode: int, uid: int, gid: int) -> None:
        if not [p for p in path.split("/") if p]:
            return  # the root: nothing to make
        dfd, name = self.parent(path, create=True)
        try:
            try:
                os.mkdir(name, 0o700, dir_fd=dfd)
            except FileExistsError:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    return  # a symlink to a directory stays (tar keeps it; the files go through it)
                if not stat.S_ISDIR(st.st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, "cannot overwrite a non-directory", path) from None
            os.chown(name, *self._owner(uid, gid), dir_fd=dfd, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dfd)
        finally:
            os.close(dfd)

    def symlink(self, path: str, target: str, uid: int, gid: int) -> None:
        dfd, name = self.parent(path, create=True)
        tmp = f".{name[:200]}.composer-{secrets.token_hex(4)}"
        try:
            os.symlink(target, tmp, dir_fd=dfd)
            os.chown(tmp, *self._owner(uid, gid), dir_fd=dfd, follow_symlinks=False)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise
        finally:
            os.close(dfd)

    def remove(self, path: str) -> bool:
        """Remove `path` (a directory with everything in it); False when it was not there."""
        try:
            dfd, name = self.parent(path, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return False
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(name, dir_fd=dfd)  # fd-based: never follows a symlink below
            else:
                os.unlink(name, dir_fd=dfd)
            return True
        except FileNotFoundError:
            return False
        finally:
            os.close(dfd)


def extract(root: ContainerRoot, dest: str, archive: IO[bytes]) -> CopyResult:
    """Every member of the tar stream `archive` under `dest` in the container: regular files,
    directories and symlinks (with their mode, owner and mtime); other kinds are reported."""
    result = CopyResult()
    with tarfile.open(fileobj=archive, mode="r|") as tar:
        for member in tar:
            path = posixpath.normpath(posixpath.join("/", dest, member.name.lstrip("/")))
            try:
                if member.isreg():
                    src = tar.extractfile(member)
                    assert src is not None
                    root.write_file(path, src, member.mode, member.uid, member.gid, member.mtime)
                elif member.isdir():
                    root.make_dir(path, member.mode, member.uid, member.gid)
                elif member.issym():
                    root.symlink(path, member.linkname, member.uid, member.gid)
                else:
                    result.errors.append(f"{path}: not copied (only files, directories and symlinks)")
                    continue
                result.written += 1
            except OSError as e:
                result.errors.append(f"{path}: {e.strerror or e}")
    return result


def remove(root: ContainerRoot, paths: list[str]) -> CopyResult:
    result = CopyResult()
    for path in paths:
        try:
            if root.remove(path):
                result.written += 1
        except OSError as e:
            result.errors.append(f"{path}: {e.strerror or e}")
    return result
