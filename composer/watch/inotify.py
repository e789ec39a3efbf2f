"""Recursive file watching with inotify(7), through ctypes, on the asyncio loop (no polling).

`TreeWatcher(roots, on_change, skip_dir)` watches each root: a directory recursively (a
directory that appears is watched at once, and what it already holds is reported, since it
may have been filled before the watch was in place), a file through its parent directory
(editors replace files by renaming, which a watch on the file itself would lose), and a
root that does not exist yet through its nearest existing ancestor until it appears.
`on_change(path)` gets the absolute path of whatever was created, written (closed after
writing), changed (mode/owner), moved or removed. A queue overflow reports every root.

Why our own and not watchfiles/asyncinotify: the protocol is five syscalls and one struct;
we need control over recursion (skip ignored trees such as node_modules before spending
watches on them), over roots that do not exist yet and single-file roots, and a latency of
milliseconds — watchfiles batches in a Rust thread with its own debounce (50 ms steps,
1.6 s max), asyncinotify is not recursive. Neither would remove code here.
"""
from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

CHANGES = IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
SELF = IN_DELETE_SELF | IN_MOVE_SELF
MASK = CHANGES | SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK
EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of NUL-padded name

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str, path: str = "") -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path or None)
    return ret


class WatchLimit(OSError):
    """The kernel's limit on inotify watches (fs.inotify.max_user_watches) is reached."""


@dataclass
class _Dir:
    path: str
    recursive: bool = False  # report and descend into everything below
    names: set[str] = field(default_factory=set)  # else: only these entries (roots, ancestors)


class TreeWatcher:
    def __init__(self, roots: Iterable[str], on_change: Callable[[str], None],
                 skip_dir: Callable[[str], bool] = lambda path: False) -> None:
        self.roots = sorted({os.path.normpath(r) for r in roots})
        self.on_change = on_change
        self.skip_dir = skip_dir
        self.fd = -1
        self.dirs: dict[int, _Dir] = {}  # wd -> what it watches
        self.wds: dict[str, int] = {}  # path -> wd
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- life ------------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.fd = _check(_libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC), "inotify_init1")
        try:
            for root in self.roots:
                self._attach(root, report=False)
            self._loop = loop or asyncio.get_running_loop()
            self._loop.add_reader(self.fd, self._readable)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.fd < 0:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.fd)
        os.close(self.fd)  # drops every watch with it
        self.fd = -1
        self.dirs.clear()
        self.wds.clear()

    @property
    def watch_count(self) -> int:
        return len(self.dirs)

    # -- watches ---------------------------------------------------------------------------
    def _add(self, path: str, *, recursive: bool, name: str | None = None) -> bool:
        """Watch directory `path` (all of it, or one more entry `name`); False if it is gone."""
        try:
            wd = _check(_libc.inotify_add_watch(self.fd, os.fsencode(path), MASK),
                        "inotify_add_watch", path)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                return False
            if e.errno == errno.ENOSPC:
                raise WatchLimit(e.errno, f"too many watched directories at {path}: raise the limit "
                                 "with sysctl fs.inotify.max_user_watches, or ignore big folders "
                                 "(develop.watch ignore, .dockerignore)") from None
            raise
        d = self.dirs.get(wd)
        if d is None or d.path != path:  # new, or a reused wd of a directory moved away
            d = self.dirs[wd] = _Dir(path)
            self.wds[path] = wd
        d.recursive = d.recursive or recursive
        if name is not None:
            d.names.add(name)
        return True

    def _add_tree(self, top: str, *, report: bool) -> None:
        """Watch `top` and every directory below it (not the skipped ones); with `report`,
        everything found is reported as changed (it appeared before its watch existed)."""
        if not self._add(top, recursive=True):
            return
        for dirpath, dirnames, filenames in os.walk(top):
            keep = []
            for name in dirnames:
                path = os.path.join(dirpath, name)
                if self.skip_dir(path) or os.path.islink(path):
                    continue
                if self._add(path, recursive=True):
                    keep.append(name)
                if report:
                    self.on_change(path)
            dirnames[:] = keep
            if report:
                for name in filenames:
                    self.on_change(os.path.join(dirpath, name))

    def _attach(self, root: str, *, report: bool) -> None:
        """Watch `root` as it is now: a tree, a file (through its parent), or not there yet
        (through the nearest existing ancestor, one entry at a time)."""
        if os.path.isdir(root) and not os.path.islink(root):
            self._add_tree(root, report=report)
            if report:
                self.on_change(root)
            return
        child, parent = root, os.path.dirname(root)
        while parent != child:
            if self._add(parent, recursive=False, name=os.path.basename(child)):
                if report and os.path.lexists(root):
                    self.on_change(root)
                return
            child, parent = parent, os.path.dirname(parent)

    def _under_recursive(self, path: str) -> bool:
        parent = os.path.dirname(path)
        wd = self.wds.get(parent)
        return wd is not None and self.dirs[wd].recursive

    # -- events ----------------------------------------------------------------------------
    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return
        offset = 0
        while offset + EVENT.size <= len(data):
            wd, mask, _cookie, length = EVENT.unpack_from(data, offset)
            raw = data[offset + EVENT.size: offset + EVENT.size + length]
            offset += EVENT.size + length
            self._event(wd, mask, os.fsdecode(raw.rstrip(b"\0")))

    def _event(self, wd: int, mask: int, name: str) -> None:
        if mask & IN_Q_OVERFLOW:  # events were lost: everything may have changed
            for root in self.roots:
                self.on_change(root)
            return
        d = self.dirs.get(wd)
        if d is None:
            return
        if mask & IN_IGNORED:  # the directory went away: its watch is gone
            del self.dirs[wd]
            if self.wds.get(d.path) == wd:
                del self.wds[d.path]
            if d.path in self.roots and d.recursive:
                self.on_change(d.path)  # a root itself removed: nothing above reports it
            self._reattach_under(d.path)
            return
        if mask & IN_MOVE_SELF and d.path in self.roots:  # a root moved away: as if removed
            self._forget_tree(d.path)
            self.on_change(d.path)
            self._attach(d.path, report=True)
            return
        if mask & SELF or not name:
            return
        path = os.path.join(d.path, name)
        appeared = bool(mask & (IN_CREATE | IN_MOVED_TO))
        if mask & IN_ISDIR and mask & (IN_MOVED_FROM | IN_DELETE):
            self._forget_tree(path)  # a moved-away tree must not report under its old name
        if d.recursive:
            if appeared and mask & IN_ISDIR and not self.skip_dir(path):
                self._add_tree(path, report=True)
            self.on_change(path)
            return
        if name not in d.names:
            return
        for root in self.roots:  # an entry on the way to a root, or a file root
            if root == path:
                if appeared and os.path.isdir(root):
                    self._attach(root, report=True)
                else:
                    self.on_change(root)
            elif root.startswith(path + "/") and appeared:
                self._attach(root, report=True)

    def _forget_tree(self, path: str) -> None:
        for wd, d in list(self.dirs.items()):
            if d.path == path or d.path.startswith(path + "/"):
                _libc.inotify_rm_watch(self.fd, wd)  # an IN_IGNORED for it follows: unknown then
                del self.dirs[wd]
                if self.wds.get(d.path) == wd:
                    del self.wds[d.path]

    def _reattach_under(self, path: str) -> None:
        """A watched directory went away: roots at or below it wait for it to come back."""
        for root in self.roots:
            if (root == path or root.startswith(path + "/")) and not self._under_recursive(root):
                self._attach(root, report=False)
