"""The seccomp compiler: Docker's default profile and moby-format JSON profiles, checked on a
small BPF machine (bpfvm.py) instead of a kernel."""
from __future__ import annotations

import errno
import json
import random
from pathlib import Path

import pytest

from runtime.process import seccomp as sc
from runtime.process import sysnr
from runtime.process.config import CAPS, DEFAULT_CAPS
from runtime.process.seccomp_profile import Arg, ProfileError, load_text, read_file
from tests.unit.process import bpfvm

EPERM, ENOSYS, ALLOW, KILL = sc.EPERM, sc.ENOSYS, sc.ALLOW, sc.KILL
KERNEL = (6, 1)
ARCHES = ("x86_64", "aarch64")
ADMIN = (*DEFAULT_CAPS, "SYS_ADMIN")


def program(caps: tuple[str, ...] = DEFAULT_CAPS, arch: str = "x86_64",
            profile: str = "default", kernel: tuple[int, int] = KERNEL) -> list[sc.Insn]:
    prog = sc.decode(sc.compile_filter(profile, caps, arch=arch, kernel=kernel).program)
    bpfvm.check(prog)
    return prog


def verdict(name: str | int, caps: tuple[str, ...] = DEFAULT_CAPS, arch: str = "x86_64",
            args: tuple[int, ...] = (), profile: str = "default") -> int:
    nr = sysnr.number(name, arch) if isinstance(name, str) else name
    return bpfvm.run(program(caps, arch, profile), nr, sysnr.AUDIT_ARCH[arch], args).action


def custom(syscalls: list[dict[str, object]], default: str = "SCMP_ACT_ERRNO",
           **top: object) -> str:
    return json.dumps({"defaultAction": default, "syscalls": syscalls, **top})


# -- Docker's default profile ------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHES)
def test_program_checks_the_arch_first_and_fits_the_kernel(arch: str) -> None:
    for caps in (DEFAULT_CAPS, (), ADMIN, tuple(CAPS)):
        prog = program(caps, arch)
        assert prog[:4] == [sc.Insn(sc.BPF_LD_W_ABS, 0, 0, sc.OFF_ARCH),
                            sc.Insn(sc.BPF_JMP_JEQ_K, 1, 0, sysnr.AUDIT_ARCH[arch]),
                            sc.Insn(sc.BPF_RET_K, 0, 0, KILL),
                            sc.Insn(sc.BPF_LD_W_ABS, 0, 0, sc.OFF_NR)]
        assert len(prog) < 250
    other = "aarch64" if arch == "x86_64" else "x86_64"
    assert bpfvm.run(program(arch=arch), 0, sysnr.AUDIT_ARCH[other]).action == KILL
    assert bpfvm.run(program(arch=arch), 0, 0x40000003).action == KILL  # i386 (int 0x80)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name", ["read", "write", "openat", "execve", "futex", "epoll_pwait",
                                  "close_range", "faccessat2", "statx", "rseq", "getrandom",
                                  "pidfd_open", "landlock_create_ruleset", "mseal",
                                  "ptrace", "process_vm_readv", "wait4", "clock_adjtime",
                                  "sched_setattr", "fchmodat2", "listmount", "io_setup"])
def test_ordinary_syscalls_are_allowed(name: str, arch: str) -> None:
    assert verdict(name, arch=arch) == ALLOW


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name", [
    "acct", "add_key", "bpf", "delete_module", "finit_module", "get_mempolicy", "init_module",
    "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount",
    "move_pages", "open_by_handle_at", "perf_event_open", "pivot_root", "quotactl", "reboot",
    "request_key", "set_mempolicy", "setns", "settimeofday", "clock_settime", "swapon",
    "swapoff", "umount2", "unshare", "userfaultfd", "fsconfig", "fsmount", "fsopen", "fspick",
    "move_mount", "open_tree", "mount_setattr", "sethostname", "setdomainname", "syslog",
    "vhangup", "pidfd_getfd", "process_madvise", "quotactl_fd", "fanotify_init",
    "io_uring_setup", "io_uring_enter", "io_uring_register"])
