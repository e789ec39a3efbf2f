"""The syscall seam: everything the launch sequence asks of the kernel goes through `Syscalls`.

`LibcSyscalls` is the real thing (ctypes on libc, errno kept, OSError naming the path);
`RecordingSyscalls` records each call as a tuple so unit tests check the launch ORDER
without root (as youki's `Syscall` trait and its test double do).

File-system helpers (makedirs, symlink, write_file, ...) are part of the seam too: the launch
sequence creates mount points and writes sysctls, and the recording fake must see those.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno as _errno
import fcntl
import os
import resource
import signal
import socket
import struct
from typing import Protocol

from runtime.process import sysnr

# clone / unshare flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NS_FLAGS: dict[str, int] = {
    "mnt": CLONE_NEWNS,
    "cgroup": CLONE_NEWCGROUP,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "user": CLONE_NEWUSER,
    "pid": CLONE_NEWPID,
    "net": CLONE_NEWNET,
}

# mount flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_UNBINDABLE = 1 << 17
MNT_DETACH = 2
CLONE_INTO_CGROUP = 0x200000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
}

# prctl options
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
SECCOMP_MODE_FILTER = 2
SECCOMP_SET_MODE_FILTER = 1  # seccomp(2) operation, for a filter installed with flags

_CAP_V3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


# new mount API (linux/mount.h, fcntl.h); syscall numbers from sysnr
OPEN_TREE_CLONE = 1
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_IDMAP = 0x00100000
MOUNT_ATTR_SIZE_VER0 = 32


class _CloneArgs(ctypes.Structure):  # struct clone_args, CLONE_ARGS_SIZE_VER2 (88 bytes)
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size",
        "tls", "set_tid", "set_tid_size", "cgroup")]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Syscalls(Protocol):
    """What the container's init and the exec helper need from the kernel."""

    def unshare(self, flags: int) -> None: ...
    def setns(self, fd: int, nstype: int) -> None: ...
    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None: ...
    def umount2(self, target: str, flags: int) -> None: ...
    def pivot_root(self, new_root: str, put_old: str) -> None: ...
    def sethostname(self, name: str) -> None: ...
    def loopback_up(self) -> None: ...
    def fork_into_cgroup(self, cgroup_fd: int, flags: int = 0) -> int: ...
    def setdomainname(self, name: str) -> None: ...
    def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> None: ...
    def capset(self, effective: int, permitted: int, inheritable: int) -> None: ...
    def setgroups(self, gids: list[int]) -> None: ...
    def setresgid(self, gid: int) -> None: ...
    def setresuid(self, uid: int) -> None: ...
    def setrlimit(self, name: str, soft: int, hard: int) -> None: ...
    def mknod(self, path: str, mode: int, major: int, minor: int) -> None: ...
    def makedirs(self, path: str, mode: int = 0o755) -> None: ...
    def touch(self, path: str) -> None: ...
    def symlink(self, target: str, path: str) -> None: ...
    def write_file(self, path: str, data: str) -> None: ...
    def read_file(self, path: str) -> str | None: ...
    def readlink(self, path: str) -> str | None: ...
    def is_dir(self, path: str) -> bool: ...
    def exists(self, path: str) -> bool: ...
    def chdir(self, path: str) -> None: ...
    def chmod(self, path: str, mode: int) -> None: ...
    def chown(self, path: str, uid: int, gid: int) -> None: ...
    def unlink(self, path: str) -> None: ...
    def open_ns(self, path: str) -> int: ...
    def close_fds(self, keep: tuple[int, ...]) -> None: ...
    def execve(self, path: str, argv: list[str], env: list[str]) -> None: ...
    def close(self, fd: int) -> None: ...
    def seccomp(self, prog: bytes, flags: int = 0) -> None: ...
    def idmapped_clone(self, path: str, userns_fd: int) -> int: ...
    def move_mount(self, fd: int, target: str) -> None: ...


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


# libc again, its calls made with the GIL held (as os.fork() calls fork): for clone3
_PYLIBC = ctypes.PyDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_PYLIBC.syscall.restype = ctypes.c_long


def _err(what: str, path: str | None = None) -> OSError:
    e = ctypes.get_errno()
    where = f" {path}" if path else ""
    return OSError(e, f"{what}{where}: {os.strerror(e)}")


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


