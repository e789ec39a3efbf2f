"""Seccomp profiles compiled by us into classic-BPF programs (no libseccomp).

A profile (moby's JSON format, `seccomp_profile.py`; Docker's default is
`seccomp_default.py`) is first decided per syscall for one container (`decide`: its
capabilities, the host's architecture and kernel), then laid out as a BPF program
(`assemble`) that the init and every exec install with seccomp(2) (`Syscalls.seccomp`):

    ld  seccomp_data.arch;  != the host's AUDIT_ARCH          -> KILL_PROCESS
    ld  seccomp_data.nr
    x86_64: nr has bit 30 (the x32 ABI)                        -> ERRNO(ENOSYS)
    nr > the newest syscall the profile names                  -> ERRNO(ENOSYS)
    binary search over ranges of syscall numbers (jge), each leaf one RET
      or, for a syscall with argument rules, a block that tests them in order:
      (arg & mask) == value, ==, !=, <, <=, >, >= on 64 bits (two 32-bit words)
    (every other number)                                       -> defaultAction

The ENOSYS rule is runc's: a syscall newer than anything the profile mentions gets "not
implemented", so libc's fallbacks work (clone3 -> clone, faccessat2 -> faccessat, ...); a
known syscall the profile does not allow gets its defaultAction (EPERM for Docker's). It is
left out when the defaultAction already allows (ALLOW, LOG, TRACE). Everything above the
table in `sysnr` is newer than any profile can name, so it always gets ENOSYS.

Docker's default profile compiles to 182 instructions on x86_64 (187 on aarch64); a syscall
runs through 12 of them on average, 32 at most (bench/seccomp.py; docs/process.md).
"""
from __future__ import annotations

import errno as _errno
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache

from runtime.process import sysnr
from runtime.process.seccomp_default import DEFAULT
from runtime.process.seccomp_profile import (
    Arg,
    Profile,
    ProfileError,
    kernel_version,
    load_text,
    parse,
    select,
)

# classic BPF (linux/filter.h, linux/bpf_common.h)
BPF_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_ALU_AND_K = 0x04 | 0x50 | 0x00  # BPF_ALU | BPF_AND | BPF_K
BPF_JMP_JA = 0x05 | 0x00
BPF_JMP_JEQ_K = 0x05 | 0x10 | 0x00
BPF_JMP_JGT_K = 0x05 | 0x20 | 0x00
BPF_JMP_JGE_K = 0x05 | 0x30 | 0x00
BPF_JMP_JSET_K = 0x05 | 0x40 | 0x00
BPF_RET_K = 0x06 | 0x00
BPF_MAXINSNS = 4096
MAX_JUMP = 255  # jt/jf are 8 bits; farther needs a JA (32-bit offset)

# linux/seccomp.h: return values, highest precedence first
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_KILL_THREAD = 0x00000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_TRACE = 0x7FF00000
SECCOMP_RET_LOG = 0x7FFC0000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_MODE_FILTER = 2

# struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
OFF_NR = 0
OFF_ARCH = 4
OFF_ARGS = 16  # args[i] at 16 + 8*i; low word first (both our arches are little-endian)

EPERM = SECCOMP_RET_ERRNO | _errno.EPERM
ENOSYS = SECCOMP_RET_ERRNO | _errno.ENOSYS
ALLOW = SECCOMP_RET_ALLOW
KILL = SECCOMP_RET_KILL_PROCESS

DEFAULT_PROFILE = "default"
_ALLOWING = (SECCOMP_RET_ALLOW, SECCOMP_RET_LOG)  # and TRACE, checked by mask
_FAIL = -1  # a jump target placeholder inside a rule block: "this rule does not match"


@dataclass(frozen=True)
class Insn:
    """struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; }"""

    code: int
    jt: int
    jf: int
    k: int


@dataclass(frozen=True)
class ArgRules:
    """The verdict for one syscall with argument conditions: the first `checks` entry whose
    conditions all hold gives its action; none -> `otherwise`."""

    checks: tuple[tuple[tuple[Arg, ...], int], ...]
    otherwise: int