def test_dockers_denied_syscalls_get_eperm(name: str, arch: str) -> None:
    assert verdict(name, arch=arch) == EPERM


def test_x86_only_denials() -> None:
    for name in ("iopl", "ioperm", "uselib", "ustat", "sysfs", "_sysctl", "create_module",
                 "nfsservctl", "vserver", "tuxcall"):
        assert verdict(name) == EPERM, name
    assert verdict("arch_prctl") == ALLOW and verdict("modify_ldt") == ALLOW


def test_every_syscall_of_the_tables_is_a_decision() -> None:
    """When sysnr grows (a new kernel), this fails until the new syscalls are looked at:
    allowed by Docker's profile, or on this list of what it does not name."""
    named = {n for rule in sc.default_profile().rules for n in rule.names}
    unnamed = {arch: sorted(set(sysnr.table(arch)) - named) for arch in ARCHES}
    assert unnamed["aarch64"] == [
        "add_key", "file_getattr", "file_setattr", "io_uring_enter", "io_uring_register",
        "io_uring_setup", "kexec_file_load", "kexec_load", "keyctl", "listns", "migrate_pages",
        "move_pages", "open_tree_attr", "pivot_root", "request_key", "swapoff", "swapon",
        "userfaultfd"]
    assert set(unnamed["x86_64"]) - set(unnamed["aarch64"]) == {
        "_sysctl", "afs_syscall", "create_module", "get_kernel_syms", "getpmsg", "nfsservctl",
        "putpmsg", "query_module", "security", "sysfs", "tuxcall", "uprobe", "uselib", "ustat",
        "vserver"}


@pytest.mark.parametrize("arch", ARCHES)
def test_newer_than_the_profile_or_the_table_is_enosys(arch: str) -> None:
    top = sysnr.highest(arch)
    newest_named = sysnr.number("removexattrat", arch)  # 466: the newest Docker's list names
    for nr in (newest_named + 1, sysnr.number("listns", arch), top, top + 1, 999, 0x3FFFFFFF,
               0xFFFFFFFF):
        assert verdict(nr, arch=arch) == ENOSYS, nr
    assert verdict(newest_named, arch=arch) == ALLOW
    assert verdict("io_uring_setup", arch=arch) == EPERM  # known and not allowed: EPERM


def test_x32_abi_is_enosys_on_x86_64_only() -> None:
    for nr in (0x40000000, 0x40000000 | 165, 0x40000000 | 512):
        assert verdict(nr) == ENOSYS
    # aarch64 has no x32: such a number is simply newer than the table
    assert verdict(0x40000000 | 63, arch="aarch64") == ENOSYS


@pytest.mark.parametrize("arch", ARCHES)
def test_clone_namespaces_and_clone3(arch: str) -> None:
    fork_flags = 0x01200011  # CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD
    thread_flags = 0x003D0F00
    assert verdict("clone", arch=arch, args=(fork_flags,)) == ALLOW
    assert verdict("clone", arch=arch, args=(thread_flags,)) == ALLOW
    for flag in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                 0x40000000):
        assert verdict("clone", arch=arch, args=(fork_flags | flag,)) == EPERM, hex(flag)
    assert verdict("clone", arch=arch, args=(1 << 40,)) == ALLOW  # the mask is 32-bit
    assert verdict("clone3", arch=arch) == ENOSYS  # libc falls back to clone
    assert verdict("clone", ADMIN, arch, args=(0x10000000,)) == ALLOW
    assert verdict("clone3", ADMIN, arch) == ALLOW


def test_personality_only_dockers_values() -> None:
    for ok in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert verdict("personality", args=(ok,)) == ALLOW, hex(ok)
        assert verdict("personality", arch="aarch64", args=(ok,)) == ALLOW
    for bad in (0x0040000, 0x0400000, 1, 0x1_00000000, 0xFFFFFFFF_FFFFFFFF):
        assert verdict("personality", args=(bad,)) == EPERM, hex(bad)


