"""bpf(2) through ctypes: load a cgroup device program and attach it to a cgroup v2 directory.

    fd = load_device_program(code)       BPF_PROG_LOAD, type BPF_PROG_TYPE_CGROUP_DEVICE
    attach_device_program(dir, fd)       BPF_PROG_ATTACH, type BPF_CGROUP_DEVICE, flags 0
    os.close(fd)                          the attachment keeps the program alive
    attached_device_programs(dir)        BPF_PROG_QUERY: ids of the programs on that cgroup

Attach flags: 0 (exclusive), not runc's BPF_F_ALLOW_MULTI. runc shares its cgroups with
systemd, which attaches its own device program with ALLOW_MULTI, and a cgroup's programs must
all carry the same flags; runc therefore adds its program and detaches the previous ones
afterwards (a moment with two filters, and a query + detach round). The container cgroups
here are ours alone, so we attach with 0: the kernel keeps at most one program per cgroup
and a new attach replaces the old one atomically (a restarted container never runs without a
filter, and never with two); a cgroup below ours cannot attach a program of its own (the
kernel refuses unless the parent allows override or multi). Programs of ancestors attached
with ALLOW_MULTI (systemd's DeviceAllow= on the unit composerd runs in) still run, and a
device must pass them too; an ancestor's exclusive program makes our attach fail with EPERM,
reported as such. When the cgroup is removed the kernel detaches and frees the program.

The license string only matters to programs that call GPL-only helpers; ours calls none
and carries the project's license. Pre-5.11 kernels charge BPF memory to RLIMIT_MEMLOCK:
on EPERM the limit is raised for the retry and put back right after (runc raises it for
good; here containers are forked from this process and must not inherit it).
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import resource
from collections.abc import Iterator
from pathlib import Path

from runtime.process import sysnr

# bpf(2)'s number per architecture (asm/unistd_64.h; asm-generic/unistd.h for aarch64).
# linux/bpf.h
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_QUERY = 5, 8, 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
ATTACH_FLAGS = 0  # exclusive: see the module docstring

LICENSE = b"Apache-2.0"
PROG_NAME = b"composer_dev"  # shown by bpftool; at most 15 characters
LOG_SIZE = 1 << 16


class BPFError(OSError):
    """bpf(2) could not load or attach the device filter; the message names what is missing."""

    def __str__(self) -> str:
        return str(self.strerror)


class _ProgLoad(ctypes.Structure):  # union bpf_attr, the BPF_PROG_LOAD part
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16),
        ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
    ]


class _ProgAttach(ctypes.Structure):  # BPF_PROG_ATTACH
    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_bpf_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
        ("replace_bpf_fd", ctypes.c_uint32),
    ]


class _ProgQuery(ctypes.Structure):  # BPF_PROG_QUERY
    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("query_flags", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
        ("prog_ids", ctypes.c_uint64),
        ("prog_cnt", ctypes.c_uint32),
    ]


_libc: ctypes.CDLL | None = None


def syscall_number(machine: str | None = None) -> int:
    """bpf(2)'s number on `machine` (default: this host), from the one syscall table."""
    m = machine or platform.machine()
    try:
        return sysnr.number("bpf", m)
    except sysnr.UnsupportedArch:
        raise BPFError(errno.ENOSYS, f"no bpf(2) number known for architecture {m} "
                                     f"(supported: {', '.join(sysnr.TABLES)})") from None


