"""Docker's default seccomp profile as our own classic-BPF program (no libseccomp).

The program is built here as a list of `struct sock_filter` instructions and installed by the
init with prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER) (see `Syscalls.seccomp`). Its shape:

    load seccomp_data.arch; != host arch (AUDIT_ARCH_X86_64 / AARCH64)   -> KILL_PROCESS
    load seccomp_data.nr;   x86_64: nr >= 0x40000000 (x32 ABI)           -> ERRNO(EPERM)
    for each syscall with a rule:  jeq nr -> its block (every block ends in a RET)
        denied                          -> ERRNO(EPERM)
        clone   (no CAP_SYS_ADMIN)      -> arg0 & CLONE_NEW* ? ERRNO(EPERM) : ALLOW
        clone3  (no CAP_SYS_ADMIN)      -> ERRNO(ENOSYS)  (libc falls back to clone)
        personality                     -> ALLOW for 0, 8, 0x20000, 0x20008, 0xffffffff
        socket                          -> ERRNO(EPERM) for AF_VSOCK (40)
    ALLOW

"Denied" is what moby's profiles/seccomp/default.json does not allow for the container's
capabilities: DENIED below is every syscall of the x86_64/aarch64 tables that is not in
Docker's allowlist, and CAP_ALLOWS lifts the ones Docker allows with a capability (mount with
CAP_SYS_ADMIN, reboot with CAP_SYS_BOOT, ...). Unlike Docker (an allowlist), a syscall newer
than these tables is allowed: the kernel's own checks still apply, and libc never sees EPERM
for a syscall it probes (the clone3/faccessat2 breakage of old Docker profiles).
"""
from __future__ import annotations

import errno
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from runtime.errors import InvalidArgument

DEFAULT_PROFILE = "default"
PROFILES = (DEFAULT_PROFILE,)

# classic BPF (linux/filter.h, linux/bpf_common.h)
BPF_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_JMP_JEQ_K = 0x05 | 0x10 | 0x00
BPF_JMP_JGE_K = 0x05 | 0x30 | 0x00
BPF_JMP_JSET_K = 0x05 | 0x40 | 0x00
BPF_RET_K = 0x06 | 0x00

# linux/seccomp.h
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_MODE_FILTER = 2
PR_SET_SECCOMP = 22

# struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
OFF_NR = 0
OFF_ARCH = 4
OFF_ARGS = 16  # args[i] at 16 + 8*i; low word first on little-endian (both arches here)

X32_SYSCALL_BIT = 0x40000000
CLONE_NS_MASK = 0x7E020000  # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET (Docker's mask)
AF_VSOCK = 40
PERSONALITY_OK = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)  # Docker's allowed personas


@dataclass(frozen=True)
class Insn:
    """struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; }"""

    code: int
    jt: int
    jf: int
    k: int


@dataclass(frozen=True)
class Arch:
    machine: str  # os.uname().machine
    audit: int  # AUDIT_ARCH_*
    x32: bool  # has the x32 ABI (syscall numbers with bit 30 set)
    nr: dict[str, int]