@dataclass(frozen=True)
class Plan:
    """A profile decided for one container on one architecture: what each syscall gets."""

    arch: str
    default: int  # SECCOMP_RET_* for numbers without a verdict
    verdicts: dict[int, int | ArgRules] = field(default_factory=dict)
    enosys_above: int | None = None  # the newest syscall the profile names; None: no ENOSYS rule


@dataclass(frozen=True)
class Filter:
    """What the kernel gets: the program and seccomp(2)'s flags (SECCOMP_FILTER_FLAG_*)."""

    program: bytes
    flags: int = 0

    @property
    def instructions(self) -> int:
        return len(self.program) // 8


def action_code(action: str, errno: int | None) -> int:
    """SCMP_ACT_* (+ errnoRet) -> SECCOMP_RET_*, as runc maps them (errno defaults to EPERM)."""
    data = (_errno.EPERM if errno is None else errno) & 0xFFFF
    return {
        "SCMP_ACT_KILL": SECCOMP_RET_KILL_THREAD,
        "SCMP_ACT_KILL_THREAD": SECCOMP_RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": SECCOMP_RET_KILL_PROCESS,
        "SCMP_ACT_TRAP": SECCOMP_RET_TRAP,
        "SCMP_ACT_ERRNO": SECCOMP_RET_ERRNO | data,
        "SCMP_ACT_TRACE": SECCOMP_RET_TRACE | data,
        "SCMP_ACT_LOG": SECCOMP_RET_LOG,
        "SCMP_ACT_ALLOW": SECCOMP_RET_ALLOW,
    }[action]


def allows(code: int) -> bool:
    """An action after which the syscall still runs (runc's rule for skipping the ENOSYS stub)."""
    return code in _ALLOWING or code & 0xFFFF0000 == SECCOMP_RET_TRACE


def _split(args: tuple[Arg, ...]) -> list[tuple[Arg, ...]]:
    """runc's reading of an entry's args: all must hold (AND), unless two test the same
    argument -- then each is a rule of its own (OR)."""
    indexes = [a.index for a in args]
    if len(set(indexes)) < len(indexes):
        return [(a,) for a in args]
    return [args]


def decide(profile: Profile, caps: Iterable[str], arch: str | None = None,
           kernel: tuple[int, int] | None = None) -> Plan:
    """What each syscall gets under `profile` for a container with `caps` on `arch`."""
    arch = sysnr.arch_name(arch)
    kernel = kernel or kernel_version(os.uname().release)
    table = sysnr.table(arch)
    default = action_code(profile.default_action, profile.default_errno)
    plain: dict[int, tuple[int, str]] = {}
    checks: dict[int, list[tuple[tuple[Arg, ...], int]]] = {}
    for rule in select(profile, tuple(caps), arch, kernel):
        code = action_code(rule.action, rule.errno)
        for name in rule.names:
            nr = table.get(name)
            if nr is None:
                continue  # another architecture's syscall (chown32, arm_fadvise64_64, ...)
            if rule.args:
                checks.setdefault(nr, []).extend((conds, code) for conds in _split(rule.args))
                continue
            prev = plain.setdefault(nr, (code, rule.where))
            if prev[0] != code:
                raise ProfileError(
                    f"seccomp profile {profile.source}: {prev[1]} and {rule.where} give "
                    f"{name} different actions without conditions: keep one of them",
                    subject=profile.source)
    verdicts: dict[int, int | ArgRules] = {nr: code for nr, (code, _) in plain.items()}
    for nr, rules in checks.items():
        otherwise = plain[nr][0] if nr in plain else default
        while rules and rules[-1][1] == otherwise:  # a last rule giving the fallback: no test
            rules.pop()
        verdicts[nr] = ArgRules(tuple(rules), otherwise) if rules else otherwise
    named = max(set(plain) | set(checks), default=None)
    return Plan(arch, default, verdicts, None if allows(default) else named)