def test_socket_families() -> None:
    for family in (1, 2, 10, 16, 17, 37, 39, 41, 42, 45):  # unix, inet, inet6, netlink, ...
        assert verdict("socket", args=(family, 1, 0)) == ALLOW, family
    assert verdict("socket", args=(38, 5, 0)) == EPERM  # AF_ALG
    assert verdict("socket", args=(40, 1, 0)) == EPERM  # AF_VSOCK
    assert verdict("socket", args=(40 | 1 << 32, 1, 0)) == ALLOW  # > 40 on 64 bits


def test_capabilities_lift_dockers_rules() -> None:
    assert verdict("mount") == EPERM
    assert verdict("mount", ADMIN) == ALLOW
    assert verdict("unshare", ADMIN) == ALLOW
    assert verdict("swapoff", ADMIN) == EPERM  # never allowed
    assert verdict("keyctl", tuple(CAPS)) == EPERM
    assert verdict("io_uring_setup", tuple(CAPS)) == EPERM
    assert verdict("reboot", (*DEFAULT_CAPS, "SYS_BOOT")) == ALLOW
    assert verdict("settimeofday", (*DEFAULT_CAPS, "SYS_TIME")) == ALLOW
    assert verdict("chroot", DEFAULT_CAPS) == ALLOW  # SYS_CHROOT is a default cap
    assert verdict("chroot", ()) == EPERM
    assert verdict("init_module", (*DEFAULT_CAPS, "SYS_MODULE")) == ALLOW
    assert verdict("bpf", (*DEFAULT_CAPS, "BPF")) == ALLOW
    assert verdict("kcmp", (*DEFAULT_CAPS, "SYS_PTRACE")) == ALLOW
    assert verdict("open_by_handle_at", (*DEFAULT_CAPS, "DAC_READ_SEARCH")) == ALLOW


def test_min_kernel() -> None:
    """ptrace and process_vm_* need kernel 4.8 (seccomp could be bypassed with ptrace before)."""
    old = sc.decode(sc.compile_filter("default", DEFAULT_CAPS, arch="x86_64",
                                      kernel=(4, 4)).program)
    assert bpfvm.run(old, sysnr.number("ptrace", "x86_64"), sysnr.AUDIT_ARCH["x86_64"]).action \
        == EPERM
    assert verdict("ptrace") == ALLOW


# -- the assembler against the plan it was given ---------------------------------------------

def _holds(arg: Arg, args: tuple[int, ...]) -> bool:
    a, v = args[arg.index], arg.value
    return {"SCMP_CMP_EQ": a == v, "SCMP_CMP_NE": a != v, "SCMP_CMP_LT": a < v,
            "SCMP_CMP_LE": a <= v, "SCMP_CMP_GT": a > v, "SCMP_CMP_GE": a >= v,
            "SCMP_CMP_MASKED_EQ": a & v == arg.value_two}[arg.op]


def expected(plan: sc.Plan, nr: int, args: tuple[int, ...]) -> int:
    """What the plan means, evaluated directly (the reference the program must match)."""
    if plan.arch == "x86_64" and nr & sysnr.X32_SYSCALL_BIT:
        return ENOSYS
    if plan.enosys_above is not None and nr > plan.enosys_above:
        return ENOSYS
    v = plan.verdicts.get(nr, plan.default)
    if isinstance(v, sc.ArgRules):
        return next((code for conds, code in v.checks if all(_holds(c, args) for c in conds)),
                    v.otherwise)
    return v