class LibcSyscalls:
    """The real kernel, through ctypes. Load once (in the monitor) before any fork."""

    def __init__(self) -> None:
        self.libc = _libc()
        self.libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                    ctypes.c_ulong, ctypes.c_char_p]
        self.libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self.libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong,
                                    ctypes.c_ulong, ctypes.c_ulong]
        self.libc.syscall.restype = ctypes.c_long
        # numbers of the raw syscalls below, for this machine (resolved before any fork)
        self.nr = {name: sysnr.number(name) for name in
                   ("pivot_root", "open_tree", "move_mount", "mount_setattr", "seccomp", "clone3")}

    def unshare(self, flags: int) -> None:
        if self.libc.unshare(ctypes.c_int(flags)) != 0:
            raise _err(f"unshare(0x{flags:x})")

    def setns(self, fd: int, nstype: int) -> None:
        if self.libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)) != 0:
            raise _err(f"setns(fd {fd}, 0x{nstype:x})")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:
        if self.libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)) != 0:
            raise _err(f"mount {source or fstype} on", target)

    def umount2(self, target: str, flags: int) -> None:
        if self.libc.umount2(_b(target), flags) != 0:
            raise _err("umount", target)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        if self.libc.syscall(ctypes.c_long(self.nr["pivot_root"]), _b(new_root),
                             _b(put_old)) != 0:
            raise _err("pivot_root", new_root)

    def fork_into_cgroup(self, cgroup_fd: int, flags: int = 0) -> int:
        """fork(), the child born in the cgroup v2 directory `cgroup_fd` (clone3 with
        CLONE_INTO_CGROUP, Linux >= 5.7) and in the new namespaces of `flags` (CLONE_NEWPID):
        no cgroup.procs write afterwards, whose first one in a process waits for an RCU grace
        period (cgroup_threadgroup_rwsem). Returns as os.fork() does; OSError where the kernel
        refuses (older kernel, not a v2 directory, a seccomp filter without clone3).

        Make the pid namespace here, not by unshare() before: a clone that fails after the
        kernel gave the child pid 1 of an unshared namespace leaves that namespace unable to
        take any other process (ENOMEM), so no fallback fork could follow; a namespace of
        the failed clone itself just goes with it.

        As os.fork() does it: with the GIL held (PyDLL) between PyOS_BeforeFork and
        PyOS_AfterFork_Child/Parent, so the child's interpreter state is made whole again."""
        args = _CloneArgs(flags=CLONE_INTO_CGROUP | flags, exit_signal=signal.SIGCHLD,
                          cgroup=cgroup_fd)
        api = ctypes.pythonapi
        api.PyOS_BeforeFork()
        pid = _PYLIBC.syscall(ctypes.c_long(self.nr["clone3"]), ctypes.byref(args),
                              ctypes.c_size_t(ctypes.sizeof(args)))
        err = ctypes.get_errno() if pid < 0 else 0
        if pid == 0:
            api.PyOS_AfterFork_Child()
        else:
            api.PyOS_AfterFork_Parent()
        if pid < 0:
            raise OSError(err, f"clone3 into cgroup: {os.strerror(err)}")
        return int(pid)

    def loopback_up(self) -> None:
        """Set IFF_UP on `lo` of this thread's network namespace: two ioctls on a datagram
        socket made here (SIOCGIFFLAGS/SIOCSIFFLAGS), as crun does in the container's process."""
        ifreq = struct.pack("16sH14x", b"lo", 0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            try:
                flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
                if not flags & IFF_UP:
                    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
            except OSError as e:
                raise OSError(e.errno, f"bring lo up: {e.strerror}") from None

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        if self.libc.sethostname(raw, ctypes.c_size_t(len(raw))) != 0:
            raise _err(f"sethostname {name!r}")

    def setdomainname(self, name: str) -> None:
        raw = name.encode()
        if self.libc.setdomainname(raw, ctypes.c_size_t(len(raw))) != 0:
            raise _err(f"setdomainname {name!r}")

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> None:
        if self.libc.prctl(option, arg2, arg3, 0, 0) != 0:
            raise _err(f"prctl({option}, {arg2})")

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        hdr = _CapHeader(_CAP_V3, 0)
        data = (_CapData * 2)()
        for i in range(2):
            shift = 32 * i
            data[i].effective = (effective >> shift) & 0xFFFFFFFF
            data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
            data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
        if self.libc.capset(ctypes.byref(hdr), data) != 0:
            raise _err("capset")

    def setgroups(self, gids: list[int]) -> None:
        os.setgroups(gids)

    def setresgid(self, gid: int) -> None:
        os.setresgid(gid, gid, gid)

    def setresuid(self, uid: int) -> None:
        os.setresuid(uid, uid, uid)

    def setrlimit(self, name: str, soft: int, hard: int) -> None:
        res = getattr(resource, "RLIMIT_" + name.upper())
        resource.setrlimit(res, (soft, hard))

    def mknod(self, path: str, mode: int, major: int, minor: int) -> None:
        os.mknod(path, mode, os.makedev(major, minor))

    def makedirs(self, path: str, mode: int = 0o755) -> None:
        os.makedirs(path, mode, exist_ok=True)

    def touch(self, path: str) -> None:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))

    def symlink(self, target: str, path: str) -> None:
        try:
            os.symlink(target, path)
        except FileExistsError:
            pass

    def write_file(self, path: str, data: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)

    def read_file(self, path: str) -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return None

    def readlink(self, path: str) -> str | None:
        try:
            return os.readlink(path)
        except OSError as e:
            if e.errno in (_errno.EINVAL, _errno.ENOENT, _errno.ENOTDIR):
                return None
            raise

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def chdir(self, path: str) -> None:
        os.chdir(path)

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(path, mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.lchown(path, uid, gid)

    def unlink(self, path: str) -> None:
        """Remove a file, node or symlink; a missing one is fine."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def open_ns(self, path: str) -> int:
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise OSError(e.errno, f"open namespace {path}: {e.strerror}") from None

    def close(self, fd: int) -> None:
        os.close(fd)

    def seccomp(self, prog: bytes, flags: int = 0) -> None:
        """Install a BPF filter (an array of struct sock_filter, see runtime.process.seccomp)
        with seccomp(2)'s SECCOMP_FILTER_FLAG_* `flags` (prctl when there are none).
        Needs no_new_privs or CAP_SYS_ADMIN; applies to this thread and everything it execs."""
        buf = ctypes.create_string_buffer(prog, len(prog))
        fprog = _SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
        if flags:
            rc = self.libc.syscall(ctypes.c_long(self.nr["seccomp"]),
                                   ctypes.c_uint(SECCOMP_SET_MODE_FILTER), ctypes.c_uint(flags),
                                   ctypes.c_void_p(ctypes.addressof(fprog)))
        else:
            rc = self.libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog),
                                 0, 0)
        if rc != 0:
            raise _err(f"install seccomp filter ({len(prog) // 8} instructions, "
                       f"flags 0x{flags:x})")

    def idmapped_clone(self, path: str, userns_fd: int) -> int:
        """A detached copy of the mount tree at `path`, idmapped with the user namespace
        `userns_fd` (open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_IDMAP))."""
        fd = self.libc.syscall(ctypes.c_long(self.nr["open_tree"]), ctypes.c_int(-100), _b(path),
                               ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC | AT_RECURSIVE))
        if fd < 0:
            raise _err("open_tree", path)
        attr = ctypes.create_string_buffer(
            struct.pack("=QQQQ", MOUNT_ATTR_IDMAP, 0, 0, userns_fd), MOUNT_ATTR_SIZE_VER0)
        if self.libc.syscall(ctypes.c_long(self.nr["mount_setattr"]), ctypes.c_int(fd), b"",
                             ctypes.c_uint(AT_EMPTY_PATH | AT_RECURSIVE), attr,
                             ctypes.c_size_t(MOUNT_ATTR_SIZE_VER0)) != 0:
            err = _err("idmapped mount (mount_setattr MOUNT_ATTR_IDMAP) of", path)
            os.close(fd)
            raise err
        return int(fd)

    def move_mount(self, fd: int, target: str) -> None:
        """Attach a detached mount (from idmapped_clone) at `target` in our mount namespace."""
        if self.libc.syscall(ctypes.c_long(self.nr["move_mount"]), ctypes.c_int(fd), b"",
                             ctypes.c_int(-100), _b(target),
                             ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)) != 0:
            raise _err("move_mount", target)

    def close_fds(self, keep: tuple[int, ...]) -> None:
        """Close every fd above 2 except `keep` (close_range under the hood)."""
        low = 3
        for fd in sorted(k for k in keep if k >= 3):
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, 1 << 20)

    def execve(self, path: str, argv: list[str], env: list[str]) -> None:
        envd = {}
        for e in env:
            k, _, v = e.partition("=")
            envd[k] = v
        os.execve(path, argv, envd)


Call = tuple[object, ...]


class RecordingSyscalls:
    """A fake kernel: records every call in order; `files` answers read_file/is_dir."""

    def __init__(self, files: dict[str, str] | None = None, dirs: set[str] | None = None,
                 fail: dict[str, OSError] | None = None) -> None:
        self.calls: list[Call] = []
        self.files = dict(files or {})
        self.dirs = set(dirs or ())
        self.fail = dict(fail or {})  # call name -> error to raise
        self.executables: set[str] = set()

    def _rec(self, *call: object) -> None:
        self.calls.append(call)
        err = self.fail.get(str(call[0]))
        if err is not None:
            raise err

    def names(self) -> list[str]:
        return [str(c[0]) for c in self.calls]

    def index(self, *prefix: object) -> int:
        """Index of the first call starting with `prefix`; ValueError if none."""
        for i, c in enumerate(self.calls):
            if c[: len(prefix)] == prefix:
                return i
        raise ValueError(f"no call {prefix!r} in {self.calls!r}")

    def unshare(self, flags: int) -> None:
        self._rec("unshare", flags)

    def setns(self, fd: int, nstype: int) -> None:
        self._rec("setns", fd, nstype)

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:
        self._rec("mount", source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int) -> None:
        self._rec("umount2", target, flags)

    def loopback_up(self) -> None:
        self._rec("loopback_up")

    def fork_into_cgroup(self, cgroup_fd: int, flags: int = 0) -> int:
        self._rec("fork_into_cgroup", cgroup_fd, flags)
        raise OSError(_errno.ENOSYS, "clone3 into cgroup: not in the fake kernel")

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._rec("pivot_root", new_root, put_old)

    def sethostname(self, name: str) -> None:
        self._rec("sethostname", name)

    def setdomainname(self, name: str) -> None:
        self._rec("setdomainname", name)

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> None:
        self._rec("prctl", option, arg2, arg3)

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self._rec("capset", effective, permitted, inheritable)

    def setgroups(self, gids: list[int]) -> None:
        self._rec("setgroups", tuple(gids))

    def setresgid(self, gid: int) -> None:
        self._rec("setresgid", gid)

    def setresuid(self, uid: int) -> None:
        self._rec("setresuid", uid)

    def setrlimit(self, name: str, soft: int, hard: int) -> None:
        self._rec("setrlimit", name, soft, hard)

    def mknod(self, path: str, mode: int, major: int, minor: int) -> None:
        self._rec("mknod", path, mode, major, minor)

    def makedirs(self, path: str, mode: int = 0o755) -> None:
        self._rec("makedirs", path)
        self.dirs.add(path)

    def touch(self, path: str) -> None:
        self._rec("touch", path)

    def symlink(self, target: str, path: str) -> None:
        self._rec("symlink", target, path)

    def write_file(self, path: str, data: str) -> None:
        self._rec("write_file", path, data)

    def read_file(self, path: str) -> str | None:
        return self.files.get(path)

    def readlink(self, path: str) -> str | None:
        return None

    def is_dir(self, path: str) -> bool:
        return path in self.dirs

    def exists(self, path: str) -> bool:
        return path in self.dirs or path in self.files

    def chdir(self, path: str) -> None:
        self._rec("chdir", path)

    def chmod(self, path: str, mode: int) -> None:
        self._rec("chmod", path, mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        self._rec("chown", path, uid, gid)

    def unlink(self, path: str) -> None:
        self._rec("unlink", path)
        self.files.pop(path, None)

    def open_ns(self, path: str) -> int:
        self._rec("open_ns", path)
        return 100 + len(self.calls)

    def close_fds(self, keep: tuple[int, ...]) -> None:
        self._rec("close_fds", keep)

    def execve(self, path: str, argv: list[str], env: list[str]) -> None:
        """Records; 'succeeds' (returns) for paths in `executables`, else ENOENT."""
        self._rec("execve", path, tuple(argv), tuple(env))
        if path not in self.executables:
            raise FileNotFoundError(2, "No such file or directory", path)

    def close(self, fd: int) -> None:
        self._rec("close", fd)

    def seccomp(self, prog: bytes, flags: int = 0) -> None:
        self._rec("seccomp", prog, flags)

    def idmapped_clone(self, path: str, userns_fd: int) -> int:
        self._rec("idmapped_clone", path, userns_fd)
        return 200 + len(self.calls)

    def move_mount(self, fd: int, target: str) -> None:
        self._rec("move_mount", fd, target)