# -- assembling ------------------------------------------------------------------------------

def _ret(action: int) -> Insn:
    return Insn(BPF_RET_K, 0, 0, action)


def _ld(offset: int) -> Insn:
    return Insn(BPF_LD_W_ABS, 0, 0, offset)


def _arg_test(arg: Arg) -> list[Insn]:
    """Falls through when `arg` holds; jumps to _FAIL when it does not (resolved by the rule)."""
    lo, hi = OFF_ARGS + 8 * arg.index, OFF_ARGS + 8 * arg.index + 4
    vh, vl = arg.value >> 32, arg.value & 0xFFFFFFFF
    if arg.op == "SCMP_CMP_EQ":
        return [_ld(hi), Insn(BPF_JMP_JEQ_K, 0, _FAIL, vh), _ld(lo),
                Insn(BPF_JMP_JEQ_K, 0, _FAIL, vl)]
    if arg.op == "SCMP_CMP_NE":  # holds when either word differs
        return [_ld(hi), Insn(BPF_JMP_JEQ_K, 0, 2, vh), _ld(lo),
                Insn(BPF_JMP_JEQ_K, _FAIL, 0, vl)]
    if arg.op == "SCMP_CMP_MASKED_EQ":  # (arg & value) == valueTwo
        wh, wl = arg.value_two >> 32, arg.value_two & 0xFFFFFFFF
        out: list[Insn] = []
        if vh or wh:
            out += [_ld(hi), Insn(BPF_ALU_AND_K, 0, 0, vh), Insn(BPF_JMP_JEQ_K, 0, _FAIL, wh)]
        out.append(_ld(lo))
        if vl != 0xFFFFFFFF:
            out.append(Insn(BPF_ALU_AND_K, 0, 0, vl))
        return out + [Insn(BPF_JMP_JEQ_K, 0, _FAIL, wl)]
    # unsigned 64-bit order: decided by the high words unless they are equal
    if arg.op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        last = BPF_JMP_JGT_K if arg.op == "SCMP_CMP_GT" else BPF_JMP_JGE_K
        return [_ld(hi), Insn(BPF_JMP_JGT_K, 3, 0, vh), Insn(BPF_JMP_JEQ_K, 0, _FAIL, vh),
                _ld(lo), Insn(last, 0, _FAIL, vl)]
    # LT: not (lo >= v); LE: not (lo > v)
    last = BPF_JMP_JGE_K if arg.op == "SCMP_CMP_LT" else BPF_JMP_JGT_K
    return [_ld(hi), Insn(BPF_JMP_JGE_K, 0, 3, vh), Insn(BPF_JMP_JEQ_K, 0, _FAIL, vh),
            _ld(lo), Insn(last, _FAIL, 0, vl)]


def _rules_block(rules: ArgRules) -> list[Insn]:
    out: list[Insn] = []
    for conds, action in rules.checks:
        body = [insn for arg in conds for insn in _arg_test(arg)] + [_ret(action)]
        for i, insn in enumerate(body):  # _FAIL -> the next rule, right after this rule's RET
            if _FAIL in (insn.jt, insn.jf):
                skip = len(body) - i - 1
                body[i] = replace(insn, jt=skip if insn.jt == _FAIL else insn.jt,
                                  jf=skip if insn.jf == _FAIL else insn.jf)
        out += body
    return out + [_ret(rules.otherwise)]


Range = tuple[int, int | ArgRules]  # (first syscall number, verdict up to the next range)


def _ranges(plan: Plan) -> list[Range]:
    """Runs of consecutive numbers with the same plain verdict; a syscall with argument
    rules is a run of its own."""
    top = plan.enosys_above if plan.enosys_above is not None else max(plan.verdicts, default=0)
    out: list[Range] = []
    for nr in range(top + 1):
        verdict = plan.verdicts.get(nr, plan.default)
        if out and not isinstance(verdict, ArgRules) and out[-1][1] == verdict:
            continue
        out.append((nr, verdict))
    if plan.enosys_above is None and out[-1][1] != plan.default:
        out.append((top + 1, plan.default))  # everything above, up to 2^32-1
    return out


