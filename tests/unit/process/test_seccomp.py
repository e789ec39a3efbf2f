"""The default seccomp profile: BPF structure, and its verdicts on a small BPF interpreter."""
from __future__ import annotations

import errno
import struct

import pytest

from runtime.errors import InvalidArgument
from runtime.launchcfg import seccomp_profile
from runtime.process import init as seq
from runtime.process import seccomp as sc
from runtime.process.config import CAPS, DEFAULT_CAPS, ExecConfig, LaunchConfig, check
from runtime.process.syscalls import PR_SET_NO_NEW_PRIVS, RecordingSyscalls
from runtime.process.users import ExecUser
from runtime.types import ContainerSpec

X86 = sc.ARCHES["x86_64"]
ARM = sc.ARCHES["aarch64"]
EPERM = sc.SECCOMP_RET_ERRNO | errno.EPERM
ENOSYS = sc.SECCOMP_RET_ERRNO | errno.ENOSYS
ALLOW = sc.SECCOMP_RET_ALLOW
KILL = sc.SECCOMP_RET_KILL_PROCESS
# A few allowed syscalls, from asm/unistd_64.h and asm-generic/unistd.h.
X86_ALLOWED = {"read": 0, "write": 1, "openat": 257, "execve": 59, "ptrace": 101,
               "clock_adjtime": 305, "process_vm_readv": 310, "wait4": 61}
ARM_ALLOWED = {"read": 63, "write": 64, "openat": 56, "execve": 221, "ptrace": 117}