SAMPLE_ARGS = [(0,) * 6, (40, 1, 0, 0, 0, 0), (0x7E020000,) * 6, (1 << 32 | 39,) * 6,
               (0xFFFFFFFF,) * 6, (0xFFFFFFFF_FFFFFFFF,) * 6, (8, 0x20008, 3, 4, 5, 6)]


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("caps", [DEFAULT_CAPS, (), tuple(CAPS)], ids=["default", "none", "all"])
def test_program_matches_the_plan_for_every_number(arch: str, caps: tuple[str, ...]) -> None:
    plan = sc.decide(sc.default_profile(), caps, arch, KERNEL)
    prog = sc.assemble(plan)
    bpfvm.check(prog)
    numbers = [*range(sysnr.highest(arch) + 20), 0x40000000, 0x40000001, 0xFFFFFFFF]
    for nr in numbers:
        for args in SAMPLE_ARGS if nr in plan.verdicts and isinstance(
                plan.verdicts[nr], sc.ArgRules) else SAMPLE_ARGS[:1]:
            got = bpfvm.run(prog, nr, sysnr.AUDIT_ARCH[arch], args).action
            assert got == expected(plan, nr, args), (nr, args)


OPS = ("SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GT",
       "SCMP_CMP_GE", "SCMP_CMP_MASKED_EQ")
EDGES = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, (1 << 32) + 1, 0xFFFFFFFF_FFFFFFFF,
         0x1234_5678_9ABC_DEF0]


@pytest.mark.parametrize("op", OPS)
def test_64_bit_comparisons(op: str) -> None:
    rng = random.Random(op)
    values = EDGES + [rng.getrandbits(64) for _ in range(6)]
    for value in values:
        arg = Arg(2, value, rng.choice(EDGES) & value, op)
        plan = sc.Plan("x86_64", EPERM, {0: sc.ArgRules((((arg,), ALLOW),), EPERM)}, 0)
        prog = sc.assemble(plan)
        bpfvm.check(prog)
        for probe in [*values, value - 1 & (1 << 64) - 1, value + 1 & (1 << 64) - 1,
                      value ^ 1 << 32, value ^ 1]:
            args = (0, 0, probe)
            want = ALLOW if _holds(arg, args) else EPERM
            assert bpfvm.run(prog, 0, sysnr.AUDIT_ARCH["x86_64"], args).action == want, (
                op, hex(value), hex(probe))


def test_long_jumps_over_big_subtrees() -> None:
    """A profile with many argument rules: the tree needs JA for jumps over 255."""
    rules = [{"names": [name], "action": "SCMP_ACT_ALLOW",
              "args": [{"index": i % 6, "value": 1000 + i, "op": "SCMP_CMP_GE"},
                       {"index": (i + 1) % 6, "value": i, "op": "SCMP_CMP_NE"}]}
             for i, name in enumerate(sorted(sysnr.table("x86_64"))[:120])]
    plan = sc.decide(load_text(custom(rules), "many.json"), (), "x86_64", KERNEL)
    prog = sc.assemble(plan)
    bpfvm.check(prog)
    assert any(i.code == sc.BPF_JMP_JA for i in prog)
    rng = random.Random(7)
    for nr in range(sysnr.highest("x86_64") + 2):
        args = tuple(rng.choice([0, 1, 999, 1050, 1 << 33]) for _ in range(6))
        assert bpfvm.run(prog, nr, sysnr.AUDIT_ARCH["x86_64"], args).action == \
            expected(plan, nr, args), nr


def test_cost_per_syscall() -> None:
    """The path through Docker's default profile is short for every syscall."""
    prog = program()
    steps = [bpfvm.run(prog, nr, sysnr.AUDIT_ARCH["x86_64"], (1, 1, 0)).steps
             for nr in sysnr.table("x86_64").values()]
    assert max(steps) <= 40 and sum(steps) / len(steps) <= 14, (max(steps), sum(steps))


# -- custom profiles -------------------------------------------------------------------------