# Numbers from asm/unistd_64.h (x86_64) and asm-generic/unistd.h (aarch64), for the syscalls
# that have a rule. Missing on an arch = does not exist there.
_X86_64 = {
    "personality": 135, "socket": 41, "clone": 56, "clone3": 435,
    "syslog": 103, "uselib": 134, "ustat": 136, "sysfs": 139, "vhangup": 153, "pivot_root": 155,
    "_sysctl": 156, "chroot": 161, "acct": 163, "settimeofday": 164, "mount": 165,
    "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169, "sethostname": 170,
    "setdomainname": 171, "iopl": 172, "ioperm": 173, "create_module": 174, "init_module": 175,
    "delete_module": 176, "get_kernel_syms": 177, "query_module": 178, "quotactl": 179,
    "nfsservctl": 180, "getpmsg": 181, "putpmsg": 182, "afs_syscall": 183, "tuxcall": 184,
    "security": 185, "lookup_dcookie": 212, "clock_settime": 227, "vserver": 236, "mbind": 237,
    "set_mempolicy": 238, "get_mempolicy": 239, "kexec_load": 246, "add_key": 248,
    "request_key": 249, "keyctl": 250, "migrate_pages": 256, "unshare": 272, "move_pages": 279,
    "perf_event_open": 298, "fanotify_init": 300, "open_by_handle_at": 304, "setns": 308,
    "kcmp": 312, "finit_module": 313, "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "pidfd_getfd": 438, "process_madvise": 440, "mount_setattr": 442,
    "quotactl_fd": 443, "set_mempolicy_home_node": 450,
}
_AARCH64 = {
    "personality": 92, "socket": 198, "clone": 220, "clone3": 435,
    "lookup_dcookie": 18, "umount2": 39, "mount": 40, "pivot_root": 41, "nfsservctl": 42,
    "chroot": 51, "vhangup": 58, "quotactl": 60, "acct": 89, "unshare": 97, "kexec_load": 104,
    "init_module": 105, "delete_module": 106, "clock_settime": 112, "syslog": 116,
    "reboot": 142, "sethostname": 161, "setdomainname": 162, "settimeofday": 170,
    "add_key": 217, "request_key": 218, "keyctl": 219, "swapon": 224, "swapoff": 225,
    "mbind": 235, "get_mempolicy": 236, "set_mempolicy": 237, "migrate_pages": 238,
    "move_pages": 239, "perf_event_open": 241, "fanotify_init": 262, "open_by_handle_at": 265,
    "setns": 268, "kcmp": 272, "finit_module": 273, "bpf": 280, "userfaultfd": 282,
    "kexec_file_load": 294, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_getfd": 438, "process_madvise": 440,
    "mount_setattr": 442, "quotactl_fd": 443, "set_mempolicy_home_node": 450,
}
ARCHES: dict[str, Arch] = {
    "x86_64": Arch("x86_64", 0xC000003E, True, _X86_64),
    "aarch64": Arch("aarch64", 0xC00000B7, False, _AARCH64),
}

# Not in Docker's allowlist on x86_64/aarch64 (the special four have their own blocks).
DENIED: frozenset[str] = (frozenset(_X86_64) | frozenset(_AARCH64)) - {
    "personality", "socket", "clone", "clone3"}

# Allowed by Docker when the container has the capability.
CAP_ALLOWS: dict[str, tuple[str, ...]] = {
    "DAC_READ_SEARCH": ("open_by_handle_at",),
    "SYS_ADMIN": ("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
                  "fspick", "lookup_dcookie", "mount", "mount_setattr", "move_mount",
                  "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname",
                  "sethostname", "setns", "syslog", "umount", "umount2", "unshare"),
    "SYS_BOOT": ("reboot",),
    "SYS_CHROOT": ("chroot",),
    "SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "SYS_PACCT": ("acct",),
    "SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise"),
    "SYS_RAWIO": ("iopl", "ioperm"),
    "SYS_TIME": ("settimeofday", "stime", "clock_settime"),
    "SYS_TTY_CONFIG": ("vhangup",),
    "SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "SYSLOG": ("syslog",),
    "BPF": ("bpf",),
    "PERFMON": ("perf_event_open",),
}


def host_arch(machine: str | None = None) -> Arch:
    m = machine or os.uname().machine
    arch = ARCHES.get(m)
    if arch is None:
        raise InvalidArgument(
            f"the default seccomp profile is not available on {m}: "
            "use security_opt seccomp=unconfined", subject=m)
    return arch


def check_profile(profile: str | None) -> None:
    if profile is not None and profile not in PROFILES:
        raise InvalidArgument(
            f"unknown seccomp profile {profile!r}: only Docker's default profile is built in; "
            "use security_opt seccomp=unconfined or drop the option", subject=profile)


