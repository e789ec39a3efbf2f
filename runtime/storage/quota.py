"""Project quotas for a container's writable layer (Compose's `storage_opt: {size: ...}`).

A container's writes land in <container_dir>/rootfs (overlay's upper and work dirs). Where the
filesystem holding it supports project quotas (xfs mounted with pquota/prjquota, ext4 with the
`project` and `quota` features mounted with prjquota), that directory gets a project id of its
own with the PROJINHERIT flag (everything created below it inherits the id) and the project
gets a block hard limit: the container's writes fail with EDQUOT past it. This is what
Docker's overlay2 driver does on xfs.

Ids: a counter under a lock in <state root>/quota-next-id, starting at FIRST_ID; an id whose
quota already has usage or limits (someone else's project) is skipped. The id in use is
recorded in <container_dir>/quota-projid so removal clears the limit.

Syscalls: FS_IOC_FSGETXATTR/FS_IOC_FSSETXATTR (struct fsxattr) on the directory, and
quotactl_fd(2) (Linux 5.14+) with Q_GETQUOTA/Q_SETQUOTA for PRJQUOTA, which xfs and ext4
both serve through the generic quota interface; no device node is needed.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from runtime.storage.errors import InvalidArgument, StorageError

FIRST_ID = 0x636D0000  # "cm..": far from the small ids admins hand out in /etc/projid
NEXT_ID_FILE = "quota-next-id"
PROJID_FILE = "quota-projid"

XFS_SUPER_MAGIC = 0x58465342
EXT4_SUPER_MAGIC = 0xEF53

# <linux/fs.h>: struct fsxattr is 28 bytes: xflags, extsize, nextents, projid, cowextsize, pad[8]
_FSXATTR = struct.Struct("=IIIII8s")
FS_IOC_FSGETXATTR = 0x801C581F  # _IOR('X', 31, struct fsxattr)
FS_IOC_FSSETXATTR = 0x401C5820  # _IOW('X', 32, struct fsxattr)
FS_XFLAG_PROJINHERIT = 0x00000200

# <linux/quota.h>
PRJQUOTA = 2
SUBCMDSHIFT = 8
Q_GETQUOTA = 0x800007
Q_SETQUOTA = 0x800008
QIF_BLIMITS = 1
QIF_SPACE = 4
QUOTA_BLOCK = 1024  # dqb_bhardlimit counts 1 KiB blocks
SYS_QUOTACTL_FD = 443  # the same number on every architecture (added in 5.14)


class _Dqblk(ctypes.Structure):  # struct if_dqblk
    _fields_ = [("bhardlimit", ctypes.c_uint64), ("bsoftlimit", ctypes.c_uint64),
                ("curspace", ctypes.c_uint64), ("ihardlimit", ctypes.c_uint64),
                ("isoftlimit", ctypes.c_uint64), ("curinodes", ctypes.c_uint64),
                ("btime", ctypes.c_uint64), ("itime", ctypes.c_uint64),
                ("valid", ctypes.c_uint32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class QuotaUnsupported(InvalidArgument):
    """The filesystem under a path cannot limit a directory's size: the user asked for a
    size where the host cannot give one."""


@dataclass(frozen=True)
class Filesystem:
    mountpoint: str
    fstype: str
    options: frozenset[str]  # mount options and superblock options together

    @property
    def project_quota(self) -> bool:
        if self.fstype == "xfs":
            return bool(self.options & {"pquota", "prjquota"})  # the kernel shows prjquota
        if self.fstype == "ext4":
            return "prjquota" in self.options
        return False


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def filesystem_of(path: str | os.PathLike[str]) -> Filesystem:
    """The mount holding `path` (which must exist), from /proc/self/mountinfo."""
    real = os.path.realpath(path)
    dev = os.stat(real).st_dev
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        fs = find_mount(f.read(), real, f"{os.major(dev)}:{os.minor(dev)}")
    if fs is None:
        raise QuotaUnsupported(f"{real}: no mount found for it in /proc/self/mountinfo")
    return fs


def find_mount(mountinfo: str, real: str, devno: str) -> Filesystem | None:
    """The entry of `mountinfo` with device `devno` ("major:minor") whose mount point is the
    longest prefix of the resolved path `real` (the last such entry: the one on top)."""
    best: Filesystem | None = None
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 6 or len(rfields) < 3:
            continue
        mp = _unescape(fields[4])
        if fields[2] != devno or not (real == mp or real.startswith(mp.rstrip("/") + "/")):
            continue
        if best is None or len(mp) >= len(best.mountpoint):
            opts = frozenset(fields[5].split(",")) | frozenset(rfields[2].split(","))
            best = Filesystem(mp, rfields[0], opts)
    return best


def require(path: str | os.PathLike[str], what: str) -> Filesystem:
    """The filesystem of `path` if it has project quotas; else QuotaUnsupported with one line
    starting with `what` (the key asking for it) and naming the fix."""
    fs = filesystem_of(path)
    if not fs.project_quota:
        raise QuotaUnsupported(
            f"{what} needs the state root on xfs mounted with pquota or ext4 (-O quota,project) "
            f"mounted with prjquota; {path} is on {fs.fstype} at {fs.mountpoint} without it")
    return fs


# -- the syscalls -------------------------------------------------------------------------
def get_project(path: str | os.PathLike[str]) -> tuple[int, bool]:
    """(project id, PROJINHERIT set) of a file or directory."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        buf = bytearray(_FSXATTR.size)
        fcntl.ioctl(fd, FS_IOC_FSGETXATTR, buf)
        xflags, _, _, projid, _, _ = _FSXATTR.unpack(buf)
        return projid, bool(xflags & FS_XFLAG_PROJINHERIT)
    finally:
        os.close(fd)


