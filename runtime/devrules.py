"""Device cgroup rules: the one grammar for Docker's allow-list, `device_cgroup_rules` and the
rule each `devices:` entry adds, shared by the v1 files and the v2 BPF program.

A rule is `TYPE MAJOR:MINOR ACCESS` as in cgroup v1's devices.allow (and Docker's
`--device-cgroup-rule`): TYPE is `c` (char), `b` (block) or `a` (all), MAJOR and MINOR are
numbers or `*`, ACCESS is made of `r` (read), `w` (write) and `m` (mknod).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

DeviceType = Literal["a", "b", "c"]

# Docker's grammar (daemon/oci_linux.go): one space between the parts, numbers or "*".
_RULE = re.compile(r"^([abc]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")
U32_MAX = 2**32 - 1  # the kernel keeps major and minor as u32 (bpf_cgroup_dev_ctx)
ACCESS_ORDER = "rwm"


class RuleError(ValueError):
    """A rule that does not follow the grammar; the message says how to write it."""


def normalize_access(access: str) -> str:
    """`access` as a subset of "rwm" in that order; RuleError when empty or another letter."""
    if not access or any(ch not in ACCESS_ORDER for ch in access):
        raise RuleError(f'invalid device access "{access}": use one or more of r, w and m')
    return "".join(ch for ch in ACCESS_ORDER if ch in access)


@dataclass(frozen=True)
class DeviceRule:
    type: DeviceType
    major: int | None = None  # None: any ("*")
    minor: int | None = None
    access: str = "rwm"  # a subset of "rwm", in that order

    @classmethod
    def parse(cls, text: str) -> DeviceRule:
        m = _RULE.match(text)
        if not m:
            raise RuleError(
                f'invalid device cgroup rule "{text}": use "TYPE MAJOR:MINOR ACCESS" with TYPE '
                'a, b or c, MAJOR and MINOR numbers or *, ACCESS made of r, w and m '
                '(e.g. "c 1:3 rwm")')
        kind, major, minor, access = m.groups()
        numbers = [None if n == "*" else int(n) for n in (major, minor)]
        for n, what in zip(numbers, ("major", "minor"), strict=True):
            if n is not None and n > U32_MAX:
                raise RuleError(f'invalid device cgroup rule "{text}": {what} {n} is too large')
        return cls(kind, numbers[0], numbers[1], normalize_access(access))  # type: ignore[arg-type]

    def __str__(self) -> str:
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


def rules(texts: Iterable[str]) -> tuple[DeviceRule, ...]:
    return tuple(DeviceRule.parse(t) for t in texts)


# What an unprivileged container may use: moby's default spec plus runc's AllowedDevices
# (what a Docker container ends up with): mknod of any node, so images can carry device
# files, but read/write only of the standard nodes, the ptys and /dev/net/tun.
DEFAULT_RULES: tuple[DeviceRule, ...] = rules((
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",  # null zero full random urandom
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm",  # tty console ptmx
    "c 136:* rwm",  # /dev/pts/*
    "c 10:200 rwm",  # /dev/net/tun
))


@dataclass(frozen=True)
class Policy:
    """An allow-list reduced to what the kernel checks: `allow_all` (an `a` rule was given:
    as in cgroup v1, it allows every device whatever its numbers and access), or `rules`
    with one entry per (type, major, minor), access merged as v1 merges its exceptions."""

    allow_all: bool
    rules: tuple[DeviceRule, ...]


def policy(allowed: Iterable[DeviceRule]) -> Policy:
    merged: dict[tuple[str, int | None, int | None], str] = {}
    for r in allowed:
        if r.type == "a":
            return Policy(True, ())
        key = (r.type, r.major, r.minor)
        merged[key] = normalize_access(merged.get(key, "") + r.access)
    return Policy(False, tuple(DeviceRule(t, ma, mi, acc)  # type: ignore[arg-type]
                               for (t, ma, mi), acc in merged.items()))