def denied_syscalls(caps: Iterable[str]) -> frozenset[str]:
    """The syscalls that return EPERM for a container with these capabilities."""
    lifted = {name for cap in caps for name in CAP_ALLOWS.get(cap, ())}
    return DENIED - lifted


def _ret(action: int) -> Insn:
    return Insn(BPF_RET_K, 0, 0, action)


def _ld(offset: int) -> Insn:
    return Insn(BPF_LD_W_ABS, 0, 0, offset)


EPERM = SECCOMP_RET_ERRNO | errno.EPERM
ENOSYS = SECCOMP_RET_ERRNO | errno.ENOSYS
ALLOW = SECCOMP_RET_ALLOW


def _clone_block() -> list[Insn]:
    # A container without CAP_SYS_ADMIN may fork and make threads, not namespaces.
    return [_ld(OFF_ARGS), Insn(BPF_JMP_JSET_K, 0, 1, CLONE_NS_MASK), _ret(EPERM), _ret(ALLOW)]


def _personality_block() -> list[Insn]:
    n = len(PERSONALITY_OK)
    out = [_ld(OFF_ARGS + 4), Insn(BPF_JMP_JEQ_K, 0, n + 1, 0), _ld(OFF_ARGS)]
    for i, value in enumerate(PERSONALITY_OK):
        out.append(Insn(BPF_JMP_JEQ_K, n - i, 0, value))  # -> the ALLOW after the EPERM
    return out + [_ret(EPERM), _ret(ALLOW)]


def _socket_block() -> list[Insn]:
    return [_ld(OFF_ARGS), Insn(BPF_JMP_JEQ_K, 0, 1, AF_VSOCK), _ret(EPERM), _ret(ALLOW)]


def compile_default(arch: Arch, caps: Iterable[str]) -> list[Insn]:
    """Docker's default profile for a container with `caps`, as a BPF program for `arch`."""
    caps = tuple(caps)
    prog = [_ld(OFF_ARCH), Insn(BPF_JMP_JEQ_K, 1, 0, arch.audit),
            _ret(SECCOMP_RET_KILL_PROCESS), _ld(OFF_NR)]
    if arch.x32:
        prog += [Insn(BPF_JMP_JGE_K, 0, 1, X32_SYSCALL_BIT), _ret(EPERM)]
    blocks: list[tuple[int, list[Insn]]] = []
    for name in sorted(denied_syscalls(caps)):
        if name in arch.nr:
            blocks.append((arch.nr[name], [_ret(EPERM)]))
    if "SYS_ADMIN" not in caps:
        blocks.append((arch.nr["clone"], _clone_block()))
        blocks.append((arch.nr["clone3"], [_ret(ENOSYS)]))
    blocks.append((arch.nr["personality"], _personality_block()))
    blocks.append((arch.nr["socket"], _socket_block()))
    for nr, block in sorted(blocks, key=lambda b: b[0]):
        # A holds nr on every jf path (blocks may reload A, but each one ends in a RET).
        prog.append(Insn(BPF_JMP_JEQ_K, 0, len(block), nr))
        prog += block
    prog.append(_ret(ALLOW))
    return prog


def encode(prog: list[Insn]) -> bytes:
    """The program as the kernel's array of struct sock_filter (native byte order)."""
    return b"".join(struct.pack("=HBBI", i.code, i.jt, i.jf, i.k) for i in prog)


def decode(raw: bytes) -> list[Insn]:
    return [Insn(*struct.unpack_from("=HBBI", raw, off)) for off in range(0, len(raw), 8)]


def program(profile: str | None, caps: Iterable[str], machine: str | None = None) -> bytes:
    """The encoded filter to install for `profile`, b"" for none (unconfined)."""
    check_profile(profile)
    if profile is None:
        return b""
    return encode(compile_default(host_arch(machine), caps))


def status_of(pid: int | str = "self") -> int:
    """The `Seccomp:` mode of a process from /proc (0 none, 1 strict, 2 filter); -1 unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Seccomp:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return -1