def run_bpf(prog: list[sc.Insn], nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    """A classic-BPF interpreter for what seccomp filters use: LD W ABS, JEQ/JGE/JSET K, RET K."""
    full = (tuple(args) + (0,) * 6)[:6]
    data = struct.pack("=iIQ6Q", nr, arch, 0x1000, *full)
    acc, pc, steps = 0, 0, 0
    while True:
        steps += 1
        assert steps <= len(prog), "the program loops"  # classic BPF only jumps forward
        assert 0 <= pc < len(prog), f"jump out of the program at {pc}"
        ins = prog[pc]
        if ins.code == sc.BPF_LD_W_ABS:
            assert ins.k % 4 == 0 and ins.k + 4 <= len(data), f"bad load offset {ins.k}"
            (acc,) = struct.unpack_from("=I", data, ins.k)
            pc += 1
        elif ins.code == sc.BPF_RET_K:
            return ins.k
        elif ins.code in (sc.BPF_JMP_JEQ_K, sc.BPF_JMP_JGE_K, sc.BPF_JMP_JSET_K):
            cond = {sc.BPF_JMP_JEQ_K: acc == ins.k, sc.BPF_JMP_JGE_K: acc >= ins.k,
                    sc.BPF_JMP_JSET_K: bool(acc & ins.k)}[ins.code]
            pc += 1 + (ins.jt if cond else ins.jf)
        else:
            raise AssertionError(f"unexpected opcode {ins.code:#x} at {pc}")


def verdict(name_or_nr: str | int, caps: tuple[str, ...] = DEFAULT_CAPS, arch: sc.Arch = X86,
            args: tuple[int, ...] = ()) -> int:
    nr = arch.nr[name_or_nr] if isinstance(name_or_nr, str) else name_or_nr
    return run_bpf(sc.compile_default(arch, caps), nr, arch.audit, args)


def test_program_checks_the_arch_first() -> None:
    prog = sc.compile_default(X86, DEFAULT_CAPS)
    assert prog[0] == sc.Insn(sc.BPF_LD_W_ABS, 0, 0, sc.OFF_ARCH)
    assert prog[1] == sc.Insn(sc.BPF_JMP_JEQ_K, 1, 0, 0xC000003E)
    assert prog[2] == sc.Insn(sc.BPF_RET_K, 0, 0, KILL)
    assert prog[3] == sc.Insn(sc.BPF_LD_W_ABS, 0, 0, sc.OFF_NR)
    assert prog[-1] == sc.Insn(sc.BPF_RET_K, 0, 0, ALLOW)
    assert len(prog) < 4096  # BPF_MAXINSNS
    # an i386 (AUDIT_ARCH_I386) or aarch64 syscall on an x86_64 filter kills the process
    assert run_bpf(prog, 0, 0x40000003) == KILL
    assert run_bpf(prog, 0, ARM.audit) == KILL
    assert run_bpf(sc.compile_default(ARM, DEFAULT_CAPS), 63, X86.audit) == KILL


def test_encode_round_trips_as_struct_sock_filter() -> None:
    prog = sc.compile_default(X86, DEFAULT_CAPS)
    raw = sc.encode(prog)
    assert len(raw) == 8 * len(prog)
    assert sc.decode(raw) == prog
    assert sc.program(None, DEFAULT_CAPS) == b""
    assert sc.program("default", DEFAULT_CAPS, machine="x86_64") == raw


@pytest.mark.parametrize("name", sorted(
    ["acct", "add_key", "bpf", "create_module", "delete_module", "finit_module",
     "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
     "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount",
     "move_pages", "nfsservctl", "open_by_handle_at", "perf_event_open", "pivot_root",
     "query_module", "quotactl", "reboot", "request_key", "set_mempolicy", "setns",
     "settimeofday", "clock_settime", "swapon", "swapoff", "sysfs", "_sysctl", "umount2",
     "unshare", "uselib", "userfaultfd", "ustat", "fsconfig", "fsmount", "fsopen", "fspick",
     "move_mount", "open_tree", "mount_setattr", "sethostname", "chroot"]))
def test_dockers_denied_syscalls_get_eperm(name: str) -> None:
    caps = tuple(c for c in DEFAULT_CAPS if c != "SYS_CHROOT")  # chroot: denied without it
    assert verdict(name, caps) == EPERM
    if name in ARM.nr:
        assert verdict(name, caps, ARM) == EPERM


@pytest.mark.parametrize("name", sorted(X86_ALLOWED))
def test_ordinary_syscalls_are_allowed(name: str) -> None:
    assert verdict(X86_ALLOWED[name]) == ALLOW
    if name in ARM_ALLOWED:
        assert verdict(ARM_ALLOWED[name], arch=ARM) == ALLOW


def test_unknown_and_x32_syscalls() -> None:
    assert verdict(999) == ALLOW  # newer than the table: the kernel decides
    assert verdict(0x40000000 | 0) == EPERM  # x32 read
    assert verdict(0x40000000 | 165) == EPERM
    assert verdict(0x40000000 | 0, arch=ARM) == ALLOW  # no x32 ABI on aarch64


def test_clone_namespaces_and_clone3() -> None:
    fork_flags = 0x01200011  # CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD
    thread_flags = 0x003D0F00
    assert verdict("clone", args=(fork_flags,)) == ALLOW
    assert verdict("clone", args=(thread_flags,)) == ALLOW
    for flag in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                 0x40000000):
        assert verdict("clone", args=(fork_flags | flag,)) == EPERM, hex(flag)
        assert verdict("clone", args=(flag,), arch=ARM) == EPERM
    assert verdict("clone3") == ENOSYS  # libc falls back to clone
    with_admin = (*DEFAULT_CAPS, "SYS_ADMIN")
    assert verdict("clone", with_admin, args=(0x10000000,)) == ALLOW
    assert verdict("clone3", with_admin) == ALLOW


def test_personality_only_dockers_values() -> None:
    for ok in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert verdict("personality", args=(ok,)) == ALLOW, hex(ok)
        assert verdict("personality", args=(ok,), arch=ARM) == ALLOW
    for bad in (0x0040000, 0x0400000, 1, 0x1_00000000):  # ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC
        assert verdict("personality", args=(bad,)) == EPERM, hex(bad)


def test_socket_vsock_denied() -> None:
    assert verdict("socket", args=(2, 1, 0)) == ALLOW  # AF_INET
    assert verdict("socket", args=(1, 1, 0)) == ALLOW  # AF_UNIX
    assert verdict("socket", args=(40, 1, 0)) == EPERM  # AF_VSOCK