def test_a_deny_list_profile() -> None:
    text = custom([{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                   {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS"},
                   {"names": ["chmod"], "action": "SCMP_ACT_LOG"}], default="SCMP_ACT_ALLOW")
    assert verdict("mkdirat", profile=text) == sc.SECCOMP_RET_ERRNO | errno.EACCES
    assert verdict("kill", profile=text) == KILL
    assert verdict("chmod", profile=text) == sc.SECCOMP_RET_LOG
    assert verdict("read", profile=text) == ALLOW
    # an allowing default needs no ENOSYS rule: newer syscalls are allowed too (runc's rule)
    assert verdict(999, profile=text) == ALLOW
    assert verdict("io_uring_setup", profile=text) == ALLOW


def test_default_errno_and_actions() -> None:
    text = custom([{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                   {"names": ["getpid"], "action": "SCMP_ACT_TRAP"},
                   {"names": ["gettid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
                   {"names": ["getuid"], "action": "SCMP_ACT_KILL"}], defaultErrnoRet=38)
    assert verdict("read", profile=text) == ALLOW
    assert verdict("openat", profile=text) == sc.SECCOMP_RET_ERRNO | 38
    assert verdict("getpid", profile=text) == sc.SECCOMP_RET_TRAP
    assert verdict("gettid", profile=text) == sc.SECCOMP_RET_TRACE | 7
    assert verdict("getuid", profile=text) == sc.SECCOMP_RET_KILL_THREAD
    # newer than anything the profile names (getuid is 102 on x86_64 exit_group 231)
    assert verdict(sysnr.number("exit_group", "x86_64") + 1, profile=text) == ENOSYS


def test_args_and_or_semantics() -> None:
    """All args of an entry must hold -- unless two test the same argument: then any (runc)."""
    text = custom([
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}])
    assert verdict("socket", profile=text, args=(2, 1)) == ALLOW
    assert verdict("socket", profile=text, args=(2, 2)) == EPERM
    assert verdict("socket", profile=text, args=(10, 1)) == EPERM
    for value, want in ((0, ALLOW), (8, ALLOW), (4, EPERM)):
        assert verdict("personality", profile=text, args=(value,)) == want


def test_conditions_before_the_plain_rule() -> None:
    """A syscall allowed without conditions but refused for one argument value."""
    text = custom([{"names": ["socket"], "action": "SCMP_ACT_ALLOW"},
                   {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
                    "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}]}])
    assert verdict("socket", profile=text, args=(2,)) == ALLOW
    assert verdict("socket", profile=text, args=(10,)) == sc.SECCOMP_RET_ERRNO | 97


def test_includes_and_excludes() -> None:
    text = custom([
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_KILL"]}},
        {"names": ["gettid"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
        {"names": ["getuid"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
        {"names": ["getgid"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
        {"names": ["getppid"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "3.0"}},
        {"names": ["geteuid", "exit_group"], "action": "SCMP_ACT_ALLOW"}])
    assert verdict("mount", profile=text) == EPERM
    assert verdict("mount", ADMIN, profile=text) == ALLOW
    assert verdict("getpid", (), profile=text) == ALLOW
    assert verdict("getpid", ("KILL",), profile=text) == EPERM
    assert verdict("gettid", profile=text) == EPERM
    assert verdict("gettid", arch="aarch64", profile=text) == ALLOW
    assert verdict("getuid", profile=text) == EPERM
    assert verdict("getuid", arch="aarch64", profile=text) == ALLOW
    assert verdict("getgid", profile=text) == EPERM and verdict("getppid", profile=text) == EPERM


def test_names_of_other_architectures_are_skipped() -> None:
    text = custom([{"names": ["chown32", "arm_fadvise64_64", "no_such_call", "getpid"],
                    "action": "SCMP_ACT_ALLOW"}])
    assert verdict("getpid", profile=text) == ALLOW
    nothing = custom([{"names": ["chown32"], "action": "SCMP_ACT_ALLOW"}])
    assert verdict("read", profile=nothing) == EPERM  # no known name: no ENOSYS rule either


def test_flags_and_a_profile_file(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(custom([{"names": ["read"], "action": "SCMP_ACT_ALLOW"}],
                           flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]))
    text = read_file(str(path))
    filt = sc.compile_filter(text, DEFAULT_CAPS, source=str(path), arch="x86_64")
    assert filt.flags == 2 | 4 and filt.instructions == len(sc.decode(filt.program))
    assert sc.compile_filter("default", DEFAULT_CAPS).flags == 0
    with pytest.raises(ProfileError, match=f"seccomp profile {tmp_path}/nope.json: cannot read"):
        read_file(str(tmp_path / "nope.json"))


def test_mobys_own_default_json_round_trips() -> None:
    """The built-in data is moby's JSON: written out and read back, it compiles the same."""
    from runtime.process.seccomp_default import DEFAULT
    text = json.dumps(DEFAULT)
    for arch in ARCHES:
        for caps in (DEFAULT_CAPS, ADMIN):
            assert sc.compile_filter(text, caps, arch=arch) == \
                sc.compile_filter("default", caps, arch=arch)


@pytest.mark.parametrize(("doc", "message"), [
    ("[]", "expected a JSON object"),
    ("{", "not valid JSON: "),
    ('{"defaultAction": "SCMP_ACT_DENY"}', 'defaultAction: unknown action "SCMP_ACT_DENY"'),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscall": []}', 'unknown key "syscall"'),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}', "defaultErrnoRet: only valid"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]}',
     r"syscalls\[0\] \(read\).action: no action given: use one of"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}',
     r"syscalls\[0\]: no syscall names"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a", "b"], "action": '
     '"SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}',
     r"syscalls\[0\] \(a, \.\.\.\).args\[0\].index: expected an argument index from 0 to 5"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": '
     '"SCMP_ACT_ALLOW", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}',
     r"args\[0\].value: expected an unsigned 64-bit number, got -1"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": '
     '"SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]}',
     r'args\[0\].op: unknown operator "SCMP_CMP_LIKE": use one of SCMP_CMP_NE'),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": '
     '"SCMP_ACT_ALLOW", "errnoRet": 1}]}', r"syscalls\[0\] \(read\).errnoRet: only valid"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": '
     '"SCMP_ACT_NOTIFY"}]}', "SCMP_ACT_NOTIFY needs a seccomp listener"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": '
     '"SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}}]}',
     r'includes.minKernel: expected "<major>.<minor>"'),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": '
     '"SCMP_ACT_ALLOW", "excludes": {"caps": ["SYS_ADMIN"]}}]}',
     r"excludes.caps\[0\]: expected a capability like CAP_SYS_ADMIN"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": '
     '[{"architecture": "SCMP_ARCH_X86_64"}]}', "both architectures and archMap"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["x86_64"]}',
     r'architectures\[0\]: unknown architecture "x86_64"'),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}',
     r'flags\[0\]: unknown or unsupported flag'),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/l.sock"}',
     "listeners are not supported"),
])
def test_a_bad_profile_names_the_file_and_the_entry(doc: str, message: str) -> None:
    with pytest.raises(ProfileError, match=r"^seccomp profile /etc/p\.json: .*" + message):
        sc.compile_filter(doc, DEFAULT_CAPS, source="/etc/p.json", arch="x86_64")


def test_conflicting_plain_rules_are_refused() -> None:
    text = custom([{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                   {"names": ["write", "read"], "action": "SCMP_ACT_ERRNO"}])
    with pytest.raises(ProfileError, match=r"syscalls\[0\] and syscalls\[1\] give read different"):
        sc.compile_filter(text, (), source="p.json", arch="x86_64")
    same = custom([{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                   {"names": ["read"], "action": "SCMP_ACT_ALLOW"}])
    assert verdict("read", profile=same) == ALLOW


def test_a_program_over_the_kernels_limit_is_refused() -> None:
    rules = [{"names": [name], "action": "SCMP_ACT_ALLOW",
              "args": [{"index": j, "value": 7, "op": "SCMP_CMP_NE"} for j in range(6)]}
             for name in sorted(sysnr.table("x86_64"))[:150]]
    with pytest.raises(ProfileError, match="at most 4096"):
        sc.compile_filter(custom(rules), (), source="big.json", arch="x86_64")


def test_unsupported_machine() -> None:
    with pytest.raises(sysnr.UnsupportedArch, match="riscv64"):
        sc.compile_filter("default", DEFAULT_CAPS, arch="riscv64")