def _tree(ranges: list[Range]) -> list[Insn]:
    """A binary search on nr (in A) down to one range; each leaf ends in RET."""
    if len(ranges) == 1:
        verdict = ranges[0][1]
        return _rules_block(verdict) if isinstance(verdict, ArgRules) else [_ret(verdict)]
    mid = len(ranges) // 2
    left, right = _tree(ranges[:mid]), _tree(ranges[mid:])
    if len(left) <= MAX_JUMP:
        return [Insn(BPF_JMP_JGE_K, len(left), 0, ranges[mid][0]), *left, *right]
    return [Insn(BPF_JMP_JGE_K, 0, 1, ranges[mid][0]), Insn(BPF_JMP_JA, 0, 0, len(left)),
            *left, *right]


def assemble(plan: Plan) -> list[Insn]:
    """The BPF program for `plan` (see the module docstring for its shape)."""
    prog = [_ld(OFF_ARCH), Insn(BPF_JMP_JEQ_K, 1, 0, sysnr.AUDIT_ARCH[plan.arch]), _ret(KILL),
            _ld(OFF_NR)]
    above = plan.enosys_above
    if plan.arch == "x86_64":  # x32 -> the RET ENOSYS below (over the jgt when there is one)
        prog.append(Insn(BPF_JMP_JSET_K, 1, 0, sysnr.X32_SYSCALL_BIT) if above is not None
                    else Insn(BPF_JMP_JSET_K, 0, 1, sysnr.X32_SYSCALL_BIT))
    if above is not None:
        prog.append(Insn(BPF_JMP_JGT_K, 0, 1, above))
    if len(prog) > 4:
        prog.append(_ret(ENOSYS))
    prog += _tree(_ranges(plan))
    if len(prog) > BPF_MAXINSNS:
        raise ProfileError(f"the seccomp profile compiles to {len(prog)} BPF instructions: the "
                           f"kernel takes at most {BPF_MAXINSNS}; use fewer argument rules")
    return prog


def encode(prog: list[Insn]) -> bytes:
    """The program as the kernel's array of struct sock_filter (native byte order)."""
    return b"".join(struct.pack("=HBBI", i.code, i.jt, i.jf, i.k) for i in prog)


def decode(raw: bytes) -> list[Insn]:
    return [Insn(*struct.unpack_from("=HBBI", raw, off)) for off in range(0, len(raw), 8)]


# -- profiles --------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def default_profile() -> Profile:
    return parse(DEFAULT, "built-in default")


@lru_cache(maxsize=64)
def _parsed(text: str, source: str) -> Profile:
    return load_text(text, source)


def profile_of(text: str, source: str = "") -> Profile:
    """`DEFAULT_PROFILE` -> Docker's default; anything else is the JSON text of a profile."""
    if text == DEFAULT_PROFILE:
        return default_profile()
    return _parsed(text, source or "(inline JSON)")


@lru_cache(maxsize=64)
def _compiled(text: str, source: str, caps: tuple[str, ...], arch: str,
              kernel: tuple[int, int]) -> Filter:
    profile = profile_of(text, source)
    plan = decide(profile, caps, arch, kernel)
    return Filter(encode(assemble(plan)), profile.flag_bits)


def compile_filter(text: str, caps: Iterable[str], *, source: str = "", arch: str | None = None,
                   kernel: tuple[int, int] | None = None) -> Filter:
    """The filter for profile `text` ("default" or JSON), a container's `caps`, the host's (or
    the given) architecture and kernel. Cached: a stack compiles each profile once."""
    return _compiled(text, source, tuple(sorted(caps)), sysnr.arch_name(arch),
                     kernel or kernel_version(os.uname().release))


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