def set_project(path: str | os.PathLike[str], projid: int, inherit: bool = True) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        buf = bytearray(_FSXATTR.size)
        fcntl.ioctl(fd, FS_IOC_FSGETXATTR, buf)
        xflags, extsize, nextents, _, cow, pad = _FSXATTR.unpack(buf)
        xflags = xflags | FS_XFLAG_PROJINHERIT if inherit else xflags & ~FS_XFLAG_PROJINHERIT
        fcntl.ioctl(fd, FS_IOC_FSSETXATTR, _FSXATTR.pack(xflags, extsize, nextents, projid, cow, pad))
    finally:
        os.close(fd)


def _quotactl(path: str | os.PathLike[str], cmd: int, projid: int, dq: _Dqblk) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        qcmd = (cmd << SUBCMDSHIFT) | PRJQUOTA  # QCMD(cmd, PRJQUOTA)
        rc = _libc.syscall(ctypes.c_long(SYS_QUOTACTL_FD), ctypes.c_int(fd), ctypes.c_uint(qcmd),
                           ctypes.c_int(projid), ctypes.byref(dq))
        if rc != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"quotactl_fd({path}, project {projid}): {os.strerror(err)}")
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Usage:
    limit: int  # bytes, 0: none
    used: int  # bytes


def get_limit(path: str | os.PathLike[str], projid: int) -> Usage:
    """The hard limit and usage of project `projid` on the filesystem of `path`."""
    dq = _Dqblk()
    try:
        _quotactl(path, Q_GETQUOTA, projid, dq)
    except OSError as e:
        if e.errno != errno.ENOENT:  # xfs: no quota record for that id yet
            raise
        return Usage(0, 0)
    return Usage(dq.bhardlimit * QUOTA_BLOCK, dq.curspace)


def set_limit(path: str | os.PathLike[str], projid: int, size: int) -> None:
    """A block hard limit of `size` bytes (rounded up to 1 KiB; 0 removes it) for `projid`."""
    blocks = (size + QUOTA_BLOCK - 1) // QUOTA_BLOCK
    dq = _Dqblk(bhardlimit=blocks, bsoftlimit=0, valid=QIF_BLIMITS)
    _quotactl(path, Q_SETQUOTA, projid, dq)


# -- a container's writable layer -----------------------------------------------------------
def _allocate(state_root: Path, probe: str) -> int:
    """A project id nobody uses on the filesystem of `probe`: the persisted counter's next
    value, skipping ids that already carry usage or limits."""
    state_root.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_root / NEXT_ID_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.pread(fd, 32, 0).strip()
        projid = int(raw) if raw.isdigit() else FIRST_ID
        for _ in range(10_000):
            if projid >= 2**32 - 1:
                projid = FIRST_ID
            usage = get_limit(probe, projid)
            if usage.limit == 0 and usage.used == 0:
                break
            projid += 1
        else:
            raise StorageError(f"no free project quota id found from {FIRST_ID} on")
        data = f"{projid + 1}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        return projid
    finally:
        os.close(fd)


def limit_dir(state_root: Path, container_dir: Path, directory: Path, size: int, what: str) -> int:
    """Give `directory` (made if missing) a fresh project id inherited by all below it and a
    hard limit of `size` bytes; the id is recorded in `container_dir`. Returns the id."""
    directory.mkdir(parents=True, exist_ok=True)
    require(directory, what)
    try:
        projid = _allocate(state_root, str(directory))
        set_project(directory, projid)
        for child in directory.iterdir():  # made before the id was set: give them it too
            if child.is_dir() and not child.is_symlink():
                set_project(child, projid)
        set_limit(directory, projid, size)
    except OSError as e:
        if e.errno in (errno.ENOTTY, errno.EOPNOTSUPP, errno.ENOSYS, errno.ESRCH, errno.EINVAL):
            raise QuotaUnsupported(f"{what}: project quotas are not usable on {directory}: "
                                   f"{e.strerror}") from None
        raise
    (container_dir / PROJID_FILE).write_text(f"{projid}\n")
    return projid


def release(container_dir: Path, directory: Path) -> None:
    """Clear the limit of the project recorded in `container_dir` (best effort: the
    directory is about to be deleted, which ends its usage)."""
    f = container_dir / PROJID_FILE
    try:
        projid = int(f.read_text().strip())
    except (OSError, ValueError):
        return
    probe = directory if directory.is_dir() else container_dir
    try:
        set_limit(probe, projid, 0)
    except OSError:
        pass
    f.unlink(missing_ok=True)