def test_capabilities_lift_dockers_rules() -> None:
    assert verdict("mount") == EPERM
    assert verdict("mount", (*DEFAULT_CAPS, "SYS_ADMIN")) == ALLOW
    assert verdict("unshare", (*DEFAULT_CAPS, "SYS_ADMIN")) == ALLOW
    assert verdict("swapoff", (*DEFAULT_CAPS, "SYS_ADMIN")) == EPERM  # never allowed
    assert verdict("keyctl", tuple(CAPS)) == EPERM
    assert verdict("reboot", (*DEFAULT_CAPS, "SYS_BOOT")) == ALLOW
    assert verdict("settimeofday", (*DEFAULT_CAPS, "SYS_TIME")) == ALLOW
    assert verdict("chroot", DEFAULT_CAPS) == ALLOW  # SYS_CHROOT is a default cap
    assert verdict("chroot", ()) == EPERM
    assert verdict("init_module", (*DEFAULT_CAPS, "SYS_MODULE")) == ALLOW
    assert sc.denied_syscalls(DEFAULT_CAPS) < sc.DENIED


def test_unsupported_arch_and_profile() -> None:
    with pytest.raises(InvalidArgument, match="unconfined"):
        sc.host_arch("riscv64")
    with pytest.raises(InvalidArgument, match="unknown seccomp profile"):
        sc.program("/etc/profile.json", DEFAULT_CAPS)
    base = dict(id="c", argv=("sh",), state_dir="/s", mergeddir="/m", lowerdirs=("/l",))
    check(LaunchConfig(**base, seccomp="default"))  # type: ignore[arg-type]
    check(LaunchConfig(**base, seccomp=None))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        check(LaunchConfig(**base, seccomp="custom.json"))  # type: ignore[arg-type]
    assert ExecConfig(argv=("sh",)).seccomp == "inherit"


def test_security_opt_to_profile() -> None:
    def spec(*opts: str, privileged: bool = False) -> ContainerSpec:
        return ContainerSpec(name="p-web-1", image="busybox", security_opt=tuple(opts),
                             privileged=privileged)

    assert seccomp_profile(spec()) == "default"
    assert seccomp_profile(spec("no-new-privileges:true")) == "default"
    assert seccomp_profile(spec("seccomp=unconfined")) is None
    assert seccomp_profile(spec("seccomp:unconfined")) is None
    assert seccomp_profile(spec(privileged=True)) is None
    with pytest.raises(InvalidArgument, match="seccomp profile"):
        seccomp_profile(spec("seccomp=/etc/docker/profile.json"))


def _identity(nnp: bool) -> seq.Identity:
    return seq.Identity(ExecUser(1000, 1000, (1000,), "/home/app"), DEFAULT_CAPS, 40, nnp,
                        sc.program("default", DEFAULT_CAPS))


def test_filter_is_last_with_no_new_privs() -> None:
    rec = RecordingSyscalls()
    seq.enter_identity(_identity(True), rec)
    names = rec.names()
    assert names[-1] == "seccomp" and rec.calls[-1][1] == sc.program("default", DEFAULT_CAPS)
    assert rec.calls[-2] == ("prctl", PR_SET_NO_NEW_PRIVS, 1, 0)
    assert names.count("seccomp") == 1


def test_filter_goes_first_without_no_new_privs() -> None:
    """Without no_new_privs a filter needs CAP_SYS_ADMIN: before the capset that drops it."""
    rec = RecordingSyscalls()
    seq.enter_identity(_identity(False), rec)
    names = rec.names()
    assert names.count("seccomp") == 1
    assert names.index("seccomp") < names.index("setresuid") < names.index("capset")
    assert "prctl" not in [n for n in names[:names.index("seccomp")]]


def test_no_filter_when_unconfined() -> None:
    rec = RecordingSyscalls()
    ident = _identity(True)
    seq.enter_identity(seq.Identity(ident.user, ident.caps, 40, True, b""), rec)
    assert "seccomp" not in rec.names()
