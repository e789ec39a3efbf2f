"""Seccomp profiles in moby's JSON format (Docker's `--security-opt seccomp=FILE.json`).

`parse(data, source)` turns the decoded JSON into a `Profile`, checking every entry; a bad
entry is one `ProfileError` line naming the file and the entry, e.g.

    seccomp profile /srv/p.json: syscalls[3] (socket): args[0].op: unknown operator
    "SCMP_CMP_LIKE": use one of SCMP_CMP_NE, SCMP_CMP_LT, ...

`select(profile, caps, arch, kernel)` applies the `includes`/`excludes` filters for one
container (its capabilities, the host's architecture and kernel), as moby does before
handing the profile to runc; `seccomp.compile_profile` turns what is left into BPF.

The format (runtime-spec's LinuxSeccomp plus moby's extensions):

    defaultAction     SCMP_ACT_* for every syscall no rule matches
    defaultErrnoRet   errno for a defaultAction of SCMP_ACT_ERRNO (default EPERM)
    architectures     SCMP_ARCH_* list, or archMap: [{architecture, subArchitectures}]
    flags             SECCOMP_FILTER_FLAG_{TSYNC,LOG,SPEC_ALLOW}
    syscalls[]        names (or name), action, errnoRet, args[{index, value, valueTwo, op}],
                      includes/excludes {caps: [CAP_*], arches: [amd64, arm64, ...],
                      minKernel: "4.8"}, comment
"""
from __future__ import annotations

import errno
import json
import re
from dataclasses import dataclass
from typing import Any

from runtime.errors import InvalidArgument

ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP",
           "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_LOG", "SCMP_ACT_ALLOW")
WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")  # the actions that carry errnoRet
OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
       "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2,
         "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}
ARCHES = ("SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM",
          "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
          "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
          "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
          "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
          "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB")
# includes/excludes "arches" use Go's names (libseccomp's for x86/x32); ours -> theirs
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
MAX_ERRNO = 4095
MAX_RULES = 4096

_TOP_KEYS = {"defaultAction", "defaultErrnoRet", "architectures", "archMap", "flags",
             "syscalls", "listenerPath", "listenerMetadata"}
_RULE_KEYS = {"names", "name", "action", "errnoRet", "args", "includes", "excludes", "comment"}
_ARG_KEYS = {"index", "value", "valueTwo", "op"}
_FILTER_KEYS = {"caps", "arches", "minKernel"}
_KERNEL = re.compile(r"^(\d+)\.(\d+)$")


class ProfileError(InvalidArgument):
    """A seccomp profile that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Arg:
    """One argument condition: `op` compares args[index] with value (MASKED_EQ: arg & value
    == value_two), all unsigned 64-bit, as libseccomp does."""

    index: int
    value: int
    value_two: int
    op: str


@dataclass(frozen=True)
class Match:
    caps: tuple[str, ...] = ()  # "CAP_SYS_ADMIN"
    arches: tuple[str, ...] = ()  # "amd64", "arm64", "x32", "s390x", ...
    min_kernel: tuple[int, int] | None = None


@dataclass(frozen=True)
class Rule:
    names: tuple[str, ...]
    action: str
    errno: int | None  # errnoRet
    args: tuple[Arg, ...] = ()
    includes: Match = Match()
    excludes: Match = Match()
    where: str = ""  # "syscalls[3]", for messages


@dataclass(frozen=True)
class Profile:
    default_action: str
    default_errno: int | None = None
    architectures: tuple[str, ...] = ()
    arch_map: tuple[tuple[str, tuple[str, ...]], ...] = ()
    flags: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    source: str = ""

    @property
    def flag_bits(self) -> int:
        bits = 0
        for f in self.flags:
            bits |= FLAGS[f]
        return bits


def load_text(text: str, source: str) -> Profile:
    """Parse a profile from its JSON text; `source` names it in errors (a path)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProfileError(f"seccomp profile {source}: not valid JSON: {e.msg} at line {e.lineno}"
                           f" column {e.colno}", subject=source) from None
    return parse(data, source)