def _bpf(cmd: int, attr: ctypes.Structure) -> int:
    """bpf(cmd, &attr, sizeof attr); OSError with the kernel's errno on failure."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    ret = _libc.syscall(ctypes.c_long(syscall_number()), ctypes.c_int(cmd),
                        ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr)))
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return int(ret)


@contextlib.contextmanager
def _memlock_raised() -> Iterator[None]:
    """RLIMIT_MEMLOCK at its maximum for the duration (pre-5.11 kernels charge BPF to it)."""
    old = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    try:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (old[1], old[1]))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_MEMLOCK, old)


def _load(code: bytes, log: ctypes.Array[ctypes.c_char] | None) -> int:
    insns = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(LICENSE)
    attr = _ProgLoad(
        prog_type=BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt=len(code) // 8,
        insns=ctypes.addressof(insns),
        license=ctypes.addressof(lic),
        prog_name=PROG_NAME,
    )
    if log is not None:
        attr.log_level, attr.log_size, attr.log_buf = 1, len(log), ctypes.addressof(log)
    return _bpf(BPF_PROG_LOAD, attr)


def _verifier_says(log: ctypes.Array[ctypes.c_char]) -> str:
    lines = [x.strip() for x in log.value.decode(errors="replace").splitlines() if x.strip()]
    # the verifier ends with "processed N insns ..." after the reason; keep the reason
    reasons = [x for x in lines if not x.startswith(("processed ", "verification time"))]
    return reasons[-1] if reasons else ""


def load_device_program(code: bytes) -> int:
    """Load `code` (encoded instructions) as a cgroup device program; returns its fd."""
    if not code or len(code) % 8:
        raise BPFError(errno.EINVAL, f"a device program is a non-empty multiple of 8 bytes, not {len(code)}")
    try:
        try:
            return _load(code, None)
        except OSError as e:
            if e.errno != errno.EPERM:
                raise
            with _memlock_raised():  # an old kernel's memlock accounting, or truly no privilege
                return _load(code, None)
    except OSError as e:
        if e.errno == errno.ENOSYS:
            raise BPFError(e.errno, "the kernel has no bpf(2) system call (CONFIG_BPF_SYSCALL "
                                    "is off); cgroup v2 device control needs it") from None
        if e.errno == errno.EPERM:
            raise BPFError(e.errno, "bpf(2) refused to load the device filter (EPERM): composerd "
                                    "needs CAP_SYS_ADMIN (or CAP_BPF) in the host's user "
                                    "namespace, not a rootless or nested container") from None
        if e.errno not in (errno.EINVAL, errno.EACCES):
            raise BPFError(e.errno, f"bpf(2) could not load the device filter: {e.strerror}") from None
    # EINVAL/EACCES: load again with the verifier's log to say why
    log = ctypes.create_string_buffer(LOG_SIZE)
    try:
        return _load(code, log)  # a transient refusal: fine the second time
    except OSError as e:
        why = _verifier_says(log)
        if why:
            raise BPFError(e.errno, f"the kernel's verifier rejected the device filter: {why}") from None
        raise BPFError(e.errno, "the kernel does not know BPF_PROG_TYPE_CGROUP_DEVICE programs "
                                f"({e.strerror}): cgroup v2 device control needs Linux 4.15+ "
                                "built with CONFIG_CGROUP_BPF") from None


def _open_dir(cgroup_dir: Path) -> int:
    try:
        return os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise BPFError(e.errno, f"cannot open cgroup {cgroup_dir}: {e.strerror}") from None


def attach_device_program(cgroup_dir: Path, prog_fd: int) -> None:
    """Attach the loaded program to `cgroup_dir`, replacing the program we attached before."""
    dfd = _open_dir(cgroup_dir)
    try:
        _bpf(BPF_PROG_ATTACH, _ProgAttach(target_fd=dfd, attach_bpf_fd=prog_fd,
                                          attach_type=BPF_CGROUP_DEVICE, attach_flags=ATTACH_FLAGS))
    except OSError as e:
        if e.errno == errno.EPERM:
            raise BPFError(e.errno, f"the kernel refused to attach the device filter to {cgroup_dir} "
                                    "(EPERM): a parent cgroup holds an exclusive device program, or "
                                    "this one holds a program attached with other flags") from None
        if e.errno in (errno.EBADF, errno.EINVAL):
            raise BPFError(e.errno, f"cannot attach a device filter to {cgroup_dir}: it is not a "
                                    f"cgroup v2 directory ({e.strerror})") from None
        raise BPFError(e.errno, f"cannot attach the device filter to {cgroup_dir}: {e.strerror}") from None
    finally:
        os.close(dfd)


def attach_device_filter(cgroup_dir: Path, code: bytes) -> None:
    """Load `code` and attach it to `cgroup_dir`; the program fd is closed after the attach."""
    fd = load_device_program(code)
    try:
        attach_device_program(cgroup_dir, fd)
    finally:
        os.close(fd)


def attached_device_programs(cgroup_dir: Path) -> list[int]:
    """Ids of the device programs attached to `cgroup_dir` itself (not its ancestors')."""
    dfd = _open_dir(cgroup_dir)
    try:
        ids = (ctypes.c_uint32 * 64)()
        q = _ProgQuery(target_fd=dfd, attach_type=BPF_CGROUP_DEVICE,
                       prog_ids=ctypes.addressof(ids), prog_cnt=len(ids))
        try:
            _bpf(BPF_PROG_QUERY, q)
        except OSError as e:
            raise BPFError(e.errno, f"cannot list the device programs of {cgroup_dir}: {e.strerror}") from None
        return list(ids[: q.prog_cnt])
    finally:
        os.close(dfd)