def read_file(path: str) -> str:
    """The text of a profile file, with a clear error when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror.lower() if isinstance(e, OSError) and e.strerror else str(e)
        raise ProfileError(f"seccomp profile {path}: cannot read it: {reason}",
                           subject=path) from None


def parse(data: Any, source: str) -> Profile:
    def fail(where: str, msg: str) -> ProfileError:
        at = f"{where}: " if where else ""
        return ProfileError(f"seccomp profile {source}: {at}{msg}", subject=source)

    if not isinstance(data, dict):
        raise fail("", "expected a JSON object with defaultAction and syscalls")
    _no_unknown(data, _TOP_KEYS, "", fail)
    if data.get("listenerPath") or data.get("listenerMetadata"):
        raise fail("listenerPath", "seccomp notification listeners are not supported")
    default_action = _action(data.get("defaultAction"), "defaultAction", fail)
    default_errno = _errno(data.get("defaultErrnoRet"), "defaultErrnoRet", fail)
    if default_errno is not None and default_action not in WITH_ERRNO:
        raise fail("defaultErrnoRet", f"only valid with defaultAction SCMP_ACT_ERRNO or "
                                      f"SCMP_ACT_TRACE, not {default_action}")
    arches = tuple(_arch(a, f"architectures[{i}]", fail)
                   for i, a in enumerate(_list(data.get("architectures"), "architectures", fail)))
    arch_map = []
    for i, item in enumerate(_list(data.get("archMap"), "archMap", fail)):
        where = f"archMap[{i}]"
        if not isinstance(item, dict):
            raise fail(where, "expected {architecture, subArchitectures}")
        _no_unknown(item, {"architecture", "subArchitectures"}, where, fail)
        subs = tuple(_arch(a, f"{where}.subArchitectures[{j}]", fail) for j, a in
                     enumerate(_list(item.get("subArchitectures"), where + ".subArchitectures",
                                     fail)))
        arch_map.append((_arch(item.get("architecture"), where + ".architecture", fail), subs))
    if arches and arch_map:
        raise fail("archMap", "both architectures and archMap are given: use one of them")
    flags = []
    for i, flag in enumerate(_list(data.get("flags"), "flags", fail)):
        if flag not in FLAGS:
            raise fail(f"flags[{i}]", f"unknown or unsupported flag {_q(flag)}: use "
                                      f"{', '.join(FLAGS)}")
        flags.append(flag)
    rules = tuple(_rule(item, f"syscalls[{i}]", fail)
                  for i, item in enumerate(_list(data.get("syscalls"), "syscalls", fail)))
    if len(rules) > MAX_RULES:
        raise fail("syscalls", f"{len(rules)} entries: at most {MAX_RULES}")
    return Profile(default_action, default_errno, arches, tuple(arch_map), tuple(flags), rules,
                   source)


def select(profile: Profile, caps: tuple[str, ...] | list[str], arch: str,
           kernel: tuple[int, int]) -> tuple[Rule, ...]:
    """The rules that apply to a container with `caps` (names without CAP_) on `arch` (our
    name: x86_64, aarch64) and a kernel `(major, minor)` -- moby's includes/excludes rules:
    excluded when any excluded cap is held, the arch is excluded or the kernel is at least
    excludes.minKernel; included only when every included cap is held, the arch is listed
    and the kernel is at least includes.minKernel."""
    held = {c if c.startswith("CAP_") else "CAP_" + c for c in caps}
    goarch = GO_ARCH.get(arch, arch)
    out = []
    for rule in profile.rules:
        ex, inc = rule.excludes, rule.includes
        if goarch in ex.arches or any(c in held for c in ex.caps):
            continue
        if ex.min_kernel is not None and kernel >= ex.min_kernel:
            continue
        if inc.arches and goarch not in inc.arches:
            continue
        if not all(c in held for c in inc.caps):
            continue
        if inc.min_kernel is not None and kernel < inc.min_kernel:
            continue
        out.append(rule)
    return tuple(out)


def kernel_version(release: str) -> tuple[int, int]:
    """(major, minor) of a uname release such as "6.1.0-28-amd64"; (0, 0) if unreadable."""
    m = re.match(r"^(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


# -- checking one piece ----------------------------------------------------------------------

Fail = Any  # Callable[[str, str], ProfileError]


def _q(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _no_unknown(obj: dict[str, Any], known: set[str], where: str, fail: Fail) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        raise fail(where, f"unknown key {_q(unknown[0])}: the keys here are "
                          f"{', '.join(sorted(known))}")


def _list(value: Any, where: str, fail: Fail) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(where, f"expected a list, got {_q(value)}")
    return value


def _action(value: Any, where: str, fail: Fail) -> str:
    if value == "SCMP_ACT_NOTIFY":
        raise fail(where, "SCMP_ACT_NOTIFY needs a seccomp listener, which composer does not "
                          "run: use SCMP_ACT_ERRNO or SCMP_ACT_LOG")
    if value not in ACTIONS:
        what = "no action given" if value is None else f"unknown action {_q(value)}"
        raise fail(where, f"{what}: use one of {', '.join(ACTIONS)}")
    return str(value)


def _errno(value: Any, where: str, fail: Fail) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ERRNO:
        raise fail(where, f"expected an errno number from 0 to {MAX_ERRNO} (e.g. "
                          f"{errno.EPERM} for EPERM), got {_q(value)}")
    return value


def _arch(value: Any, where: str, fail: Fail) -> str:
    if value not in ARCHES:
        raise fail(where, f"unknown architecture {_q(value)}: use an SCMP_ARCH_* name such as "
                          "SCMP_ARCH_X86_64 or SCMP_ARCH_AARCH64")
    return str(value)


def _uint64(value: Any, where: str, fail: Fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise fail(where, f"expected an unsigned 64-bit number, got {_q(value)}")
    return value


def _strings(value: Any, where: str, fail: Fail) -> tuple[str, ...]:
    items = _list(value, where, fail)
    for i, v in enumerate(items):
        if not isinstance(v, str) or not v:
            raise fail(f"{where}[{i}]", f"expected a name, got {_q(v)}")
    return tuple(items)


def _match(value: Any, where: str, fail: Fail) -> Match:
    if value is None:
        return Match()
    if not isinstance(value, dict):
        raise fail(where, "expected an object with caps, arches or minKernel")
    _no_unknown(value, _FILTER_KEYS, where, fail)
    caps = _strings(value.get("caps"), where + ".caps", fail)
    for i, c in enumerate(caps):
        if not re.fullmatch(r"CAP_[A-Z_]+", c):
            raise fail(f"{where}.caps[{i}]", f"expected a capability like CAP_SYS_ADMIN, "
                                             f"got {_q(c)}")
    min_kernel = None
    raw = value.get("minKernel")
    if raw not in (None, ""):
        m = _KERNEL.match(raw) if isinstance(raw, str) else None
        if m is None or (int(m.group(1)), int(m.group(2))) == (0, 0):
            raise fail(where + ".minKernel", f'expected "<major>.<minor>" such as "4.8", '
                                             f"got {_q(raw)}")
        min_kernel = (int(m.group(1)), int(m.group(2)))
    return Match(caps, _strings(value.get("arches"), where + ".arches", fail), min_kernel)


def _rule(item: Any, where: str, fail: Fail) -> Rule:
    if not isinstance(item, dict):
        raise fail(where, "expected an object with names and action")
    _no_unknown(item, _RULE_KEYS, where, fail)
    if item.get("name") and item.get("names"):
        raise fail(where, "both name and names are given: use names")
    names = (item["name"],) if item.get("name") else _strings(item.get("names"), where + ".names",
                                                              fail)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise fail(where, "no syscall names: give names: [...]")
    label = f"{where} ({names[0]}{', ...' if len(names) > 1 else ''})"
    action = _action(item.get("action"), label + ".action", fail)
    err = _errno(item.get("errnoRet"), label + ".errnoRet", fail)
    if err is not None and action not in WITH_ERRNO:
        raise fail(label + ".errnoRet", f"only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, "
                                        f"not {action}")
    args = []
    for j, a in enumerate(_list(item.get("args"), label + ".args", fail)):
        at = f"{label}.args[{j}]"
        if not isinstance(a, dict):
            raise fail(at, "expected {index, value, valueTwo, op}")
        _no_unknown(a, _ARG_KEYS, at, fail)
        index = a.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 5:
            raise fail(at + ".index", f"expected an argument index from 0 to 5, got {_q(index)}")
        op = a.get("op")
        if op not in OPS:
            raise fail(at + ".op", f"unknown operator {_q(op)}: use one of {', '.join(OPS)}")
        args.append(Arg(index, _uint64(a.get("value", 0), at + ".value", fail),
                        _uint64(a.get("valueTwo", 0), at + ".valueTwo", fail), str(op)))
    if len(args) > 6 * 6:
        raise fail(label + ".args", "too many conditions")
    return Rule(names, action, err, tuple(args), _match(item.get("includes"),
                label + ".includes", fail), _match(item.get("excludes"), label + ".excludes",
                                                    fail), where)
